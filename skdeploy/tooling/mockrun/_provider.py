"""The mock provider: what stands in for pulumi-aws when the program runs under mocks.

It stands in for pulumi-aws in these ways, and only these:

- physical names: a resource without an explicit ``name`` gets ``<logical>-<7 hex>``. For the
  types whose every input forces replacement (:data:`REPLACED_ON_ANY_CHANGE`) the suffix is a hash
  of the inputs (tags aside), so a changed input yields a new name exactly as the provider's
  replacement does;
  for the others the suffix is stable, as an in-place update keeps the name;
- computed attributes: ``arn`` and ``id`` in AWS's formats (and an HTTP API's endpoint URL), for
  a fixed test account;
- data sources: the caller identity (that account), the partition (``aws``) and the prebuilt
  image (from :data:`skdeploy.core.image.REGISTRY_ACCOUNTS`, the same table the provider ships);
- the stack's own previous outputs, which the program reads through a StackReference: none (a new
  stack) unless ``previous_outputs`` says otherwise.

It also holds the table of the fields that replace a resource (:func:`replacing_fields`), which
``skdeploy plan`` reads too.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

import pulumi

from skdeploy.core.frameworks import get_framework
from skdeploy.core.image import prebuilt_image_uri

MOCK_ACCOUNT_ID = "123456789012"
#: What ``pulumi.get_organization()`` answers on a self-managed backend.
MOCK_ORGANIZATION = "organization"

#: Resource types whose every input is ForceNew in the provider schema (SageMaker models and
#: endpoint configurations are immutable): any change replaces them, with a new name. Tags are
#: the exception (:data:`UPDATED_IN_PLACE`).
REPLACED_ON_ANY_CHANGE: frozenset[str] = frozenset(
    {
        "aws:sagemaker/model:Model",
        "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
    }
)

#: Inputs every type updates in place, even the immutable ones: the provider's tags schema is
#: never ForceNew (it tags and untags through the service's tagging API).
UPDATED_IN_PLACE: frozenset[str] = frozenset({"tags", "tagsAll"})

#: Inputs that replace the resource when they change, for the other types (from the provider
#: schema's ForceNew fields; only the types this project declares). A nested ForceNew field is
#: written as a path into the input, ``a.b``: of the Endpoint's deploymentConfig, only
#: autoRollbackConfiguration is ForceNew (the traffic-shifting settings update in place).
REPLACED_ON_CHANGE: Mapping[str, frozenset[str]] = {
    "aws:sagemaker/endpoint:Endpoint": frozenset(
        {"name", "deploymentConfig.autoRollbackConfiguration"}
    ),
    "aws:s3/bucket:Bucket": frozenset({"bucket", "bucketPrefix"}),
    "aws:s3/bucketObjectv2:BucketObjectv2": frozenset({"bucket", "key"}),
    "aws:iam/role:Role": frozenset({"name", "namePrefix", "path"}),
    "aws:iam/rolePolicy:RolePolicy": frozenset({"name", "namePrefix", "role"}),
    "aws:s3/bucketPolicy:BucketPolicy": frozenset({"bucket"}),
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": frozenset({"bucket"}),
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": frozenset({"bucket"}),
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": (
        frozenset({"bucket"})
    ),
    "aws:s3/bucketVersioning:BucketVersioning": frozenset({"bucket"}),
    "aws:cloudwatch/logGroup:LogGroup": frozenset({"name", "namePrefix", "logGroupClass"}),
    "aws:cloudwatch/metricAlarm:MetricAlarm": frozenset({"name"}),
    "aws:appautoscaling/target:Target": frozenset(
        {"resourceId", "scalableDimension", "serviceNamespace"}
    ),
    "aws:appautoscaling/policy:Policy": frozenset(
        {"name", "resourceId", "scalableDimension", "serviceNamespace"}
    ),
    # The front door's types, from the provider schema's ForceNew fields as documented (not
    # read in the provider's source, unlike the types above).
    "aws:lambda/function:Function": frozenset({"name"}),
    "aws:lambda/permission:Permission": frozenset(
        {"action", "function", "principal", "sourceArn", "statementId", "qualifier"}
    ),
    "aws:apigatewayv2/api:Api": frozenset({"protocolType"}),
    "aws:apigatewayv2/integration:Integration": frozenset({"apiId", "integrationType"}),
    "aws:apigatewayv2/route:Route": frozenset({"apiId"}),
    "aws:apigatewayv2/stage:Stage": frozenset({"apiId", "name"}),
}


def replacing_fields(type_: str, changed: set[str]) -> set[str]:
    """Which fields, of the ``changed`` ones, replace a resource of ``type_``.

    ``changed`` holds input names or paths to changed values inside them (``a.b[0].c``, as
    ``skdeploy plan`` writes them); a field of the table matches its own path and every path
    below it. Returns the matching fields (input names, for :data:`REPLACED_ON_ANY_CHANGE`).
    """
    if type_ in REPLACED_ON_ANY_CHANGE:
        return {re.split(r"[.\[]", path, maxsplit=1)[0] for path in changed} - UPDATED_IN_PLACE
    return {
        field_
        for field_ in REPLACED_ON_CHANGE.get(type_, frozenset())
        for path in changed
        if path == field_ or path.startswith((f"{field_}.", f"{field_}["))
    }


def _suffix(type_: str, name: str, inputs: Mapping[str, Any]) -> str:
    replacing = {k: v for k, v in inputs.items() if k not in UPDATED_IN_PLACE}
    basis = (
        json.dumps(replacing, sort_keys=True, default=str)
        if type_ in REPLACED_ON_ANY_CHANGE
        else ""
    )
    return hashlib.sha256(f"{type_}\0{name}\0{basis}".encode()).hexdigest()[:7]


class ProviderMocks(pulumi.runtime.Mocks):
    """Stands in for pulumi-aws: names, ARNs and the three data sources (see module doc)."""

    def __init__(self, region: str, previous_outputs: Mapping[str, Any] | None = None) -> None:
        self.region = region
        self.previous_outputs = dict(previous_outputs or {})

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        inputs = dict(args.inputs)
        outputs = dict(inputs)
        type_ = args.typ
        service = type_.split(":")[1].split("/")[0]
        physical = inputs.get("name") or f"{args.name}-{_suffix(type_, args.name, inputs)}"
        account, region = MOCK_ACCOUNT_ID, self.region
        if type_ == "pulumi:pulumi:StackReference":
            return str(inputs["name"]), {
                "name": inputs["name"],
                "outputs": dict(self.previous_outputs),
                "secretOutputNames": [],
            }
        if type_ == "aws:s3/bucket:Bucket":
            bucket = inputs.get("bucket") or physical
            outputs.update(bucket=bucket, arn=f"arn:aws:s3:::{bucket}")
            return bucket, outputs
        if type_ == "aws:iam/role:Role":
            outputs.update(name=physical, arn=f"arn:aws:iam::{account}:role/{physical}")
            return physical, outputs
        if service == "sagemaker":
            kind = {
                "aws:sagemaker/model:Model": "model",
                "aws:sagemaker/endpointConfiguration:EndpointConfiguration": "endpoint-config",
                "aws:sagemaker/endpoint:Endpoint": "endpoint",
            }.get(type_, service)
            outputs.update(
                name=physical, arn=f"arn:aws:sagemaker:{region}:{account}:{kind}/{physical}"
            )
            return physical, outputs
        if type_ == "aws:cloudwatch/logGroup:LogGroup":
            outputs.update(
                name=physical, arn=f"arn:aws:logs:{region}:{account}:log-group:{physical}"
            )
            return physical, outputs
        if type_ == "aws:lambda/function:Function":
            arn = f"arn:aws:lambda:{region}:{account}:function:{physical}"
            outputs.update(
                name=physical,
                arn=arn,
                invokeArn=f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{arn}/invocations",
            )
            return physical, outputs
        if type_ == "aws:apigatewayv2/api:Api":
            api_id = _suffix(type_, args.name, {}) + "api"
            outputs.update(
                apiEndpoint=f"https://{api_id}.execute-api.{region}.amazonaws.com",
                executionArn=f"arn:aws:execute-api:{region}:{account}:{api_id}",
                arn=f"arn:aws:apigateway:{region}::/apis/{api_id}",
            )
            return api_id, outputs
        if "name" in inputs or type_.endswith(("Role", "Policy")):
            outputs.setdefault("name", physical)
        outputs.setdefault("arn", f"arn:aws:{service}:{region}:{account}:{physical}")
        return f"{physical}-id", outputs

    def call(  # type: ignore[override]  # Mocks.call may return a plain dict (no failures)
        self, args: pulumi.runtime.MockCallArgs
    ) -> dict[str, Any]:
        data_source = args.token
        if data_source == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": MOCK_ACCOUNT_ID,
                "arn": f"arn:aws:iam::{MOCK_ACCOUNT_ID}:user/mock",
                "userId": "MOCKUSER",
                "id": MOCK_ACCOUNT_ID,
            }
        if data_source == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"}
        if data_source == "aws:sagemaker/getPrebuiltEcrImage:getPrebuiltEcrImage":
            tag = str(args.args["imageTag"])
            region = str(args.args.get("region") or self.region)
            framework = get_framework(tag.removesuffix("-cpu-py3"))
            return {
                "registryPath": prebuilt_image_uri(framework, region),
                "repositoryName": args.args["repositoryName"],
                "imageTag": tag,
                "id": tag,
            }
        raise NotImplementedError(f"no mock for data source {data_source}")
