"""``skdeploy smoke``: its arguments, and the handler that runs each variant and prints the
report.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from skdeploy.core.constants import SAMPLES_FILE
from skdeploy.core.samples import CannotRun
from skdeploy.core.settings import EndpointSettings
from skdeploy.tooling.common import (
    EXIT_CANNOT_RUN,
    EXIT_FAILED,
    EXIT_OK,
    add_stack_arguments,
    stack_settings,
)
from skdeploy.tooling.smoke.asynchronous import LocalAsync
from skdeploy.tooling.smoke.checks import POLL_SECONDS
from skdeploy.tooling.smoke.clients import Clients
from skdeploy.tooling.smoke.record import record_smoke
from skdeploy.tooling.smoke.report import render_reports
from skdeploy.tooling.smoke.run import (
    DEFAULT_LATENCY_CALLS,
    DEFAULT_TIMEOUT_SECONDS,
    smoke_variants,
)
from skdeploy.tooling.smoke.target import Target, resolve_target, variant_runs


def execute(
    args: argparse.Namespace,
    *,
    clients: Clients | None = None,
    poll_seconds: float = POLL_SECONDS,
) -> int:
    """``skdeploy smoke``: resolve the endpoint, run the checks, print the report, exit code.

    ``clients`` replaces the boto3 clients built from the arguments (the tests pass moto- or
    Stubber-backed ones); everything else runs as on the command line.
    """
    loaded: list[EndpointSettings] = []

    def settings() -> EndpointSettings:
        if not loaded:
            loaded.append(stack_settings(args))
        return loaded[0]

    async_s3_dir = getattr(args, "async_s3_dir", None)
    try:
        target = resolve_target(args, settings)
        runs = variant_runs(args.variant, args.samples, settings, local=target.local)
        async_local = None
        if async_s3_dir is not None:
            async_local = _local_async(async_s3_dir, target.local, settings)
    except CannotRun as exc:
        return _cannot_run(exc)
    return smoke_and_report(
        target,
        runs,
        clients,
        calls=args.calls,
        timeout=args.timeout,
        poll_seconds=poll_seconds,
        as_json=args.json,
        async_local=async_local,
    )


def _local_async(s3_dir: Path, local: bool, settings: Callable[[], EndpointSettings]) -> LocalAsync:
    """``--async-s3-dir``: the --s3-dir folder of a local endpoint of a stack with ``async``."""
    if not (local and s3_dir.is_dir()):
        raise CannotRun(
            f"--async-s3-dir {s3_dir} must be the --s3-dir folder of a local endpoint "
            "(--endpoint-url)"
        )
    asynchronous = settings().async_inference
    if asynchronous is None:
        raise CannotRun("--async-s3-dir needs a stack with the 'async' setting")
    return LocalAsync(s3_dir, asynchronous.input_path)


def smoke_and_report(
    target: Target,
    runs: Sequence[tuple[str | None, Path]],
    clients: Clients | None = None,
    *,
    calls: int = DEFAULT_LATENCY_CALLS,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    poll_seconds: float = POLL_SECONDS,
    as_json: bool = False,
    async_local: LocalAsync | None = None,
) -> int:
    """Smoke-test ``target`` (one run per variant), print the report; return the exit code."""
    try:
        results = smoke_variants(
            target,
            runs,
            clients,
            calls=calls,
            timeout=timeout,
            poll_seconds=poll_seconds,
            async_local=async_local,
        )
    except CannotRun as exc:
        return _cannot_run(exc)
    print(render_reports(results, as_json=as_json))
    exit_code = max(r.exit_code for r in results)
    if exit_code in (EXIT_OK, EXIT_FAILED):
        record_smoke(target, passed=exit_code == EXIT_OK)
    return exit_code


def _cannot_run(exc: CannotRun) -> int:
    print(f"skdeploy: smoke cannot run: {exc}", file=sys.stderr)
    return EXIT_CANNOT_RUN


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``skdeploy smoke``."""
    parser = sub.add_parser(
        "smoke",
        help="invoke the deployed (or a local) endpoint and check it serves the deployed model",
        description="Invoke an endpoint with the model's samples and check that it serves the "
        "deployed model. Exit 0 passed, 1 a check failed, 2 cannot run.",
    )
    add_stack_arguments(parser)
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--outputs",
        type=Path,
        help="stack outputs saved by `pulumi stack output --json` (instead of running pulumi)",
    )
    source.add_argument("--endpoint-name", help="the endpoint to test, instead of stack outputs")
    parser.add_argument("--region", help="AWS region (default: stack outputs, then stack file)")
    parser.add_argument(
        "--endpoint-url",
        help="a local endpoint, e.g. http://127.0.0.1:8080 (no DescribeEndpoint; the name "
        "comes from --endpoint-name or the stack file)",
    )
    parser.add_argument(
        "--samples", type=Path, help=f"samples file (default: <modelDir>/{SAMPLES_FILE})"
    )
    parser.add_argument(
        "--variant",
        default=None,
        help="check one production variant (TargetVariant) against its own samples (default: "
        "each production variant of a stack that has several, in turn)",
    )
    parser.add_argument(
        "--calls",
        type=_non_negative_int,
        default=DEFAULT_LATENCY_CALLS,
        help=f"single-row calls to time (default: {DEFAULT_LATENCY_CALLS}; 0 skips latency)",
    )
    parser.add_argument(
        "--timeout",
        type=_positive_float,
        default=DEFAULT_TIMEOUT_SECONDS,
        help=f"seconds to wait for InService (default: {DEFAULT_TIMEOUT_SECONDS:.0f})",
    )
    parser.add_argument(
        "--async-s3-dir",
        type=Path,
        default=None,
        help="also check InvokeEndpointAsync against a local endpoint served with --s3-dir "
        "(this folder)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    parser.set_defaults(handler=execute)
