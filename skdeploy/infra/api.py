"""The optional HTTPS front door: ``POST /predict`` through API Gateway to a Lambda function.

Clients that cannot sign SageMaker Runtime requests (browsers, partners) get an HTTPS API with
IAM auth (unless ``auth: none`` is chosen explicitly), throttling, and errors mapped to what a
client can act on (the model's 4xx as is, throttling as 429, endpoint failure as 502; see
``skdeploy/infra/frontdoor/handler.py``). The function's role may invoke exactly this endpoint and
write its own log group, nothing else.
"""

from __future__ import annotations

import json
from pathlib import Path

import pulumi
import pulumi_aws as aws

from skdeploy.core.constants import (
    ENV_FRONTDOOR_ENDPOINT_NAME,
    ENV_FRONTDOOR_MAX_PAYLOAD_BYTES,
    MAX_PAYLOAD_BYTES,
    MAX_SERVERLESS_PAYLOAD_BYTES,
)
from skdeploy.core.settings import EndpointSettings

HANDLER_FILE = Path(__file__).with_name("frontdoor") / "handler.py"
LAMBDA_RUNTIME = "python3.12"
ROUTE_KEY = "POST /predict"


def lambda_trust_policy() -> dict[str, object]:
    """Only Lambda may assume the front door's role."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "LambdaAssumesRole",
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }


def lambda_role_policy(endpoint_arn: str, log_group_arn: str) -> dict[str, object]:
    """Invoke exactly this endpoint; write exactly this function's logs."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "InvokeThisEndpoint",
                "Effect": "Allow",
                "Action": ["sagemaker:InvokeEndpoint"],
                "Resource": [endpoint_arn],
            },
            {
                "Sid": "WriteFunctionLogs",
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": [f"{log_group_arn}:log-stream:*"],
            },
        ],
    }


def declare_front_door(
    parent: pulumi.Resource,
    settings: EndpointSettings,
    prefix: str,
    endpoint: aws.sagemaker.Endpoint,
    tags: dict[str, str],
    permissions_boundary: pulumi.Input[str],
) -> pulumi.Output[str]:
    """Declare function, role, log group, HTTP API, route and stage; return the ``apiUrl``.

    The role carries ``permissions_boundary``, as every role the program creates.
    """
    api = settings.api
    assert api is not None
    child = pulumi.ResourceOptions(parent=parent)
    function_name = f"{settings.endpoint_name}-api"[:64]
    log_group = aws.cloudwatch.LogGroup(
        f"{prefix}-api-logs",
        name=f"/aws/lambda/{function_name}",
        retention_in_days=settings.log_retention_days,
        kms_key_id=settings.kms_key_arn,
        tags=tags,
        opts=child,
    )
    role = aws.iam.Role(
        f"{prefix}-api-function",
        assume_role_policy=json.dumps(lambda_trust_policy()),
        description=f"Front door of endpoint {settings.endpoint_name}: invoke it, nothing else",
        permissions_boundary=permissions_boundary,
        tags=tags,
        opts=child,
    )
    role_policy = aws.iam.RolePolicy(
        f"{prefix}-api-function-policy",
        role=role.id,
        policy=pulumi.Output.all(endpoint.arn, log_group.arn).apply(
            lambda arns: json.dumps(lambda_role_policy(arns[0], arns[1]))
        ),
        opts=child,
    )
    limit = MAX_SERVERLESS_PAYLOAD_BYTES if settings.serverless else MAX_PAYLOAD_BYTES
    function = aws.lambda_.Function(
        f"{prefix}-api-function",
        name=function_name,
        runtime=LAMBDA_RUNTIME,
        handler="handler.handler",
        role=role.arn,
        code=pulumi.AssetArchive({"handler.py": pulumi.FileAsset(str(HANDLER_FILE))}),
        # An HTTP API stops waiting after 30 s (a hard limit): a longer function timeout is wasted.
        timeout=35,
        memory_size=256,
        environment=aws.lambda_.FunctionEnvironmentArgs(
            variables={
                ENV_FRONTDOOR_ENDPOINT_NAME: settings.endpoint_name,
                ENV_FRONTDOOR_MAX_PAYLOAD_BYTES: str(limit),
            }
        ),
        tags=tags,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[log_group, role_policy]),
    )
    http_api = aws.apigatewayv2.Api(
        f"{prefix}-api",
        protocol_type="HTTP",
        description=f"HTTPS front door of SageMaker endpoint {settings.endpoint_name}",
        tags=tags,
        opts=child,
    )
    integration = aws.apigatewayv2.Integration(
        f"{prefix}-api-integration",
        api_id=http_api.id,
        integration_type="AWS_PROXY",
        integration_uri=function.arn,
        payload_format_version="2.0",
        timeout_milliseconds=30000,
        opts=child,
    )
    route = aws.apigatewayv2.Route(
        f"{prefix}-api-route",
        api_id=http_api.id,
        route_key=ROUTE_KEY,
        target=integration.id.apply(lambda integration_id: f"integrations/{integration_id}"),
        authorization_type="AWS_IAM" if api.auth == "iam" else "NONE",
        opts=child,
    )
    aws.apigatewayv2.Stage(
        f"{prefix}-api-stage",
        api_id=http_api.id,
        name="$default",
        auto_deploy=True,
        default_route_settings=aws.apigatewayv2.StageDefaultRouteSettingsArgs(
            throttling_rate_limit=api.throttle_rate,
            throttling_burst_limit=api.throttle_burst,
        ),
        tags=tags,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[route]),
    )
    aws.lambda_.Permission(
        f"{prefix}-api-invoke",
        action="lambda:InvokeFunction",
        function=function.name,
        principal="apigateway.amazonaws.com",
        source_arn=http_api.execution_arn.apply(lambda arn: f"{arn}/*/POST/predict"),
        opts=child,
    )
    return http_api.api_endpoint.apply(lambda url: f"{url}/predict")
