"""``SklearnEndpoint``: the artifact bucket, execution role, Model, EndpointConfiguration and
Endpoint of one stack, as one Pulumi component.

Naming follows what makes updates safe (deploy-pitfalls.md, item 2): the Model and the
EndpointConfiguration are auto-named, so a change replaces them create-before-delete without a
name collision; only the Endpoint keeps the stable ``endpointName`` and is updated in place. A new
artifact has a new content-addressed key, which changes the Model's ``modelDataUrl``, which
replaces the Model, whose new name replaces the configuration, which updates the Endpoint.

Usable from any Pulumi program::

    from skdeploy import load_stack_settings
    from skdeploy.endpoint import SklearnEndpoint

    endpoint = SklearnEndpoint("churn", settings)
    pulumi.export("endpoint", endpoint.endpoint_name)
"""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws

from skdeploy import iam
from skdeploy.artifact import Artifact, build_for_settings
from skdeploy.constants import (
    COMPONENT_TYPE,
    DEFAULT_VARIANT,
    PROJECT_NAME,
    artifact_key,
    container_environment,
)
from skdeploy.frameworks import IMAGE_REPOSITORY
from skdeploy.image import parse_image_uri
from skdeploy.settings import EndpointSettings


def resource_tags(settings: EndpointSettings, artifact_sha256: str) -> dict[str, str]:
    """Tags on every resource: the user's, plus where it came from."""
    return {
        **settings.tags,
        "skdeploy:project": PROJECT_NAME,
        "skdeploy:stack": settings.stack,
        "skdeploy:artifact-sha256": artifact_sha256,
    }


class SklearnEndpoint(pulumi.ComponentResource):
    """A SageMaker real-time endpoint serving one scikit-learn model artifact."""

    endpoint_name: pulumi.Output[str]
    endpoint_arn: pulumi.Output[str]
    endpoint_config_name: pulumi.Output[str]
    model_name: pulumi.Output[str]
    model_data_url: pulumi.Output[str]
    artifact_sha256: pulumi.Output[str]
    image_uri: pulumi.Output[str]
    region: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        settings: EndpointSettings,
        *,
        artifact: Artifact | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(COMPONENT_TYPE, name, None, opts)
        built = artifact if artifact is not None else build_for_settings(settings)
        tags = resource_tags(settings, built.sha256)
        child = pulumi.ResourceOptions(parent=self)
        identity = aws.get_caller_identity_output(opts=pulumi.InvokeOptions(parent=self))
        partition = aws.get_partition_output(opts=pulumi.InvokeOptions(parent=self)).partition
        prefix = name.lower()

        # --- Artifact bucket: private, encrypted, versioned, TLS only -------------------------
        bucket = aws.s3.Bucket(f"{prefix}-artifacts", force_destroy=False, tags=tags, opts=child)
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
                        sse_algorithm="AES256"
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

        # --- The artifact, under its content address; kept when a newer one replaces it -------
        key = artifact_key(built.sha256)
        artifact_object = aws.s3.BucketObjectv2(
            f"{prefix}-artifact",
            bucket=bucket.id,
            key=key,
            source=pulumi.FileAsset(str(built.path)),
            content_type="application/gzip",
            tags=tags,
            opts=pulumi.ResourceOptions(
                parent=self,
                retain_on_delete=True,
                depends_on=[encryption, versioning, ownership, public_block, bucket_policy],
            ),
        )
        model_data_url = pulumi.Output.concat("s3://", bucket.bucket, "/", key)

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
        role = aws.iam.Role(
            f"{prefix}-execution",
            assume_role_policy=identity.account_id.apply(
                lambda account: json.dumps(iam.assume_role_policy(account))
            ),
            description=f"SageMaker execution role of endpoint {settings.endpoint_name}",
            tags=tags,
            opts=child,
        )

        def role_policy_document(values: list[Any]) -> str:
            part, account, object_arn, image = values
            return json.dumps(
                iam.execution_role_policy(
                    partition=part,
                    region=settings.region,
                    account_id=account,
                    artifact_object_arns=[object_arn],
                    image_repository_arns=[parse_image_uri(image).repository_arn(part)],
                    endpoint_name=settings.endpoint_name,
                )
            )

        object_arn = pulumi.Output.concat(bucket.arn, "/", key)
        role_policy = aws.iam.RolePolicy(
            f"{prefix}-execution-policy",
            role=role.id,
            policy=pulumi.Output.all(partition, identity.account_id, object_arn, image_uri).apply(
                role_policy_document
            ),
            opts=child,
        )

        # --- Model -> EndpointConfiguration -> Endpoint ----------------------------------------
        model = aws.sagemaker.Model(
            f"{prefix}-model",
            execution_role_arn=role.arn,
            primary_container=aws.sagemaker.ModelPrimaryContainerArgs(
                image=image_uri,
                model_data_url=model_data_url,
                environment=container_environment(settings.region),
            ),
            enable_network_isolation=settings.network_isolation,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[role_policy, artifact_object]),
        )
        config = aws.sagemaker.EndpointConfiguration(
            f"{prefix}-config",
            production_variants=[
                aws.sagemaker.EndpointConfigurationProductionVariantArgs(
                    variant_name=DEFAULT_VARIANT,
                    model_name=model.name,
                    instance_type=settings.instance_type,
                    initial_instance_count=settings.instance_count,
                    initial_variant_weight=1.0,
                )
            ],
            tags=tags,
            opts=child,
        )
        endpoint = aws.sagemaker.Endpoint(
            f"{prefix}-endpoint",
            name=settings.endpoint_name,
            endpoint_config_name=config.name,
            tags=tags,
            opts=child,
        )

        self.endpoint_name = endpoint.name
        self.endpoint_arn = endpoint.arn
        self.endpoint_config_name = config.name
        self.model_name = model.name
        self.model_data_url = model_data_url
        self.artifact_sha256 = pulumi.Output.from_input(built.sha256)
        self.image_uri = image_uri
        self.region = pulumi.Output.from_input(settings.region)
        self.register_outputs(self.outputs())

    def outputs(self) -> dict[str, pulumi.Output[str]]:
        """The stack outputs, keyed by the names in :mod:`skdeploy.constants`."""
        from skdeploy import constants as c

        return {
            c.OUTPUT_ENDPOINT_NAME: self.endpoint_name,
            c.OUTPUT_ENDPOINT_ARN: self.endpoint_arn,
            c.OUTPUT_ENDPOINT_CONFIG_NAME: self.endpoint_config_name,
            c.OUTPUT_MODEL_NAME: self.model_name,
            c.OUTPUT_MODEL_DATA_URL: self.model_data_url,
            c.OUTPUT_ARTIFACT_SHA256: self.artifact_sha256,
            c.OUTPUT_IMAGE_URI: self.image_uri,
            c.OUTPUT_REGION: self.region,
        }
