"""``SklearnEndpoint``: the artifact bucket, execution role, Model, EndpointConfiguration and
Endpoint of one stack, as one Pulumi component.

Naming follows what makes updates safe (deploy-pitfalls.md, item 2): the Model and the
EndpointConfiguration are auto-named, so a change replaces them create-before-delete without a
name collision; only the Endpoint keeps the stable ``endpointName`` and is updated in place. A new
artifact has a new content-addressed key, which changes the Model's ``modelDataUrl``, which
replaces the Model, whose new name replaces the configuration, which updates the Endpoint.

Usable from any Pulumi program::

    from skdeploy import load_stack_settings
    from skdeploy.infra.endpoint import SklearnEndpoint

    endpoint = SklearnEndpoint("churn", settings)
    pulumi.export("endpoint", endpoint.endpoint_name)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pulumi
import pulumi_aws as aws

from skdeploy.core import constants as c
from skdeploy.core import iam
from skdeploy.core.artifact import Artifact, build_artifact, build_for_settings
from skdeploy.core.constants import (
    ARTIFACT_PREFIX,
    BUILD_DIR,
    COMPONENT_TYPE,
    DEFAULT_VARIANT,
    LOG_GROUP_PREFIX,
    OUTPUT_ENDPOINT_KIND,
    PROJECT_NAME,
    artifact_key,
    container_environment,
)
from skdeploy.core.frameworks import IMAGE_REPOSITORY
from skdeploy.core.image import parse_image_uri
from skdeploy.core.settings import EndpointSettings, VariantSettings
from skdeploy.core.trusted import TRUSTED_TAG
from skdeploy.infra.api import declare_front_door
from skdeploy.infra.scaling import (
    INVOCATIONS_METRIC,
    SCALABLE_DIMENSION,
    SERVICE_NAMESPACE,
    ScalingTargetGuard,
    scaling_resource_id,
)


class EndpointReplacementRefused(RuntimeError):
    """The stack would switch between serverless and instances without the opt-in."""


class SecondEndpointRefused(RuntimeError):
    """A program declared a second SklearnEndpoint: the stack outputs describe one endpoint."""


#: CloudWatch alarms the blue/green rollback watches: (suffix, metric, statistic, unit note).
ROLLBACK_ALARMS = ("invocation-5xx-errors", "model-latency")


def alarm_names(endpoint_name: str) -> list[str]:
    """Fixed alarm names: the rollback list never changes, so it never replaces the Endpoint."""
    return [f"{endpoint_name}-{suffix}" for suffix in ROLLBACK_ALARMS]


def resource_tags(settings: EndpointSettings, artifact_sha256: str) -> dict[str, str]:
    """Tags on every resource: the user's, plus where it came from."""
    return {
        **settings.tags,
        "skdeploy:project": PROJECT_NAME,
        "skdeploy:stack": settings.stack,
        "skdeploy:artifact-sha256": artifact_sha256,
    }


def _claim_the_stack(name: str) -> None:
    """Refuse a second component in one program: both would write the same ``endpointKind``."""
    from pulumi.runtime.settings import get_root_resource

    stack = get_root_resource()
    if stack is None:
        return
    first = getattr(stack, "_skdeploy_endpoint", None)
    if first is not None:
        raise SecondEndpointRefused(
            f"one SklearnEndpoint per stack: {first!r} is already declared, so {name!r} would "
            "share its stack outputs (endpointKind among them, which guards one endpoint's "
            "serverless/instances switch); put the second endpoint in its own stack"
        )
    stack._skdeploy_endpoint = name  # type: ignore[attr-defined]


