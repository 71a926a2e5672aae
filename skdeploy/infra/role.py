"""The SageMaker execution role: exactly this stack's artifacts, its image, its logs.

Every role the program creates carries the permissions boundary: the deploy role may create and
change roles only with it (deploy/deploy-role-policy.json), so no role it makes can grow past it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from skdeploy.core import iam
from skdeploy.core.image import parse_image_uri
from skdeploy.core.settings import EndpointSettings
from skdeploy.infra.guardrails import alarm_names
from skdeploy.infra.naming import Naming, moved_from

EXECUTION_ROLE_TYPE = "skdeploy:index:ExecutionRole"


@dataclass(frozen=True)
class Account:
    """Where the stack deploys, as the provider resolves it at deploy time."""

    partition: pulumi.Output[str]
    account_id: pulumi.Output[str]

    @property
    def permissions_boundary(self) -> pulumi.Output[str]:
        """The boundary every role of the program carries."""
        return pulumi.Output.all(self.partition, self.account_id).apply(
            lambda values: iam.permissions_boundary_arn(values[0], values[1])
        )


@dataclass(frozen=True)
class RoleGrants:
    """What the role may read and write, besides the endpoint's own logs and metrics."""

    #: ARN pattern of the artifact objects (the whole content-addressed prefix).
    artifacts_arn: pulumi.Output[str]
    image_uri: pulumi.Output[str]
    #: The bucket data capture writes to (its prefix comes from the settings).
    capture_bucket: pulumi.Output[str]


class ExecutionRole(pulumi.ComponentResource):
    """The role SageMaker assumes to run the model, and its one inline policy."""

    role: aws.iam.Role
    policy: aws.iam.RolePolicy

    def __init__(
        self,
        naming: Naming,
        settings: EndpointSettings,
        account: Account,
        grants: RoleGrants,
        tags: Mapping[str, str],
        *,
        old_parent: pulumi.Resource,
    ) -> None:
        super().__init__(
            EXECUTION_ROLE_TYPE,
            naming("execution-role"),
            None,
            pulumi.ResourceOptions(parent=old_parent),
        )
        self.role = aws.iam.Role(
            naming("execution"),
            assume_role_policy=account.account_id.apply(
                lambda account_id: json.dumps(iam.assume_role_policy(account_id))
            ),
            description=f"SageMaker execution role of endpoint {settings.endpoint_name}",
            permissions_boundary=account.permissions_boundary,
            tags=dict(tags),
            opts=moved_from(old_parent, self),
        )
        self.policy = aws.iam.RolePolicy(
            naming("execution-policy"),
            role=self.role.id,
            policy=pulumi.Output.all(
                account.partition,
                account.account_id,
                grants.image_uri,
                grants.capture_bucket,
                grants.artifacts_arn,
            ).apply(lambda values: _policy_document(settings, values)),
            opts=moved_from(old_parent, self),
        )
        self.register_outputs({"roleArn": self.role.arn})


def _policy_document(settings: EndpointSettings, values: list[Any]) -> str:
    """The role policy, once the partition, account, image and capture bucket are known."""
    partition, account, image, capture_bucket, *object_arns = values
    capture = settings.data_capture
    asynchronous = settings.async_inference
    return json.dumps(
        iam.execution_role_policy(
            partition=partition,
            region=settings.region,
            account_id=account,
            artifact_object_arns=list(object_arns),
            image_repository_arns=[parse_image_uri(image).repository_arn(partition)],
            endpoint_name=settings.endpoint_name,
            capture_prefix_arns=None
            if capture is None
            else [f"arn:{partition}:s3:::{capture_bucket}/{capture.prefix}/*"],
            kms_key_arn=settings.kms_key_arn,
            vpc=settings.vpc is not None,
            rollback_alarm_names=alarm_names(settings.endpoint_name)
            if settings.deployment
            else None,
            async_request_arns=None
            if asynchronous is None
            else [iam.s3_prefix_arn(partition, *asynchronous.read_location)],
            async_result_arns=None
            if asynchronous is None
            else [iam.s3_prefix_arn(partition, *where) for where in asynchronous.write_locations],
            async_topic_arns=None if asynchronous is None else list(asynchronous.topic_arns),
        )
    )
