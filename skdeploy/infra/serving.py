"""What serves the model: Model(s) → EndpointConfiguration → Endpoint, with the endpoint's logs.

Naming follows what makes updates safe (deploy-pitfalls.md, item 2): the Model and the
EndpointConfiguration are auto-named, so a change replaces them create-before-delete without a
name collision; only the Endpoint keeps the stable ``endpointName`` and is updated in place. A new
artifact has a new content-addressed key, which changes the Model's ``modelDataUrl``, which
replaces the Model, whose new name replaces the configuration, which updates the Endpoint.
A rollback (a pinned ``artifactSha256``) takes the same path, and the Model says so in its
``skdeploy:rollback`` tag.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from skdeploy.core.constants import LOG_GROUP_PREFIX, container_environment
from skdeploy.core.rollback import ROLLBACK_TAG, rollback_label
from skdeploy.core.settings import EndpointSettings, VariantSettings
from skdeploy.core.trusted import TRUSTED_TAG
from skdeploy.infra.asynchronous import async_config
from skdeploy.infra.guardrails import deployment_config
from skdeploy.infra.naming import Naming, moved_from
from skdeploy.infra.role import ExecutionRole
from skdeploy.infra.scaling import ScalingTargetGuard, scaling_resource_id
from skdeploy.infra.store import ArtifactStore

SERVING_TYPE = "skdeploy:index:Serving"
#: Data capture's content setting → the capture modes SageMaker takes.
CAPTURE_MODES: Mapping[str, tuple[str, ...]] = {
    "both": ("Input", "Output"),
    "input": ("Input",),
    "output": ("Output",),
}


@dataclass(frozen=True)
class ServingInputs:
    """What the models run with, and what the endpoint waits for."""

    role: ExecutionRole
    store: ArtifactStore
    image_uri: pulumi.Output[str]
    #: The bucket data capture writes to.
    capture_bucket: pulumi.Output[str]
    #: The guarded endpoint kind (see :mod:`skdeploy.infra.kind`).
    kind: pulumi.Output[str]
    #: Resources to exist before the Endpoint is created or updated (the rollback alarms).
    endpoint_after: Sequence[pulumi.Resource] = ()


class Serving(pulumi.ComponentResource):
    """Models, configuration, log group, scaling guards and the Endpoint of one stack."""

    models: dict[str, aws.sagemaker.Model]
    config: aws.sagemaker.EndpointConfiguration
    endpoint: aws.sagemaker.Endpoint

    def __init__(
        self,
        naming: Naming,
        settings: EndpointSettings,
        inputs: ServingInputs,
        tags: Mapping[str, str],
        *,
        old_parent: pulumi.Resource,
    ) -> None:
        super().__init__(
            SERVING_TYPE, naming("serving"), None, pulumi.ResourceOptions(parent=old_parent)
        )
        self._old_parent = old_parent
        self._naming = naming
        self._settings = settings
        served = settings.production_variants
        variants = (*served, *([settings.shadow] if settings.shadow else []))
        self.models = {v.name: self._model(v, inputs, tags) for v in variants}
        self.config = self._config(inputs, tags)
        log_group = aws.cloudwatch.LogGroup(
            naming("logs"),
            name=LOG_GROUP_PREFIX + settings.endpoint_name,
            retention_in_days=settings.log_retention_days,
            kms_key_id=settings.kms_key_arn,
            tags=dict(tags),
            opts=self._moved(
                pulumi.ResourceOptions(protect=settings.protect, retain_on_delete=settings.protect)
            ),
        )
        guards = [self._scaling_guard(v) for v in served] if settings.autoscaling else []
        self.endpoint = self._endpoint(tags, [log_group, *inputs.endpoint_after, *guards])
        self.register_outputs(
            {"endpointName": self.endpoint.name, "endpointConfigName": self.config.name}
        )

    def _moved(self, opts: pulumi.ResourceOptions | None = None) -> pulumi.ResourceOptions:
        return moved_from(self._old_parent, self, opts)

    def _model(
        self, variant: VariantSettings, inputs: ServingInputs, tags: Mapping[str, str]
    ) -> aws.sagemaker.Model:
        settings = self._settings
        store = inputs.store
        uploaded = (
            list(store.objects.values())
            if store.multi_model
            else [store.objects[variant.name]]
            if variant.name in store.objects
            else []
        )
        return aws.sagemaker.Model(
            self._naming.of(variant, "model"),
            execution_role_arn=inputs.role.role.arn,
            primary_container=aws.sagemaker.ModelPrimaryContainerArgs(
                image=inputs.image_uri,
                model_data_url=store.model_data_url(variant.name),
                # One container serves every artifact under the prefix, by TargetModel.
                mode="MultiModel" if settings.multi_model else None,
                environment=container_environment(settings.region, settings.handler_environment),
            ),
            enable_network_isolation=settings.network_isolation,
            vpc_config=None
            if settings.vpc is None
            else aws.sagemaker.ModelVpcConfigArgs(
                subnets=list(settings.vpc.subnet_ids),
                security_group_ids=list(settings.vpc.security_group_ids),
            ),
            tags=model_tags(settings, tags),
            opts=self._moved(pulumi.ResourceOptions(depends_on=[inputs.role.policy, *uploaded])),
        )

    def _config(
        self, inputs: ServingInputs, tags: Mapping[str, str]
    ) -> aws.sagemaker.EndpointConfiguration:
        settings = self._settings
        shadow = settings.shadow
        return aws.sagemaker.EndpointConfiguration(
            self._naming("config"),
            production_variants=[
                production_variant(settings, v, self.models[v.name].name)
                for v in settings.production_variants
            ],
            shadow_production_variants=None
            if shadow is None
            else [shadow_variant(settings, shadow, self.models[shadow.name].name)],
            # Instances: the storage volume's key. Serverless: AWS's serverless guide has
            # KmsKeyId in CreateEndpointConfig too (it encrypts the copy of the image).
            kms_key_arn=settings.kms_key_arn,
            data_capture_config=capture_config(settings, inputs.capture_bucket),
            async_inference_config=async_config(settings),
            tags={**tags, "skdeploy:endpoint-kind": inputs.kind},
            opts=self._moved(),
        )

    def _scaling_guard(self, variant: VariantSettings) -> ScalingTargetGuard:
        """Deregisters the variant's scaling target before an instance type change (scaling.py)."""
        return ScalingTargetGuard(
            self._naming.of(variant, "scaling-guard"),
            region=self._settings.region,
            resource_id=scaling_resource_id(self._settings.endpoint_name, variant.name),
            instance_type=variant.instance_type,
            opts=self._moved(),
        )

    def _endpoint(
        self, tags: Mapping[str, str], after: list[pulumi.Resource]
    ) -> aws.sagemaker.Endpoint:
        settings = self._settings
        return aws.sagemaker.Endpoint(
            self._naming("endpoint"),
            name=settings.endpoint_name,
            endpoint_config_name=self.config.name,
            deployment_config=deployment_config(settings),
            tags=dict(tags),
            opts=self._moved(
                pulumi.ResourceOptions(
                    protect=settings.protect,
                    retain_on_delete=settings.protect,
                    depends_on=after,
                    # AWS cannot turn instances into serverless (or back) in place: a kind
                    # switch replaces the endpoint (the kind guard refuses it without the
                    # opt-in). Any replacement of this fixed-name endpoint deletes it first.
                    replacement_trigger=settings.endpoint_kind,
                    delete_before_replace=True,
                )
            ),
        )