class SklearnEndpoint(pulumi.ComponentResource):
    """A SageMaker real-time endpoint serving one scikit-learn model artifact.

    One per stack. Besides its children it exports one stack output itself, ``endpointKind``
    (serverless or instances): the next update reads it back to refuse a switch AWS cannot make
    in place, so it must be there even when the program exports nothing else.
    """

    endpoint_name: pulumi.Output[str]
    endpoint_arn: pulumi.Output[str]
    endpoint_config_name: pulumi.Output[str]
    model_name: pulumi.Output[str]
    model_data_url: pulumi.Output[str]
    artifact_sha256: pulumi.Output[str]
    image_uri: pulumi.Output[str]
    region: pulumi.Output[str]
    endpoint_kind: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        settings: EndpointSettings,
        *,
        artifact: Artifact | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        _claim_the_stack(name)
        super().__init__(COMPONENT_TYPE, name, None, opts)
        served = settings.production_variants
        variants = (*served, *([settings.shadow] if settings.shadow else []))
        single = not settings.variants
        built_of: dict[str, Artifact] = {}
        for variant in variants:
            if single and variant.name == DEFAULT_VARIANT:
                built_of[variant.name] = artifact or build_for_settings(settings)
            else:
                built_of[variant.name] = build_artifact(
                    variant.model_dir,
                    variant.inference_dir,
                    variant.model_files,
                    settings.project_dir / BUILD_DIR,
                    project_dir=settings.project_dir,
                )
        built = built_of[served[0].name]
        tags = resource_tags(settings, built.sha256)

        def logical(variant: VariantSettings, suffix: str) -> str:
            """Names of the single default variant stay as they were before variants existed."""
            if single and variant.name == DEFAULT_VARIANT:
                return f"{prefix}-{suffix}"
            return f"{prefix}-{variant.name.lower()}-{suffix}"

        child = pulumi.ResourceOptions(parent=self)
        identity = aws.get_caller_identity_output(opts=pulumi.InvokeOptions(parent=self))
        partition = aws.get_partition_output(opts=pulumi.InvokeOptions(parent=self)).partition
        prefix = name.lower()

        # --- Artifact bucket: private, encrypted, versioned, TLS only -------------------------
        protected = pulumi.ResourceOptions(
            parent=self, protect=settings.protect, retain_on_delete=settings.protect
        )
        bucket = aws.s3.Bucket(
            f"{prefix}-artifacts", force_destroy=False, tags=tags, opts=protected
        )
        public_block = aws.s3.BucketPublicAccessBlock(
            f"{prefix}-artifacts-public-access",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        ownership = aws.s3.BucketOwnershipControls(
            f"{prefix}-artifacts-ownership",
            bucket=bucket.id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
            opts=child,
        )
        encryption = aws.s3.BucketServerSideEncryptionConfiguration(
            f"{prefix}-artifacts-encryption",
            bucket=bucket.id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                        sse_algorithm="aws:kms" if settings.kms_key_arn else "AES256",
                        kms_master_key_id=settings.kms_key_arn,
                    ),
                    bucket_key_enabled=True,
                )
            ],
            opts=child,
        )
        versioning = aws.s3.BucketVersioning(
            f"{prefix}-artifacts-versioning",
            bucket=bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(
                status="Enabled"
            ),
            opts=child,
        )
        bucket_policy = aws.s3.BucketPolicy(
            f"{prefix}-artifacts-tls-only",
            bucket=bucket.id,
            policy=bucket.arn.apply(lambda arn: json.dumps(iam.tls_only_bucket_policy(arn))),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[public_block]),
        )

        # --- The artifacts, under their content address; kept when newer ones replace them ---
        keys = {v.name: artifact_key(built_of[v.name].sha256) for v in variants}
        # One object per distinct artifact: variants with identical inputs share it.
        objects_by_key: dict[str, aws.s3.BucketObjectv2] = {}
        for v in variants:
            if keys[v.name] in objects_by_key:
                continue
            objects_by_key[keys[v.name]] = aws.s3.BucketObjectv2(
                logical(v, "artifact"),
                bucket=bucket.id,
                key=keys[v.name],
                source=pulumi.FileAsset(str(built_of[v.name].path)),
                content_type="application/gzip",
                tags=tags,
                opts=pulumi.ResourceOptions(
                    parent=self,
                    retain_on_delete=True,
                    depends_on=[encryption, versioning, ownership, public_block, bucket_policy],
                ),
            )
        objects = {v.name: objects_by_key[keys[v.name]] for v in variants}
        model_data_url = pulumi.Output.concat("s3://", bucket.bucket, "/", keys[served[0].name])

        # --- Image -----------------------------------------------------------------------------
        image_uri: pulumi.Output[str]
        if settings.image_uri is not None:
            image_uri = pulumi.Output.from_input(settings.image_uri)
        else:
            image_uri = aws.sagemaker.get_prebuilt_ecr_image_output(
                repository_name=IMAGE_REPOSITORY,
                image_tag=settings.framework.image_tag,
                region=settings.region,
                opts=pulumi.InvokeOptions(parent=self),
            ).registry_path

        # --- Execution role: exactly this artifact, this image, these logs ----------------------
        # Every role carries the boundary: the deploy role may create and change roles only with
        # it (deploy/deploy-role-policy.json), so no role it makes can grow past it.
        permissions_boundary = pulumi.Output.all(partition, identity.account_id).apply(
            lambda values: iam.permissions_boundary_arn(values[0], values[1])
        )
        role = aws.iam.Role(
            f"{prefix}-execution",
            assume_role_policy=identity.account_id.apply(
                lambda account: json.dumps(iam.assume_role_policy(account))
            ),
            description=f"SageMaker execution role of endpoint {settings.endpoint_name}",
            permissions_boundary=permissions_boundary,
            tags=tags,
            opts=child,
        )

        capture = settings.data_capture
        capture_bucket: pulumi.Output[str] = (
            pulumi.Output.from_input(capture.bucket)
            if capture is not None and capture.bucket
            else bucket.bucket
        )

        def role_policy_document(values: list[Any]) -> str:
            part, account, image, capture_bucket_name, *object_arns = values
            return json.dumps(
                iam.execution_role_policy(
                    partition=part,
                    region=settings.region,
                    account_id=account,
                    artifact_object_arns=list(object_arns),
                    image_repository_arns=[parse_image_uri(image).repository_arn(part)],
                    endpoint_name=settings.endpoint_name,
                    capture_prefix_arns=None
                    if capture is None
                    else [f"arn:{part}:s3:::{capture_bucket_name}/{capture.prefix}/*"],
                    kms_key_arn=settings.kms_key_arn,
                    vpc=settings.vpc is not None,
                    rollback_alarm_names=alarm_names(settings.endpoint_name)
                    if settings.deployment
                    else None,
                )
            )

        # The whole content-addressed prefix, not only today's keys: during an update or a
        # rollback the running configuration still downloads its own (older) artifact, and the
        # role policy is updated before the endpoint moves. The objects are immutable and private.
        object_arns = [pulumi.Output.concat(bucket.arn, "/", ARTIFACT_PREFIX, "*")]
        role_policy = aws.iam.RolePolicy(
            f"{prefix}-execution-policy",
            role=role.id,
            policy=pulumi.Output.all(
                partition, identity.account_id, image_uri, capture_bucket, *object_arns
            ).apply(role_policy_document),
            opts=child,
        )

        # --- Model -> EndpointConfiguration -> Endpoint ----------------------------------------
        models = {
            v.name: aws.sagemaker.Model(
                logical(v, "model"),
                execution_role_arn=role.arn,
                primary_container=aws.sagemaker.ModelPrimaryContainerArgs(
                    image=image_uri,
                    model_data_url=pulumi.Output.concat("s3://", bucket.bucket, "/", keys[v.name]),
                    environment=container_environment(
                        settings.region, settings.handler_environment
                    ),
                ),
                enable_network_isolation=settings.network_isolation,
                vpc_config=None
                if settings.vpc is None
                else aws.sagemaker.ModelVpcConfigArgs(
                    subnets=list(settings.vpc.subnet_ids),
                    security_group_ids=list(settings.vpc.security_group_ids),
                ),
                # Trust granted to the user's own classes shows in every plan of the Model.
                tags={**tags, TRUSTED_TAG: " ".join(settings.trusted_modules)}
                if settings.trusted_modules
                else tags,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[role_policy, objects[v.name]]),
            )
            for v in variants
        }
        model = models[served[0].name]
        kind = self._endpoint_kind_guard(settings, prefix)
        config = aws.sagemaker.EndpointConfiguration(
            f"{prefix}-config",
            production_variants=[self._variant(settings, v, models[v.name].name) for v in served],
            shadow_production_variants=None
            if settings.shadow is None
            else [
                self._shadow_variant(settings, settings.shadow, models[settings.shadow.name].name)
            ],
            # Instances: the storage volume's key. Serverless: AWS's serverless guide has
            # KmsKeyId in CreateEndpointConfig too (it encrypts the copy of the image).
            kms_key_arn=settings.kms_key_arn,
            data_capture_config=None
            if capture is None
            else aws.sagemaker.EndpointConfigurationDataCaptureConfigArgs(
                enable_capture=True,
                initial_sampling_percentage=capture.sampling_percent,
                destination_s3_uri=pulumi.Output.concat(
                    "s3://", capture_bucket, "/", capture.prefix
                ),
                capture_options=[
                    aws.sagemaker.EndpointConfigurationDataCaptureConfigCaptureOptionArgs(
                        capture_mode=mode
                    )
                    for mode in {
                        "both": ["Input", "Output"],
                        "input": ["Input"],
                        "output": ["Output"],
                    }[capture.capture_content]
                ],
                kms_key_id=settings.kms_key_arn,
            ),
            tags={**tags, "skdeploy:endpoint-kind": kind},
            opts=child,
        )

        log_group = aws.cloudwatch.LogGroup(
            f"{prefix}-logs",
            name=LOG_GROUP_PREFIX + settings.endpoint_name,
            retention_in_days=settings.log_retention_days,
            kms_key_id=settings.kms_key_arn,
            tags=tags,
            opts=protected,
        )
        alarms = self._rollback_alarms(settings, prefix, tags) if settings.deployment else []

        guards: list[ScalingTargetGuard] = []
        if settings.autoscaling is not None:
            guards = [
                ScalingTargetGuard(
                    logical(v, "scaling-guard"),
                    region=settings.region,
                    resource_id=scaling_resource_id(settings.endpoint_name, v.name),
                    instance_type=v.instance_type,
                    opts=child,
                )
                for v in served
            ]
        endpoint = aws.sagemaker.Endpoint(
            f"{prefix}-endpoint",
            name=settings.endpoint_name,
            endpoint_config_name=config.name,
            deployment_config=self._deployment_config(settings),
            tags=tags,
            opts=pulumi.ResourceOptions(
                parent=self,
                protect=settings.protect,
                retain_on_delete=settings.protect,
                depends_on=[log_group, *alarms, *guards],
                # AWS cannot turn instances into serverless (or back) in place: a kind switch
                # replaces the endpoint (the guard above refuses it without the opt-in). Any
                # replacement of this fixed-name endpoint must delete the old one first.
                replacement_trigger=settings.endpoint_kind,
                delete_before_replace=True,
            ),
        )
        if settings.autoscaling is not None:
            for variant in served:
                self._autoscaling(settings, variant, logical, endpoint, tags)
        self.api_url: pulumi.Output[str] | None = None
        if settings.api is not None:
            self.api_url = declare_front_door(
                self, settings, prefix, endpoint, tags, permissions_boundary
            )

        self.endpoint_name = endpoint.name
        self.endpoint_arn = endpoint.arn
        self.endpoint_config_name = config.name
        self.model_name = model.name
        self.model_data_url = model_data_url
        self.artifact_sha256 = pulumi.Output.from_input(built.sha256)
        self.image_uri = image_uri
        self.region = pulumi.Output.from_input(settings.region)
        self.endpoint_kind = kind
        pulumi.export(OUTPUT_ENDPOINT_KIND, kind)  # the guard's memory (see the class docstring)
        self.register_outputs(self.outputs())

    def _endpoint_kind_guard(self, settings: EndpointSettings, prefix: str) -> pulumi.Output[str]:
        """The endpoint kind, checked against the kind this stack deployed last time.

        The previous kind is read back from this stack's own outputs through a StackReference;
        a switch without ``allowEndpointReplacement`` fails the program before the configuration
        or the endpoint is touched (both wait for this value).
        """
        reference = pulumi.StackReference(
            f"{prefix}-previous",
            stack_name=f"{pulumi.get_organization()}/{pulumi.get_project()}/{pulumi.get_stack()}",
            opts=pulumi.ResourceOptions(parent=self),
        )

        def check(previous: Any) -> str:
            if (
                isinstance(previous, str)
                and previous != settings.endpoint_kind
                and not settings.allow_endpoint_replacement
            ):
                raise EndpointReplacementRefused(
                    f"endpoint {settings.endpoint_name} runs on {previous}; AWS cannot switch "
                    f"it to {settings.endpoint_kind} in place. Set "
                    "skdeploy:allowEndpointReplacement to true to accept a new endpoint (it is "
                    "deleted and created again: downtime)."
                )
            return settings.endpoint_kind

        return reference.get_output(OUTPUT_ENDPOINT_KIND).apply(check)

    @staticmethod
    def _variant(
        settings: EndpointSettings, variant: VariantSettings, model_name: pulumi.Output[str]
    ) -> aws.sagemaker.EndpointConfigurationProductionVariantArgs:
        """A production variant: serverless, or instances with their timeouts."""
        if settings.serverless is not None:
            return aws.sagemaker.EndpointConfigurationProductionVariantArgs(
                variant_name=variant.name,
                model_name=model_name,
                initial_variant_weight=1.0,
                serverless_config=aws.sagemaker.EndpointConfigurationProductionVariantServerlessConfigArgs(
                    memory_size_in_mb=settings.serverless.memory_mb,
                    max_concurrency=settings.serverless.max_concurrency,
                    provisioned_concurrency=settings.serverless.provisioned_concurrency,
                ),
            )
        count = variant.instance_count
        if settings.autoscaling is not None:
            count = min(max(count, settings.autoscaling.min), settings.autoscaling.max)
        return aws.sagemaker.EndpointConfigurationProductionVariantArgs(
            variant_name=variant.name,
            model_name=model_name,
            instance_type=variant.instance_type,
            initial_instance_count=count,
            initial_variant_weight=variant.weight,
            container_startup_health_check_timeout_in_seconds=settings.startup_health_check_timeout_seconds,
            model_data_download_timeout_in_seconds=settings.model_download_timeout_seconds,
        )

    @staticmethod
    def _shadow_variant(
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

    def _rollback_alarms(
        self, settings: EndpointSettings, prefix: str, tags: dict[str, str]
    ) -> list[aws.cloudwatch.MetricAlarm]:
        """5XX errors and model latency of the variant: what blue/green rolls back on."""
        deployment = settings.deployment
        assert deployment is not None
        # With several variants the alarms watch the first one: one fixed alarm list keeps the
        # rollback configuration (which replaces the endpoint when it changes) stable.
        first = settings.production_variants[0].name
        dimensions = {"EndpointName": settings.endpoint_name, "VariantName": first}
        actions = [deployment.alarm_topic_arn] if deployment.alarm_topic_arn else []
        errors_name, latency_name = alarm_names(settings.endpoint_name)
        common: dict[str, Any] = {
            "namespace": "AWS/SageMaker",
            "dimensions": dimensions,
            "period": 60,
            "evaluation_periods": 1,
            "comparison_operator": "GreaterThanOrEqualToThreshold",
            "treat_missing_data": "notBreaching",
            "alarm_actions": actions,
            "ok_actions": actions,
            "tags": tags,
        }
        return [
            aws.cloudwatch.MetricAlarm(
                f"{prefix}-alarm-5xx",
                name=errors_name,
                alarm_description=f"5XX errors of {settings.endpoint_name} (rolls back updates)",
                metric_name="Invocation5XXErrors",
                statistic="Sum",
                threshold=deployment.error_threshold,
                opts=pulumi.ResourceOptions(parent=self),
                **common,
            ),
            aws.cloudwatch.MetricAlarm(
                f"{prefix}-alarm-latency",
                name=latency_name,
                alarm_description=f"model latency of {settings.endpoint_name} (rolls back updates)",
                metric_name="ModelLatency",
                statistic="Average",
                # ModelLatency is reported in microseconds.
                threshold=deployment.latency_threshold_ms * 1000,
                opts=pulumi.ResourceOptions(parent=self),
                **common,
            ),
        ]

    @staticmethod
    def _deployment_config(
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
            canary_size=aws.sagemaker.EndpointDeploymentConfigBlueGreenUpdatePolicyTrafficRoutingConfigurationCanarySizeArgs(
                type="CAPACITY_PERCENT", value=deployment.canary_percent
            )
            if deployment.strategy == "canary"
            else None,
            linear_step_size=aws.sagemaker.EndpointDeploymentConfigBlueGreenUpdatePolicyTrafficRoutingConfigurationLinearStepSizeArgs(
                type="CAPACITY_PERCENT", value=deployment.linear_step_percent
            )
            if deployment.strategy == "linear"
            else None,
        )
        return aws.sagemaker.EndpointDeploymentConfigArgs(
            blue_green_update_policy=aws.sagemaker.EndpointDeploymentConfigBlueGreenUpdatePolicyArgs(
                traffic_routing_configuration=routing,
                termination_wait_in_seconds=deployment.termination_wait_seconds,
                maximum_execution_timeout_in_seconds=deployment.max_execution_seconds,
            ),
            auto_rollback_configuration=aws.sagemaker.EndpointDeploymentConfigAutoRollbackConfigurationArgs(
                alarms=[
                    aws.sagemaker.EndpointDeploymentConfigAutoRollbackConfigurationAlarmArgs(
                        alarm_name=name
                    )
                    for name in alarm_names(settings.endpoint_name)
                ]
            ),
        )

    def _autoscaling(
        self,
        settings: EndpointSettings,
        variant: VariantSettings,
        logical: Callable[[VariantSettings, str], str],
        endpoint: aws.sagemaker.Endpoint,
        tags: dict[str, str],
    ) -> None:
        """Target tracking on one variant's invocations per instance, after the endpoint exists."""
        scaling = settings.autoscaling
        assert scaling is not None
        # Replaced (deleted first) whenever the variant's instance type changes; see scaling.py.
        replace_on_type = pulumi.ResourceOptions(
            parent=self,
            depends_on=[endpoint],
            replacement_trigger=variant.instance_type,
            delete_before_replace=True,
        )
        target = aws.appautoscaling.Target(
            logical(variant, "scaling-target"),
            service_namespace=SERVICE_NAMESPACE,
            resource_id=endpoint.name.apply(lambda name: scaling_resource_id(name, variant.name)),
            scalable_dimension=SCALABLE_DIMENSION,
            min_capacity=scaling.min,
            max_capacity=scaling.max,
            tags=tags,
            opts=replace_on_type,
        )
        aws.appautoscaling.Policy(
            logical(variant, "scaling-policy"),
            policy_type="TargetTrackingScaling",
            service_namespace=target.service_namespace,
            resource_id=target.resource_id,
            scalable_dimension=target.scalable_dimension,
            target_tracking_scaling_policy_configuration=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationArgs(
                predefined_metric_specification=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecificationArgs(
                    predefined_metric_type=INVOCATIONS_METRIC
                ),
                target_value=scaling.target_invocations_per_instance,
                scale_in_cooldown=scaling.scale_in_cooldown,
                scale_out_cooldown=scaling.scale_out_cooldown,
            ),
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[target],
                replacement_trigger=variant.instance_type,
                delete_before_replace=True,
            ),
        )

    def outputs(self) -> dict[str, pulumi.Output[str]]:
        """The stack outputs, keyed by the names in :mod:`skdeploy.core.constants` (``apiUrl`` only
        with the front door)."""
        return {
            c.OUTPUT_ENDPOINT_NAME: self.endpoint_name,
            c.OUTPUT_ENDPOINT_ARN: self.endpoint_arn,
            c.OUTPUT_ENDPOINT_CONFIG_NAME: self.endpoint_config_name,
            c.OUTPUT_MODEL_NAME: self.model_name,
            c.OUTPUT_MODEL_DATA_URL: self.model_data_url,
            c.OUTPUT_ARTIFACT_SHA256: self.artifact_sha256,
            c.OUTPUT_IMAGE_URI: self.image_uri,
            c.OUTPUT_REGION: self.region,
            c.OUTPUT_ENDPOINT_KIND: self.endpoint_kind,
            **({c.OUTPUT_API_URL: self.api_url} if self.api_url is not None else {}),
        }
