"""Blue/green updates that roll back on their own: two fixed alarms and the deployment policy.

The alarms' names never change (:func:`alarm_names`): the rollback configuration lists them, and
a change of that list replaces the Endpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from skdeploy.core.settings import DeploymentSettings, EndpointSettings
from skdeploy.infra.naming import Naming, moved_from

GUARDRAILS_TYPE = "skdeploy:index:RollbackAlarms"

#: CloudWatch alarms the blue/green rollback watches, by name suffix.
ROLLBACK_ALARMS = ("invocation-5xx-errors", "model-latency")


def alarm_names(endpoint_name: str) -> list[str]:
    """Fixed alarm names: the rollback list never changes, so it never replaces the Endpoint."""
    return [f"{endpoint_name}-{suffix}" for suffix in ROLLBACK_ALARMS]


@dataclass(frozen=True)
class _Watch:
    """One metric of the watched variant, and when it breaches."""

    logical_name: str
    alarm_name: str
    description: str
    metric: str
    statistic: str
    threshold: float


class RollbackAlarms(pulumi.ComponentResource):
    """5XX errors and model latency of the first variant: what blue/green rolls back on."""

    alarms: list[aws.cloudwatch.MetricAlarm]

    def __init__(
        self,
        naming: Naming,
        settings: EndpointSettings,
        tags: Mapping[str, str],
        *,
        old_parent: pulumi.Resource,
    ) -> None:
        super().__init__(
            GUARDRAILS_TYPE, naming("rollback"), None, pulumi.ResourceOptions(parent=old_parent)
        )
        deployment = settings.deployment
        assert deployment is not None
        endpoint = settings.endpoint_name
        errors_name, latency_name = alarm_names(endpoint)
        watches = (
            _Watch(
                naming("alarm-5xx"),
                errors_name,
                f"5XX errors of {endpoint} (rolls back updates)",
                "Invocation5XXErrors",
                "Sum",
                deployment.error_threshold,
            ),
            # ModelLatency is reported in microseconds.
            _Watch(
                naming("alarm-latency"),
                latency_name,
                f"model latency of {endpoint} (rolls back updates)",
                "ModelLatency",
                "Average",
                deployment.latency_threshold_ms * 1000,
            ),
        )
        self.alarms = [
            self._alarm(settings, deployment, watch, tags, old_parent) for watch in watches
        ]
        self.register_outputs({"alarmNames": [a.name for a in self.alarms]})

    def _alarm(
        self,
        settings: EndpointSettings,
        deployment: DeploymentSettings,
        watch: _Watch,
        tags: Mapping[str, str],
        old_parent: pulumi.Resource,
    ) -> aws.cloudwatch.MetricAlarm:
        # With several variants the alarms watch the first one: one fixed alarm list keeps the
        # rollback configuration (which replaces the endpoint when it changes) stable.
        first = settings.production_variants[0].name
        actions = [deployment.alarm_topic_arn] if deployment.alarm_topic_arn else []
        return aws.cloudwatch.MetricAlarm(
            watch.logical_name,
            name=watch.alarm_name,
            alarm_description=watch.description,
            metric_name=watch.metric,
            statistic=watch.statistic,
            threshold=watch.threshold,
            namespace="AWS/SageMaker",
            dimensions={"EndpointName": settings.endpoint_name, "VariantName": first},
            period=60,
            evaluation_periods=1,
            comparison_operator="GreaterThanOrEqualToThreshold",
            treat_missing_data="notBreaching",
            alarm_actions=actions,
            ok_actions=actions,
            tags=dict(tags),
            opts=moved_from(old_parent, self),
        )


def deployment_config(
    settings: EndpointSettings,
) -> aws.sagemaker.EndpointDeploymentConfigArgs | None:
    """Blue/green traffic shifting with auto-rollback on the two fixed alarms."""
    deployment = settings.deployment
    if deployment is None:
        return None
    sm = aws.sagemaker
    routing = sm.EndpointDeploymentConfigBlueGreenUpdatePolicyTrafficRoutingConfigurationArgs(
        type=deployment.strategy.upper().replace("-", "_"),
        wait_interval_in_seconds=deployment.wait_seconds,
        canary_size=sm.EndpointDeploymentConfigBlueGreenUpdatePolicyTrafficRoutingConfigurationCanarySizeArgs(
            type="CAPACITY_PERCENT", value=deployment.canary_percent
        )
        if deployment.strategy == "canary"
        else None,
        linear_step_size=sm.EndpointDeploymentConfigBlueGreenUpdatePolicyTrafficRoutingConfigurationLinearStepSizeArgs(
            type="CAPACITY_PERCENT", value=deployment.linear_step_percent
        )
        if deployment.strategy == "linear"
        else None,
    )
    return sm.EndpointDeploymentConfigArgs(
        blue_green_update_policy=sm.EndpointDeploymentConfigBlueGreenUpdatePolicyArgs(
            traffic_routing_configuration=routing,
            termination_wait_in_seconds=deployment.termination_wait_seconds,
            maximum_execution_timeout_in_seconds=deployment.max_execution_seconds,
        ),
        auto_rollback_configuration=sm.EndpointDeploymentConfigAutoRollbackConfigurationArgs(
            alarms=[
                sm.EndpointDeploymentConfigAutoRollbackConfigurationAlarmArgs(alarm_name=name)
                for name in alarm_names(settings.endpoint_name)
            ]
        ),
    )
