"""Least-privilege IAM documents for the endpoint, as plain data that tests can read.

The execution role may read the artifacts of its own bucket (the immutable ``models/`` prefix,
so that a configuration being rolled back still reaches its artifact), pull exactly the serving
image, write its own endpoint's logs and put SageMaker metrics, and nothing else: no managed
FullAccess policies, no ``*`` actions. ``Resource: "*"`` appears only in the statements of
:data:`WILDCARD_RESOURCE_SIDS`, each with its reason.
"""

from __future__ import annotations

from typing import Any

from skdeploy.core.constants import LOG_GROUP_PREFIX, METRICS_NAMESPACE_PREFIX

PolicyDocument = dict[str, Any]

#: Statements allowed to name ``Resource: "*"`` and why (also checked by the policy pack).
WILDCARD_RESOURCE_SIDS: dict[str, str] = {
    "PullImageAuthorization": "ecr:GetAuthorizationToken has no resource-level permissions",
    "PutSageMakerMetrics": "cloudwatch:PutMetricData has no resource-level permissions; "
    "narrowed by the cloudwatch:namespace condition",
    "ManageVpcNetworkInterfaces": "the EC2 network-interface actions SageMaker needs in a VPC "
    "have no resource-level permissions for these calls",
}

#: The managed policy every role the program creates carries as its permissions boundary. The
#: administrator creates it once from deploy/permissions-boundary-policy.json, with this name; the
#: deploy role may create and change roles only with it (deploy/README.md).
PERMISSIONS_BOUNDARY_NAME = "skdeploy-permissions-boundary"


def permissions_boundary_arn(partition: str, account_id: str) -> str:
    """ARN of the permissions boundary in the deploying account."""
    return f"arn:{partition}:iam::{account_id}:policy/{PERMISSIONS_BOUNDARY_NAME}"


#: What SageMaker needs to place the model's containers in the stack's VPC.
VPC_ACTIONS = [
    "ec2:CreateNetworkInterface",
    "ec2:CreateNetworkInterfacePermission",
    "ec2:DeleteNetworkInterface",
    "ec2:DeleteNetworkInterfacePermission",
    "ec2:DescribeDhcpOptions",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSubnets",
    "ec2:DescribeVpcs",
]


def assume_role_policy(account_id: str) -> PolicyDocument:
    """Trust policy: only SageMaker, and only on behalf of this account (confused deputy guard)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "SageMakerAssumesRole",
                "Effect": "Allow",
                "Principal": {"Service": "sagemaker.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
            }
        ],
    }


def log_group_arn(partition: str, region: str, account_id: str, endpoint_name: str) -> str:
    """ARN of the endpoint's log group, ``/aws/sagemaker/Endpoints/<name>``."""
    return f"arn:{partition}:logs:{region}:{account_id}:log-group:{LOG_GROUP_PREFIX}{endpoint_name}"


def execution_role_policy(
    *,
    partition: str,
    region: str,
    account_id: str,
    artifact_object_arns: list[str],
    image_repository_arns: list[str],
    endpoint_name: str,
    capture_prefix_arns: list[str] | None = None,
    kms_key_arn: str | None = None,
    vpc: bool = False,
    rollback_alarm_names: list[str] | None = None,
    async_request_arns: list[str] | None = None,
    async_result_arns: list[str] | None = None,
    async_topic_arns: list[str] | None = None,
) -> PolicyDocument:
    """Inline policy of the execution role.

    ``capture_prefix_arns`` (``arn:aws:s3:::bucket/prefix/*``) adds writing data capture exactly
    there; ``kms_key_arn`` adds using exactly that key (decrypt the artifact, encrypt captures);
    ``vpc`` adds the network-interface actions SageMaker needs to run in the stack's subnets;
    ``rollback_alarm_names`` adds reading exactly those alarms, which SageMaker's deployment
    guardrails do with the execution role to decide a rollback. ``async_request_arns`` adds
    reading asynchronous requests exactly there (their InputLocation), ``async_result_arns`` (from
    :func:`s3_prefix_arn`) adds writing asynchronous inference's results and failures exactly
    there, and ``async_topic_arns`` publishing to exactly those SNS topics.
    """
    log_group = log_group_arn(partition, region, account_id, endpoint_name)
    statements = _serving_statements(artifact_object_arns, image_repository_arns, log_group)
    if capture_prefix_arns:
        statements.append(_write_capture(capture_prefix_arns))
    if kms_key_arn:
        statements.append(_use_key(kms_key_arn))
    if rollback_alarm_names:
        statements.append(_read_alarms(partition, region, account_id, rollback_alarm_names))
    if vpc:
        statements.append(_manage_vpc_interfaces())
    if async_request_arns:
        statements.append(_statement("ReadAsyncRequests", "s3:GetObject", async_request_arns))
    if async_result_arns:
        statements.append(_statement("WriteAsyncResults", "s3:PutObject", async_result_arns))
    if async_topic_arns:
        statements.append(_statement("PublishAsyncNotices", "sns:Publish", async_topic_arns))
    return {"Version": "2012-10-17", "Statement": statements}


