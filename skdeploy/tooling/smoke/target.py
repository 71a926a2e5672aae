"""Where the endpoint under test is (stack outputs, a name, or a local URL), and which samples
each run uses.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlparse

from skdeploy.core.constants import (
    OUTPUT_ENDPOINT_CONFIG_NAME,
    OUTPUT_ENDPOINT_NAME,
    OUTPUT_MODEL_DATA_URL,
    OUTPUT_REGION,
    SAMPLES_FILE,
)
from skdeploy.core.samples import CannotRun
from skdeploy.core.settings import EndpointSettings
from skdeploy.tooling.smoke.multimodel import model_runs

#: Seconds ``pulumi stack output`` may take (it may read a remote backend).
PULUMI_TIMEOUT_SECONDS: Final = 120


@dataclass(frozen=True)
class Target:
    """The endpoint to test, and what the stack says it should be serving."""

    endpoint_name: str
    region: str
    source: str
    endpoint_url: str | None = None
    expected_config_name: str | None = None
    #: ``s3://bucket/key`` of the artifact the stack outputs say it serves: the smoke result
    #: is recorded on that object (none for a name or a local URL).
    model_data_url: str | None = None

    @property
    def local(self) -> bool:
        """A local endpoint (``--endpoint-url``) has a data plane only."""
        return self.endpoint_url is not None


def parse_stack_outputs(text: str, source: str) -> dict[str, Any]:
    """The JSON object ``pulumi stack output --json`` prints (raises :class:`CannotRun`)."""
    try:
        outputs = json.loads(text)
    except ValueError as exc:
        raise CannotRun(f"stack outputs from {source} are not JSON: {exc}") from None
    if not isinstance(outputs, dict):
        raise CannotRun(f"stack outputs from {source} must be a JSON object")
    name = outputs.get(OUTPUT_ENDPOINT_NAME)
    if not isinstance(name, str) or not name:
        raise CannotRun(
            f"stack outputs from {source} have no {OUTPUT_ENDPOINT_NAME} (was the stack deployed?)"
        )
    return outputs


def read_outputs_file(path: Path) -> dict[str, Any]:
    """Stack outputs saved with ``pulumi stack output --json > FILE``."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CannotRun(f"cannot read stack outputs {path}: {exc.strerror or exc}") from None
    return parse_stack_outputs(text, str(path))


def pulumi_stack_outputs(stack: str, project_dir: Path) -> dict[str, Any] | None:
    """Outputs from the Pulumi CLI, or None when it is not installed."""
    pulumi = shutil.which("pulumi")
    if pulumi is None:
        return None
    argv = [pulumi, "stack", "output", "--json", "--non-interactive", "--stack", stack]
    try:
        result = subprocess.run(
            [*argv, "--cwd", str(project_dir)],
            capture_output=True,
            text=True,
            timeout=PULUMI_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CannotRun(f"`pulumi stack output` did not run: {exc}") from None
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no message"])[-1]
        raise CannotRun(f"`pulumi stack output -s {stack}` failed: {last}")
    return parse_stack_outputs(result.stdout, f"pulumi stack output -s {stack}")


def _check_endpoint_url(url: str) -> str:
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise CannotRun(
            f"--endpoint-url {url!r} must be an http(s) URL such as http://127.0.0.1:8080"
        )
    return url.rstrip("/")


def resolve_target(args: argparse.Namespace, settings: Callable[[], EndpointSettings]) -> Target:
    """Where the endpoint is: ``--endpoint-url``, ``--endpoint-name``, ``--outputs``, or Pulumi.

    ``settings`` is called only when the stack file is needed (a name or region not given).
    """
    if args.endpoint_url:
        if args.outputs:
            raise CannotRun("--outputs describes a deployed stack; --endpoint-url a local one")
        url = _check_endpoint_url(args.endpoint_url)
        name = args.endpoint_name or settings().endpoint_name
        source = "--endpoint-name" if args.endpoint_name else f"stack settings of {args.stack}"
        return Target(name, args.region or settings().region, source, endpoint_url=url)
    if args.endpoint_name:
        return Target(args.endpoint_name, args.region or settings().region, "--endpoint-name")
    if args.outputs:
        outputs = read_outputs_file(Path(args.outputs))
        source = f"stack outputs {args.outputs}"
    else:
        found = pulumi_stack_outputs(args.stack, Path(args.project_dir).resolve())
        if found is None:
            raise CannotRun(
                "the pulumi CLI is not on PATH: pass --outputs FILE.json (what `pulumi stack "
                "output --json` prints), --endpoint-name NAME, or --endpoint-url URL"
            )
        outputs, source = found, f"pulumi stack output -s {args.stack}"
    config_name = outputs.get(OUTPUT_ENDPOINT_CONFIG_NAME)
    model_data_url = outputs.get(OUTPUT_MODEL_DATA_URL)
    region = args.region or outputs.get(OUTPUT_REGION) or settings().region
    return Target(
        outputs[OUTPUT_ENDPOINT_NAME],
        str(region),
        source,
        expected_config_name=config_name if isinstance(config_name, str) else None,
        model_data_url=model_data_url if isinstance(model_data_url, str) else None,
    )


def variant_runs(
    variant: str | None,
    samples: Path | None,
    settings: Callable[[], EndpointSettings],
    *,
    local: bool,
) -> list[tuple[str | None, Path]]:
    """Which variant to target (None: let SageMaker split by weight) and its samples, per run.

    ``--variant`` targets one; a stack with several production variants gets one run per variant,
    each against that variant's own samples; a local endpoint serves one variant, the one
    ``skdeploy serve`` picks. ``--samples`` without ``--variant`` keeps SageMaker's routing.
    """
    if variant is None and samples is not None:
        return [(None, samples)]
    stack = settings()
    if stack.multi_model and variant is None:
        return model_runs(stack)
    if variant is not None:
        if not local and stack.shadow is not None and variant == stack.shadow.name:
            raise CannotRun(
                f"{variant} is the shadow variant: SageMaker answers only from production "
                "variants (serve it with `skdeploy serve --variant` and smoke that instead)"
            )
        try:
            chosen = stack.only_variant(variant)
        except ValueError as exc:
            raise CannotRun(str(exc)) from None
        return [(variant, samples if samples is not None else chosen.model_dir / SAMPLES_FILE)]
    if not stack.variants:
        return [(None, stack.model_dir / SAMPLES_FILE)]
    served = stack.production_variants[:1] if local else stack.production_variants
    return [(v.name, v.model_dir / SAMPLES_FILE) for v in served]
