"""Autoscaling that survives an instance type change.

AWS refuses an endpoint update that changes the instance type of a variant with a registered
scaling target ("the target must be deregistered first"), and the provider cannot express that
order: the scaling target depends on the endpoint, so Pulumi would update the endpoint first.
skdeploy adds a small guard resource that the Endpoint depends on:

1. ``ScalingTargetGuard`` (a Pulumi dynamic resource, run in the program's own process) is
   updated *before* the Endpoint; when the variant's instance type changed, its update
   deregisters the scaling target (AWS deletes the target's policies with it);
2. the Endpoint is updated to the configuration with the new instance type;
3. the scaling Target and Policy, whose replacement is triggered by the instance type
   (delete-before-replace), are registered again against the updated endpoint.

Across such an update the variant runs ``initialInstanceCount`` instances until the new target
scales it; any count autoscaling had reached before is not retained (the provider does not expose
``RetainAllVariantProperties``).

An asynchronous endpoint (``async``) tracks its queue instead of its invocations: the variants
follow ``ApproximateBacklogSizePerInstance``. With ``scaleToZero`` they may scale in to no
instance, and since a target-tracking policy cannot scale out from zero (there is no instance to
divide the backlog by), a step policy adds one instance when the ``HasBacklogWithoutCapacity``
alarm fires, as AWS's asynchronous inference guide does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi.dynamic
import pulumi_aws as aws

from skdeploy.core.settings import AutoscalingSettings, EndpointSettings, VariantSettings
from skdeploy.infra.naming import Naming, moved_from

AUTOSCALING_TYPE = "skdeploy:index:Autoscaling"
SERVICE_NAMESPACE = "sagemaker"
SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
INVOCATIONS_METRIC = "SageMakerVariantInvocationsPerInstance"
#: An asynchronous endpoint's queue metrics (namespace AWS/SageMaker, dimension EndpointName).
BACKLOG_METRIC = "ApproximateBacklogSizePerInstance"
NO_CAPACITY_METRIC = "HasBacklogWithoutCapacity"

_aas = aws.appautoscaling
_Tracking = _aas.PolicyTargetTrackingScalingPolicyConfigurationArgs
_Predefined = _aas.PolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecificationArgs
_Customized = _aas.PolicyTargetTrackingScalingPolicyConfigurationCustomizedMetricSpecificationArgs
_Dimension = (
    _aas.PolicyTargetTrackingScalingPolicyConfigurationCustomizedMetricSpecificationDimensionArgs
)


def scaling_resource_id(endpoint_name: str, variant: str) -> str:
    """Application Auto Scaling's id of an endpoint variant."""
    return f"endpoint/{endpoint_name}/variant/{variant}"


def deregister_scaling_target(region: str, resource_id: str, client: Any = None) -> bool:
    """Deregister the variant's scaling target; False when none was registered."""
    if client is None:
        import boto3

        client = boto3.client("application-autoscaling", region_name=region)
    from botocore.exceptions import ClientError

    try:
        client.deregister_scalable_target(
            ServiceNamespace=SERVICE_NAMESPACE,
            ResourceId=resource_id,
            ScalableDimension=SCALABLE_DIMENSION,
        )
    except ClientError as exc:
        error = exc.response.get("Error", {})
        # AWS documents ObjectNotFoundException; moto answers ValidationException instead.
        missing = error.get("Code") == "ObjectNotFoundException" or (
            error.get("Code") == "ValidationException"
            and "No scalable target found" in str(error.get("Message"))
        )
        if missing:
            return False
        raise
    return True


class ScalingTargetGuardProvider(pulumi.dynamic.ResourceProvider):
    """Deregisters the scaling target when the variant's instance type is about to change."""

    def create(self, props: dict[str, Any]) -> pulumi.dynamic.CreateResult:
        """Nothing to do on creation: no target exists before the endpoint."""
        return pulumi.dynamic.CreateResult(id_=str(props["resource_id"]), outs=props)

    def diff(
        self, _id: str, _olds: dict[str, Any], _news: dict[str, Any]
    ) -> pulumi.dynamic.DiffResult:
        """Any input change is an in-place update (never a replacement)."""
        changed = [
            key
            for key in ("instance_type", "resource_id", "region")
            if _olds.get(key) != _news.get(key)
        ]
        return pulumi.dynamic.DiffResult(changes=bool(changed), replaces=[], stables=[])

    def update(
        self, _id: str, _olds: dict[str, Any], _news: dict[str, Any]
    ) -> pulumi.dynamic.UpdateResult:
        """On a new instance type, deregister the old target before the endpoint update."""
        if _olds.get("instance_type") != _news.get("instance_type"):
            deregister_scaling_target(str(_olds["region"]), str(_olds["resource_id"]))
        return pulumi.dynamic.UpdateResult(outs=_news)


class ScalingTargetGuard(pulumi.dynamic.Resource):
    """Ordered before the Endpoint; see the module documentation."""

    def __init__(
        self,
        name: str,
        *,
        region: str,
        resource_id: str,
        instance_type: str,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(
            ScalingTargetGuardProvider(),
            name,
            {"region": region, "resource_id": resource_id, "instance_type": instance_type},
            opts,
        )


class Autoscaling(pulumi.ComponentResource):
    """Target tracking on each variant's invocations (or queue) per instance, after the endpoint.

    The guards that must come *before* the Endpoint belong to it (:mod:`skdeploy.infra.serving`);
    this component comes after it.
    """

    def __init__(
        self,
        naming: Naming,
        settings: EndpointSettings,
        variants: tuple[VariantSettings, ...],
        endpoint: aws.sagemaker.Endpoint,
        tags: Mapping[str, str],
        *,
        old_parent: pulumi.Resource,
    ) -> None:
        """Scaling of ``settings.autoscaling`` (which must be set), on the queue when ``async``."""
        scaling = settings.autoscaling
        assert scaling is not None
        backlog = settings.async_inference
        super().__init__(
            AUTOSCALING_TYPE, naming("autoscaling"), None, pulumi.ResourceOptions(parent=old_parent)
        )
        self._old_parent = old_parent
        self._backlog = backlog
        self.targets = [
            self._track(naming, scaling, variant, endpoint, tags) for variant in variants
        ]
        if backlog is not None and backlog.scale_to_zero:
            for variant, target in zip(variants, self.targets, strict=True):
                self._wake(naming, variant, target, endpoint, tags)
        self.register_outputs({"resourceIds": [t.resource_id for t in self.targets]})

    def _track(
        self,
        naming: Naming,
        scaling: AutoscalingSettings,
        variant: VariantSettings,
        endpoint: aws.sagemaker.Endpoint,
        tags: Mapping[str, str],
    ) -> aws.appautoscaling.Target:
        """One variant's scaling target and policy, replaced (deleted first) on a new type."""
        target = aws.appautoscaling.Target(
            naming.of(variant, "scaling-target"),
            service_namespace=SERVICE_NAMESPACE,
            resource_id=endpoint.name.apply(lambda name: scaling_resource_id(name, variant.name)),
            scalable_dimension=SCALABLE_DIMENSION,
            min_capacity=0 if self._backlog and self._backlog.scale_to_zero else scaling.min,
            max_capacity=scaling.max,
            tags=dict(tags),
            opts=self._replaced_on_type(variant, endpoint),
        )
        aas = aws.appautoscaling
        aas.Policy(
            naming.of(variant, "scaling-policy"),
            policy_type="TargetTrackingScaling",
            service_namespace=target.service_namespace,
            resource_id=target.resource_id,
            scalable_dimension=target.scalable_dimension,
            target_tracking_scaling_policy_configuration=self._tracking(scaling, endpoint),
            opts=self._replaced_on_type(variant, target),
        )
        return target

    def _tracking(
        self, scaling: AutoscalingSettings, endpoint: aws.sagemaker.Endpoint
    ) -> _Tracking:
        """Invocations per instance; an asynchronous endpoint's backlog per instance instead."""
        if self._backlog is None:
            return _Tracking(
                predefined_metric_specification=_Predefined(
                    predefined_metric_type=INVOCATIONS_METRIC
                ),
                target_value=scaling.target_invocations_per_instance,
                scale_in_cooldown=scaling.scale_in_cooldown,
                scale_out_cooldown=scaling.scale_out_cooldown,
            )
        return _Tracking(
            customized_metric_specification=_backlog_metric(endpoint),
            target_value=self._backlog.target_backlog_per_instance,
            scale_in_cooldown=scaling.scale_in_cooldown,
            scale_out_cooldown=scaling.scale_out_cooldown,
        )

    def _wake(
        self,
        naming: Naming,
        variant: VariantSettings,
        target: aws.appautoscaling.Target,
        endpoint: aws.sagemaker.Endpoint,
        tags: Mapping[str, str],
    ) -> None:
        """From zero instances: one more whenever requests wait with no instance to serve them."""
        aas = aws.appautoscaling
        step = aas.Policy(
            naming.of(variant, "scale-from-zero"),
            policy_type="StepScaling",
            service_namespace=target.service_namespace,
            resource_id=target.resource_id,
            scalable_dimension=target.scalable_dimension,
            step_scaling_policy_configuration=aas.PolicyStepScalingPolicyConfigurationArgs(
                adjustment_type="ChangeInCapacity",
                metric_aggregation_type="Average",
                cooldown=300,
                step_adjustments=[
                    aas.PolicyStepScalingPolicyConfigurationStepAdjustmentArgs(
                        metric_interval_lower_bound="0", scaling_adjustment=1
                    )
                ],
            ),
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[target],
                replacement_trigger=variant.instance_type,
                delete_before_replace=True,
            ),
        )
        aws.cloudwatch.MetricAlarm(
            naming.of(variant, "backlog-without-capacity"),
            namespace="AWS/SageMaker",
            metric_name=NO_CAPACITY_METRIC,
            dimensions={"EndpointName": endpoint.name},
            statistic="Average",
            period=60,
            evaluation_periods=2,
            threshold=1,
            comparison_operator="GreaterThanOrEqualToThreshold",
            treat_missing_data="missing",
            alarm_actions=[step.arn],
            tags=dict(tags),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _replaced_on_type(
        self, variant: VariantSettings, after: pulumi.Resource
    ) -> pulumi.ResourceOptions:
        return moved_from(
            self._old_parent,
            self,
            pulumi.ResourceOptions(
                depends_on=[after],
                replacement_trigger=variant.instance_type,
                delete_before_replace=True,
            ),
        )


def _backlog_metric(endpoint: aws.sagemaker.Endpoint) -> _Customized:
    """The endpoint's queued requests per instance, averaged (the metric has no variant)."""
    return _Customized(
        metric_name=BACKLOG_METRIC,
        namespace="AWS/SageMaker",
        statistic="Average",
        dimensions=[_Dimension(name="EndpointName", value=endpoint.name)],
    )