def _serving_statements(
    artifact_object_arns: list[str], image_repository_arns: list[str], log_group: str
) -> list[dict[str, Any]]:
    """What every endpoint needs: its artifact, its image, its logs and its metrics."""
    return [
        {
            "Sid": "ReadModelArtifact",
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": sorted(artifact_object_arns),
        },
        {
            "Sid": "PullImageAuthorization",
            "Effect": "Allow",
            "Action": ["ecr:GetAuthorizationToken"],
            "Resource": "*",
        },
        {
            "Sid": "PullServingImage",
            "Effect": "Allow",
            "Action": [
                "ecr:BatchCheckLayerAvailability",
                "ecr:BatchGetImage",
                "ecr:GetDownloadUrlForLayer",
            ],
            "Resource": sorted(set(image_repository_arns)),
        },
        {
            "Sid": "WriteEndpointLogs",
            "Effect": "Allow",
            "Action": [
                "logs:CreateLogGroup",
                "logs:CreateLogStream",
                "logs:DescribeLogStreams",
                "logs:PutLogEvents",
            ],
            "Resource": [log_group, f"{log_group}:log-stream:*"],
        },
        {
            "Sid": "PutSageMakerMetrics",
            "Effect": "Allow",
            "Action": ["cloudwatch:PutMetricData"],
            "Resource": "*",
            "Condition": {"StringLike": {"cloudwatch:namespace": f"{METRICS_NAMESPACE_PREFIX}*"}},
        },
    ]


def s3_prefix_arn(partition: str, bucket: str, prefix: str) -> str:
    """The objects under ``prefix`` of ``bucket`` (the whole bucket for an empty prefix)."""
    return (
        f"arn:{partition}:s3:::{bucket}/{prefix}/*"
        if prefix
        else f"arn:{partition}:s3:::{bucket}/*"
    )


def _statement(sid: str, action: str, resources: list[str]) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Action": [action], "Resource": sorted(set(resources))}


def _write_capture(capture_prefix_arns: list[str]) -> dict[str, Any]:
    return {
        "Sid": "WriteDataCapture",
        "Effect": "Allow",
        "Action": ["s3:PutObject"],
        "Resource": sorted(capture_prefix_arns),
    }


def _use_key(kms_key_arn: str) -> dict[str, Any]:
    return {
        "Sid": "UseStackKey",
        "Effect": "Allow",
        "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
        "Resource": [kms_key_arn],
    }


def _read_alarms(
    partition: str, region: str, account_id: str, rollback_alarm_names: list[str]
) -> dict[str, Any]:
    return {
        "Sid": "ReadRollbackAlarms",
        "Effect": "Allow",
        "Action": ["cloudwatch:DescribeAlarms"],
        "Resource": [
            f"arn:{partition}:cloudwatch:{region}:{account_id}:alarm:{name}"
            for name in rollback_alarm_names
        ],
    }


def _manage_vpc_interfaces() -> dict[str, Any]:
    return {
        "Sid": "ManageVpcNetworkInterfaces",
        "Effect": "Allow",
        "Action": VPC_ACTIONS,
        "Resource": "*",
    }


def tls_only_bucket_policy(bucket_arn: str) -> PolicyDocument:
    """Bucket policy that refuses any request not made over TLS."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [bucket_arn, f"{bucket_arn}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }
