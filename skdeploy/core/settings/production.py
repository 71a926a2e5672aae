"""The production keys: serverless or instances, autoscaling, blue/green rollback, capture, VPC,
encryption, timeouts, logs, protection and the HTTPS front door.

Each map is read through its members in :mod:`.members`; the rules that tie members or keys
together (autoscaling's min and max, what serverless excludes) follow, in the order their
problems have always been listed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from skdeploy.core.settings._rules import parse_map
from skdeploy.core.settings.errors import Problems
from skdeploy.core.settings.members import (
    API,
    ASYNC,
    AUTOSCALING,
    DATA_CAPTURE,
    DEPLOYMENT,
    SERVERLESS,
    THROTTLE,
    VPC,
)
from skdeploy.core.settings.model import (
    ApiSettings,
    AsyncInferenceSettings,
    AutoscalingSettings,
    DataCaptureSettings,
    DeploymentSettings,
    ServerlessSettings,
    VpcSettings,
)
from skdeploy.core.settings.schema import (
    ALLOW_ENDPOINT_REPLACEMENT,
    KMS_KEY_ARN,
    LOG_RETENTION,
    MODEL_DOWNLOAD_TIMEOUT,
    PROTECT,
    STARTUP_HEALTH_CHECK_TIMEOUT,
)
from skdeploy.core.settings.values import StackValues

#: Keys AWS refuses on a serverless endpoint (``networkIsolation`` is judged apart: only an
#: explicit ``true`` conflicts, since its default follows the endpoint kind).
_NOT_SERVERLESS = (
    "autoscaling",
    "async",
    "variants",
    "shadow",
    "dataCapture",
    "vpc",
    "networkIsolation",
    "startupHealthCheckTimeoutSeconds",
    "modelDownloadTimeoutSeconds",
)


@dataclass(frozen=True)
class ProductionKeys:
    """The production keys of a stack as :func:`parse_production` read them (typed for mypy)."""

    serverless: ServerlessSettings | None
    autoscaling: AutoscalingSettings | None
    async_inference: AsyncInferenceSettings | None
    deployment: DeploymentSettings | None
    data_capture: DataCaptureSettings | None
    kms_key_arn: str | None
    vpc: VpcSettings | None
    startup_health_check_timeout_seconds: int | None
    model_download_timeout_seconds: int | None
    log_retention_days: int
    protect: bool
    allow_endpoint_replacement: bool
    api: ApiSettings | None


def parse_production(
    problems: Problems, values: StackValues, *, network_isolation: bool
) -> ProductionKeys:
    """The production keys, every problem added to ``problems``."""
    serverless = parse_map(problems, "serverless", values.get("serverless"), SERVERLESS)
    autoscaling = parse_map(problems, "autoscaling", values.get("autoscaling"), AUTOSCALING)
    deployment = parse_map(problems, "deployment", values.get("deployment"), DEPLOYMENT)
    async_inference = _async(problems, values)
    capture = parse_map(problems, "dataCapture", values.get("dataCapture"), DATA_CAPTURE)
    vpc = _vpc(problems, values)
    kms_key_arn = values.read(problems, KMS_KEY_ARN)
    startup = values.read(problems, STARTUP_HEALTH_CHECK_TIMEOUT)
    download = values.read(problems, MODEL_DOWNLOAD_TIMEOUT)
    retention = values.read(problems, LOG_RETENTION)
    protect = values.read(problems, PROTECT)
    allow_replacement = values.read(problems, ALLOW_ENDPOINT_REPLACEMENT)
    api = _api(problems, values)
    _check_autoscaling(problems, values, autoscaling)
    _check_serverless(problems, values, serverless, deployment, network_isolation)
    return ProductionKeys(
        serverless=_serverless(serverless),
        autoscaling=_autoscaling(autoscaling),
        async_inference=async_inference,
        deployment=_deployment(deployment),
        data_capture=_data_capture(capture),
        kms_key_arn=kms_key_arn,
        vpc=vpc,
        startup_health_check_timeout_seconds=startup,
        model_download_timeout_seconds=download,
        log_retention_days=retention if retention is not None else 30,
        protect=bool(protect),
        allow_endpoint_replacement=bool(allow_replacement),
        api=api,
    )


def _serverless(parsed: dict[str, Any] | None) -> ServerlessSettings | None:
    """The value, unless a problem was reported (then the settings are never built)."""
    provisioned = None if parsed is None else parsed["provisionedConcurrency"]
    if parsed is None or (provisioned is not None and provisioned > parsed["maxConcurrency"]):
        return None
    return ServerlessSettings(
        memory_mb=parsed["memoryMb"],
        max_concurrency=parsed["maxConcurrency"],
        provisioned_concurrency=parsed["provisionedConcurrency"],
    )


def _autoscaling(parsed: dict[str, Any] | None) -> AutoscalingSettings | None:
    """The value, unless a problem was reported (then the settings are never built)."""
    if parsed is None or parsed["min"] is None or parsed["max"] is None:
        return None
    if parsed["min"] > parsed["max"]:
        return None
    return AutoscalingSettings(
        min=parsed["min"],
        max=parsed["max"],
        target_invocations_per_instance=parsed["targetInvocationsPerInstance"],
        scale_in_cooldown=parsed["scaleInCooldown"],
        scale_out_cooldown=parsed["scaleOutCooldown"],
    )


def _async(problems: Problems, values: StackValues) -> AsyncInferenceSettings | None:
    """``async``: an output path is required; scale-to-zero needs autoscaling to scale."""
    parsed = parse_map(problems, "async", values.get("async"), ASYNC)
    if parsed is None:
        return None
    missing = {
        "inputPath": "the execution role reads each request's InputLocation only there",
        "outputPath": "asynchronous inference writes results there",
    }
    for key in [k for k in missing if parsed[k] is None]:
        problems.add(f"async.{key}", "(missing)", missing[key])
    if any(parsed[k] is None for k in missing):
        return None
    if parsed["scaleToZero"] and not values.has("autoscaling"):
        problems.add(
            "async.scaleToZero", True, "needs autoscaling: instances scale from zero through it"
        )
        return None
    return AsyncInferenceSettings(
        input_path=parsed["inputPath"],
        output_path=parsed["outputPath"],
        failure_path=parsed["failurePath"],
        success_topic_arn=parsed["successTopicArn"],
        error_topic_arn=parsed["errorTopicArn"],
        max_concurrent_invocations_per_instance=parsed["maxConcurrentInvocationsPerInstance"],
        target_backlog_per_instance=parsed["targetBacklogPerInstance"],
        scale_to_zero=parsed["scaleToZero"],
    )


def _deployment(parsed: dict[str, Any] | None) -> DeploymentSettings | None:
    if parsed is None:
        return None
    return DeploymentSettings(
        strategy=parsed["strategy"],
        canary_percent=parsed["canaryPercent"],
        linear_step_percent=parsed["linearStepPercent"],
        wait_seconds=parsed["waitSeconds"],
        termination_wait_seconds=parsed["terminationWaitSeconds"],
        max_execution_seconds=parsed["maxExecutionSeconds"],
        error_threshold=parsed["errorThreshold"],
        latency_threshold_ms=parsed["latencyThresholdMs"],
        alarm_topic_arn=parsed["alarmTopicArn"],
    )


def _data_capture(parsed: dict[str, Any] | None) -> DataCaptureSettings | None:
    if parsed is None:
        return None
    return DataCaptureSettings(
        sampling_percent=parsed["samplingPercent"],
        prefix=parsed["prefix"],
        capture_content=parsed["captureContent"],
        bucket=parsed["bucket"],
    )


def _vpc(problems: Problems, values: StackValues) -> VpcSettings | None:
    """``vpc``: both lists, non-empty."""
    vpc = parse_map(problems, "vpc", values.get("vpc"), VPC)
    if vpc is None:
        return None
    for member in ("subnetIds", "securityGroupIds"):
        if vpc[member] is None:
            problems.add(f"vpc.{member}", "(missing)", "a VPC needs subnets and security groups")
            return None
    return VpcSettings(vpc["subnetIds"], vpc["securityGroupIds"])


def _api(problems: Problems, values: StackValues) -> ApiSettings | None:
    """``api``: the front door, when enabled, with its throttle."""
    api = parse_map(problems, "api", values.get("api"), API)
    if api is None or not api["enabled"]:
        return None
    throttle = parse_map(problems, "api.throttle", api["throttle"] or {}, THROTTLE)
    if throttle is None:
        return None
    return ApiSettings(api["auth"], throttle["rate"], throttle["burst"])


def _check_autoscaling(
    problems: Problems, values: StackValues, autoscaling: dict[str, Any] | None
) -> None:
    """``min`` and ``max`` are required, and in order."""
    if autoscaling is None:
        return
    if autoscaling["min"] is None:
        problems.add("autoscaling.min", "(missing)", "autoscaling needs min and max")
    if autoscaling["max"] is None:
        problems.add("autoscaling.max", "(missing)", "autoscaling needs min and max")
    if (
        autoscaling["min"] is not None
        and autoscaling["max"] is not None
        and autoscaling["min"] > autoscaling["max"]
    ):
        problems.add("autoscaling", values.get("autoscaling"), "min must not exceed max")


def _check_serverless(
    problems: Problems,
    values: StackValues,
    serverless: dict[str, Any] | None,
    deployment: dict[str, Any] | None,
    network_isolation: bool,
) -> None:
    """What a serverless endpoint cannot have: more provisioned than maximum concurrency, and
    the keys AWS refuses on it."""
    if (
        serverless is not None
        and serverless["provisionedConcurrency"] is not None
        and serverless["provisionedConcurrency"] > serverless["maxConcurrency"]
    ):
        problems.add(
            "serverless.provisionedConcurrency",
            serverless["provisionedConcurrency"],
            "must not exceed maxConcurrency",
        )
    if not values.has("serverless"):
        return
    reason = "AWS does not support it on serverless endpoints"
    for key in _NOT_SERVERLESS:
        present = network_isolation if key == "networkIsolation" else values.has(key)
        if present:
            problems.add(key, values.get(key), f"cannot be combined with serverless: {reason}")
    if deployment is not None and deployment["strategy"] != "all-at-once":
        problems.add(
            "deployment.strategy",
            deployment["strategy"],
            "serverless endpoints take all-at-once blue/green only: canary and linear "
            "traffic shifting need instance capacity",
        )