def model_tags(settings: EndpointSettings, tags: Mapping[str, str]) -> dict[str, str]:
    """The stack's tags, plus what every plan of the Model must show: the trust granted to the
    user's own classes, and a rollback to a pinned artifact."""
    model = dict(tags)
    if settings.trusted_modules:
        model[TRUSTED_TAG] = " ".join(settings.trusted_modules)
    if settings.artifact_sha256 is not None:
        model[ROLLBACK_TAG] = rollback_label(settings.artifact_sha256)
    return model


def production_variant(
    settings: EndpointSettings, variant: VariantSettings, model_name: pulumi.Output[str]
) -> aws.sagemaker.EndpointConfigurationProductionVariantArgs:
    """A production variant: serverless, or instances with their timeouts."""
    sm = aws.sagemaker
    if settings.serverless is not None:
        return sm.EndpointConfigurationProductionVariantArgs(
            variant_name=variant.name,
            model_name=model_name,
            initial_variant_weight=1.0,
            serverless_config=sm.EndpointConfigurationProductionVariantServerlessConfigArgs(
                memory_size_in_mb=settings.serverless.memory_mb,
                max_concurrency=settings.serverless.max_concurrency,
                provisioned_concurrency=settings.serverless.provisioned_concurrency,
            ),
        )
    count = variant.instance_count
    if settings.autoscaling is not None:
        count = min(max(count, settings.autoscaling.min), settings.autoscaling.max)
    return sm.EndpointConfigurationProductionVariantArgs(
        variant_name=variant.name,
        model_name=model_name,
        instance_type=variant.instance_type,
        initial_instance_count=count,
        initial_variant_weight=variant.weight,
        container_startup_health_check_timeout_in_seconds=settings.startup_health_check_timeout_seconds,
        model_data_download_timeout_in_seconds=settings.model_download_timeout_seconds,
    )


def shadow_variant(
    settings: EndpointSettings, variant: VariantSettings, model_name: pulumi.Output[str]
) -> aws.sagemaker.EndpointConfigurationShadowProductionVariantArgs:
    """The shadow variant: a copy of the traffic, answers discarded."""
    return aws.sagemaker.EndpointConfigurationShadowProductionVariantArgs(
        variant_name=variant.name,
        model_name=model_name,
        instance_type=variant.instance_type,
        initial_instance_count=variant.instance_count,
        initial_variant_weight=1.0,
        container_startup_health_check_timeout_in_seconds=settings.startup_health_check_timeout_seconds,
        model_data_download_timeout_in_seconds=settings.model_download_timeout_seconds,
    )


def capture_config(
    settings: EndpointSettings, bucket: pulumi.Output[str]
) -> aws.sagemaker.EndpointConfigurationDataCaptureConfigArgs | None:
    """Data capture to ``s3://bucket/prefix``, encrypted with the stack's key if it has one."""
    capture = settings.data_capture
    if capture is None:
        return None
    sm = aws.sagemaker
    return sm.EndpointConfigurationDataCaptureConfigArgs(
        enable_capture=True,
        initial_sampling_percentage=capture.sampling_percent,
        destination_s3_uri=pulumi.Output.concat("s3://", bucket, "/", capture.prefix),
        capture_options=[
            sm.EndpointConfigurationDataCaptureConfigCaptureOptionArgs(capture_mode=mode)
            for mode in CAPTURE_MODES[capture.capture_content]
        ],
        kms_key_id=settings.kms_key_arn,
    )
