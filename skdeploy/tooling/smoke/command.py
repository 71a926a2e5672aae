"""``skdeploy smoke``: its arguments, and the handler that runs each variant and prints the
report.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from skdeploy.core.constants import SAMPLES_FILE
from skdeploy.core.samples import CannotRun, load_samples
from skdeploy.core.settings import EndpointSettings
from skdeploy.tooling.common import EXIT_CANNOT_RUN, add_stack_arguments, stack_settings
from skdeploy.tooling.smoke.checks import POLL_SECONDS
from skdeploy.tooling.smoke.clients import Clients, TargetedRuntime, make_clients
from skdeploy.tooling.smoke.run import DEFAULT_LATENCY_CALLS, DEFAULT_TIMEOUT_SECONDS, run_smoke
from skdeploy.tooling.smoke.target import resolve_target, variant_runs


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

    try:
        target = resolve_target(args, settings)
        runs = variant_runs(args, settings, local=target.endpoint_url is not None)
        prepared = [(variant, load_samples(path)) for variant, path in runs]  # all, before calls
        base = clients or make_clients(target)
        results = []
        for variant, samples in prepared:
            runtime = base.runtime if variant is None else TargetedRuntime(base.runtime, variant)
            result = run_smoke(
                target,
                samples,
                Clients(runtime=runtime, sagemaker=base.sagemaker),
                calls=args.calls,
                timeout=args.timeout,
                poll_seconds=poll_seconds,
            )
            result.variant = variant
            results.append(result)
    except CannotRun as exc:
        print(f"skdeploy: smoke cannot run: {exc}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    if args.json:
        document: Any = results[0].to_json()
        if len(results) > 1:
            document = {
                "endpoint_name": target.endpoint_name,
                "region": target.region,
                "variants": {r.variant: r.to_json() for r in results},
                "passed": all(r.passed for r in results),
            }
        print(json.dumps(document, indent=2))
    else:
        print("\n\n".join(r.render() for r in results))
    return max(r.exit_code for r in results)


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
    parser.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    parser.set_defaults(handler=execute)
