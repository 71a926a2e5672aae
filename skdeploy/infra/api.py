"""The optional HTTPS front door: ``POST /predict`` through API Gateway to a Lambda function.

Clients that cannot sign SageMaker Runtime requests (browsers, partners) get an HTTPS API with
IAM auth (unless ``auth: none`` is chosen explicitly), throttling, and errors mapped to what a
client can act on (the model's 4xx as is, throttling as 429, endpoint failure as 502; see
``skdeploy/infra/frontdoor/handler.py``). The function's role may invoke exactly this endpoint and
write its own log group, nothing else.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import pulumi
import pulumi_aws as aws

from skdeploy.core.constants import (
    ENV_FRONTDOOR_ENDPOINT_NAME,
    ENV_FRONTDOOR_MAX_PAYLOAD_BYTES,
    MAX_PAYLOAD_BYTES,
    MAX_SERVERLESS_PAYLOAD_BYTES,
)
from skdeploy.core.settings import ApiSettings, EndpointSettings
from skdeploy.infra.naming import Naming, moved_from

HANDLER_FILE = Path(__file__).with_name("frontdoor") / "handler.py"
LAMBDA_RUNTIME = "python3.12"
ROUTE_KEY = "POST /predict"
FRONT_DOOR_TYPE = "skdeploy:index:FrontDoor"


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


class FrontDoor(pulumi.ComponentResource):
    """Function, role, log group, HTTP API, route and stage; ``api_url`` is ``POST /predict``'s URL.

    The role carries ``permissions_boundary``, as every role the program creates.
    """

    api_url: pulumi.Output[str]

    def __init__(
        self,
        naming: Naming,
        settings: EndpointSettings,
        endpoint: aws.sagemaker.Endpoint,
        tags: Mapping[str, str],
        permissions_boundary: pulumi.Input[str],
        *,
        old_parent: pulumi.Resource,
    ) -> None:
        super().__init__(
            FRONT_DOOR_TYPE, naming("front-door"), None, pulumi.ResourceOptions(parent=old_parent)
        )
        self._old_parent = old_parent
        function = self._function(naming, settings, endpoint, tags, permissions_boundary)
        api = settings.api
        assert api is not None
        http_api = aws.apigatewayv2.Api(
            naming("api"),
            protocol_type="HTTP",
            description=f"HTTPS front door of SageMaker endpoint {settings.endpoint_name}",
            tags=dict(tags),
            opts=self._moved(),
        )
        self._route(naming, api, http_api, function, tags)
        aws.lambda_.Permission(
            naming("api-invoke"),
            action="lambda:InvokeFunction",
            function=function.name,
            principal="apigateway.amazonaws.com",
            source_arn=http_api.execution_arn.apply(lambda arn: f"{arn}/*/POST/predict"),
            opts=self._moved(),
        )
        self.api_url = http_api.api_endpoint.apply(lambda url: f"{url}/predict")
        self.register_outputs({"apiUrl": self.api_url})

    def _moved(self, opts: pulumi.ResourceOptions | None = None) -> pulumi.ResourceOptions:
        return moved_from(self._old_parent, self, opts)

    def _function(
        self,
        naming: Naming,
        settings: EndpointSettings,
        endpoint: aws.sagemaker.Endpoint,
        tags: Mapping[str, str],
        permissions_boundary: pulumi.Input[str],
    ) -> aws.lambda_.Function:
        """The Lambda function, its log group, and its role that may invoke only ``endpoint``."""
        function_name = f"{settings.endpoint_name}-api"[:64]
        log_group = aws.cloudwatch.LogGroup(
            naming("api-logs"),
            name=f"/aws/lambda/{function_name}",
            retention_in_days=settings.log_retention_days,
            kms_key_id=settings.kms_key_arn,
            tags=dict(tags),
            opts=self._moved(),
        )
        role = aws.iam.Role(
            naming("api-function"),
            assume_role_policy=json.dumps(lambda_trust_policy()),
            description=f"Front door of endpoint {settings.endpoint_name}: invoke it, nothing else",
            permissions_boundary=permissions_boundary,
            tags=dict(tags),
            opts=self._moved(),
        )
        role_policy = aws.iam.RolePolicy(
            naming("api-function-policy"),
            role=role.id,
            policy=pulumi.Output.all(endpoint.arn, log_group.arn).apply(
                lambda arns: json.dumps(lambda_role_policy(arns[0], arns[1]))
            ),
            opts=self._moved(),
        )
        limit = MAX_SERVERLESS_PAYLOAD_BYTES if settings.serverless else MAX_PAYLOAD_BYTES
        return aws.lambda_.Function(
            naming("api-function"),
            name=function_name,
            runtime=LAMBDA_RUNTIME,
            handler="handler.handler",
            role=role.arn,
            code=pulumi.AssetArchive({"handler.py": pulumi.FileAsset(str(HANDLER_FILE))}),
            # An HTTP API stops waiting after 30 s (a hard limit): a longer timeout is wasted.
            timeout=35,
            memory_size=256,
            environment=aws.lambda_.FunctionEnvironmentArgs(
                variables={
                    ENV_FRONTDOOR_ENDPOINT_NAME: settings.endpoint_name,
                    ENV_FRONTDOOR_MAX_PAYLOAD_BYTES: str(limit),
                }
            ),
            tags=dict(tags),
            opts=self._moved(pulumi.ResourceOptions(depends_on=[log_group, role_policy])),
        )

    def _route(
        self,
        naming: Naming,
        api: ApiSettings,
        http_api: aws.apigatewayv2.Api,
        function: aws.lambda_.Function,
        tags: Mapping[str, str],
    ) -> None:
        """``POST /predict`` to the function, on the throttled ``$default`` stage."""
        integration = aws.apigatewayv2.Integration(
            naming("api-integration"),
            api_id=http_api.id,
            integration_type="AWS_PROXY",
            integration_uri=function.arn,
            payload_format_version="2.0",
            timeout_milliseconds=30000,
            opts=self._moved(),
        )
        route = aws.apigatewayv2.Route(
            naming("api-route"),
            api_id=http_api.id,
            route_key=ROUTE_KEY,
            target=integration.id.apply(lambda integration_id: f"integrations/{integration_id}"),
            authorization_type="AWS_IAM" if api.auth == "iam" else "NONE",
            opts=self._moved(),
        )
        aws.apigatewayv2.Stage(
            naming("api-stage"),
            api_id=http_api.id,
            name="$default",
            auto_deploy=True,
            default_route_settings=aws.apigatewayv2.StageDefaultRouteSettingsArgs(
                throttling_rate_limit=api.throttle_rate,
                throttling_burst_limit=api.throttle_burst,
            ),
            tags=dict(tags),
            opts=self._moved(pulumi.ResourceOptions(depends_on=[route])),
        )
