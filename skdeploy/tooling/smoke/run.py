"""Every check against one target, in the order they are reported."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

from skdeploy.core.samples import Samples, load_samples
from skdeploy.tooling.common import progress
from skdeploy.tooling.smoke.asynchronous import LocalAsync, check_async
from skdeploy.tooling.smoke.checks import (
    POLL_SECONDS,
    check_bad_request,
    check_endpoint_config,
    check_in_service,
    check_latency,
    check_predictions,
    check_probabilities,
)
from skdeploy.tooling.smoke.clients import Clients, TargetedRuntime, make_clients
from skdeploy.tooling.smoke.metrics import check_metrics
from skdeploy.tooling.smoke.multimodel import ModelTargetedRuntime, TargetModel
from skdeploy.tooling.smoke.report import (
    CHECK_ENDPOINT_CONFIG,
    CHECK_IN_SERVICE,
    CHECKS,
    SKIP,
    Check,
    SmokeReport,
)
from skdeploy.tooling.smoke.target import Target

#: Default ``--timeout``: endpoint creation takes 5-20 minutes, a failing one longer.
DEFAULT_TIMEOUT_SECONDS: Final = 1800.0
#: Default ``--calls``.
DEFAULT_LATENCY_CALLS: Final = 20


def run_smoke(
    target: Target,
    samples: Samples,
    clients: Clients,
    *,
    calls: int = DEFAULT_LATENCY_CALLS,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    poll_seconds: float = POLL_SECONDS,
    report: Callable[[str], None] = progress,
    async_local: LocalAsync | None = None,
) -> SmokeReport:
    """Every check against ``target``, in order; raises :class:`CannotRun` if it cannot run.

    ``async_local`` adds the ``async`` check last (:mod:`.asynchronous`).
    """
    result = SmokeReport(target.endpoint_name, target.region, target.source, target.endpoint_url)
    if clients.sagemaker is None:
        local = "local endpoint: no control plane to describe"
        result.checks.append(Check(CHECK_IN_SERVICE, SKIP, local))
        result.checks.append(Check(CHECK_ENDPOINT_CONFIG, SKIP, local))
    else:
        in_service, description = check_in_service(
            clients.sagemaker,
            target.endpoint_name,
            timeout=timeout,
            poll_seconds=poll_seconds,
            report=report,
        )
        result.checks.append(in_service)
        if description is None:
            for name in CHECKS[1:]:
                result.checks.append(Check(name, SKIP, "endpoint is not InService"))
            return result
        result.checks.append(check_endpoint_config(description, target.expected_config_name))
    report(f"invoking {target.endpoint_name} with {len(samples.instances)} samples")
    predictions_check, answers = check_predictions(clients.runtime, target.endpoint_name, samples)
    result.checks.append(predictions_check)
    result.checks.append(check_probabilities(clients.runtime, target.endpoint_name, samples))
    metrics_check, result.metrics = check_metrics(samples, answers)
    result.checks.append(metrics_check)
    result.checks.append(check_bad_request(clients.runtime, target.endpoint_name, samples))
    if calls > 0:
        report(f"timing {calls} single-row calls")
    latency_check, result.latency_ms = check_latency(
        clients.runtime, target.endpoint_name, samples, calls
    )
    result.checks.append(latency_check)
    if async_local is not None:
        report(f"invoking {target.endpoint_name} asynchronously through {async_local.s3_dir}")
        result.checks.append(
            check_async(clients.runtime, target.endpoint_name, samples, async_local)
        )
    return result


def smoke_variants(
    target: Target,
    runs: Sequence[tuple[str | None, Path]],
    clients: Clients | None = None,
    *,
    calls: int = DEFAULT_LATENCY_CALLS,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    poll_seconds: float = POLL_SECONDS,
    async_local: LocalAsync | None = None,
) -> list[SmokeReport]:
    """One :func:`run_smoke` per run, each aimed at its variant (None: SageMaker's routing).

    Every samples file is read before the first call; ``clients`` replaces the boto3 clients
    built for ``target`` (the tests pass moto- or Stubber-backed ones).
    """
    prepared = [(variant, load_samples(path)) for variant, path in runs]
    base = clients or make_clients(target)
    results = []
    for variant, samples in prepared:
        runtime = (
            base.runtime
            if variant is None
            else ModelTargetedRuntime(base.runtime, variant)
            if isinstance(variant, TargetModel)
            else TargetedRuntime(base.runtime, variant)
        )
        result = run_smoke(
            target,
            samples,
            Clients(runtime=runtime, sagemaker=base.sagemaker),
            calls=calls,
            timeout=timeout,
            poll_seconds=poll_seconds,
            async_local=async_local,
        )
        result.variant = variant
        results.append(result)
    return results
