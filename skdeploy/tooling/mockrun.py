"""Run the real Pulumi program under Pulumi's own mocks and record what it declares.

This is how the program is proven without the Pulumi CLI, the AWS provider plugin or AWS: the
tests assert on the recording and ``skdeploy plan`` prints and diffs it. The recording holds each
resource's type, logical name, parent, inputs and the options that matter (protect, retain on
delete, dependencies), which plain mocks do not show: a :class:`RecordingMonitor` reads them from
the registration request.

The mock provider stands in for pulumi-aws in three ways, and only these:

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

A dynamic resource's serialized provider is shown as ``[dynamic provider]``.
"""

from __future__ import annotations

import gc
import hashlib
import json
import re
import runpy
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from google.protobuf import json_format
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime import settings as runtime_settings

from skdeploy.core.constants import PROJECT_NAME
from skdeploy.core.frameworks import get_framework
from skdeploy.core.image import prebuilt_image_uri
from skdeploy.core.settings import SECRET, config_as_engine_strings, read_stack_config

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


@dataclass
class DeclaredResource:
    """One resource the program registered, as the engine would receive it."""

    urn: str
    type: str
    name: str
    parent: str
    custom: bool
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    protect: bool = False
    retain_on_delete: bool = False
    delete_before_replace: bool = False
    dependencies: tuple[str, ...] = ()
    replacement_trigger: Any = None
    #: Full URNs this resource was known by before (``ResourceOptions.aliases``): the engine
    #: matches the resource to its old state under any of them, so a move is not a replacement.
    aliases: tuple[str, ...] = ()


@dataclass
class ProgramRun:
    """Everything one run of the program declared, and its stack outputs."""

    stack: str
    resources: list[DeclaredResource] = field(default_factory=list)
    exports: dict[str, Any] = field(default_factory=dict)

    def by_type(self, type_: str) -> list[DeclaredResource]:
        """Resources of one type, in registration order."""
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str) -> DeclaredResource:
        """The single resource of ``type_`` (AssertionError otherwise, for tests)."""
        found = self.by_type(type_)
        if len(found) != 1:
            raise AssertionError(f"expected one {type_}, found {len(found)}")
        return found[0]

    def by_urn(self, urn: str) -> DeclaredResource:
        """The resource registered under ``urn``."""
        for resource in self.resources:
            if resource.urn == urn:
                return resource
        raise KeyError(urn)


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


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """A mock monitor that also records the options of each registration (plain mocks cannot)."""

    def __init__(self, mocks: ProviderMocks) -> None:
        super().__init__(mocks)
        self.declared: list[DeclaredResource] = []
        self.stack_urn = ""

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type == "pulumi:pulumi:Stack":
            self.stack_urn = self.make_urn(request.parent, request.type, request.name)
            return response
        urn = self.make_urn(request.parent, request.type, request.name)
        inputs = rpc.deserialize_properties(request.object)
        self.declared.append(
            DeclaredResource(
                urn=urn,
                type=request.type,
                name=request.name,
                parent=request.parent,
                custom=bool(request.custom),
                inputs=_mask_secrets(inputs),
                outputs=dict(self.resources[urn].state) if urn in self.resources else {},
                protect=bool(request.protect),
                retain_on_delete=bool(request.retainOnDelete),
                delete_before_replace=bool(request.deleteBeforeReplace),
                dependencies=tuple(request.dependencies),
                replacement_trigger=json_format.MessageToDict(request.replacement_trigger)
                if request.HasField("replacement_trigger")
                else None,
                aliases=tuple(self._alias_urn(request, alias) for alias in request.aliases),
            )
        )
        return response

    def _alias_urn(self, request: Any, alias: Any) -> str:
        """An alias as the full old URN the engine resolves it to.

        The SDK sends either a URN or a spec (the mock monitor supports alias specs) whose empty
        fields mean "as the resource is now": same name, type, stack, project and parent, unless
        ``noParent`` says it was at the top, under the stack (the mock monitor, unlike the engine,
        qualifies a top-level resource's type by the stack's, so that is where the old URN is
        looked for). Aliases a child inherits from an aliased parent are the engine's to compute
        and are not listed.
        """
        if alias.HasField("urn") or not alias.HasField("spec"):
            return str(alias.urn)
        spec = alias.spec
        where = spec.WhichOneof("parent")
        parent = (
            spec.parentUrn
            if where == "parentUrn"
            else self.stack_urn
            if where == "noParent"
            else None
        )
        return _urn(
            request.parent if parent is None else parent,
            spec.type or request.type,
            spec.name or request.name,
            stack=spec.stack or runtime_settings.get_stack(),
            project=spec.project or runtime_settings.get_project(),
        )

    def ReadResource(self, request: Any) -> Any:
        """Reads (a StackReference) are recorded too, so that every dependency resolves."""
        response = super().ReadResource(request)  # type: ignore[no-untyped-call]
        urn = self.make_urn(request.parent, request.type, request.name)
        state = dict(self.resources[urn].state) if urn in self.resources else {}
        self.declared.append(
            DeclaredResource(
                urn=urn,
                type=request.type,
                name=request.name,
                parent=request.parent,
                custom=True,
                inputs={"name": state.get("name")},
                outputs=state,
            )
        )
        return response


def _urn(parent: str, type_: str, name: str, *, stack: str, project: str) -> str:
    """A resource's URN: its type qualified by its parent's own type, as the engine writes it."""
    if parent:
        type_ = parent.split("::")[2].split("$")[-1] + "$" + type_
    return "urn:pulumi:" + "::".join([stack, project, type_, name])


def _mask_secrets(value: Any) -> Any:
    if isinstance(value, dict) and "__provider" in value:
        return {
            **_mask_secrets({k: v for k, v in value.items() if k != "__provider"}),
            "__provider": "[dynamic provider]",
        }
    if isinstance(value, pulumi.Output):
        return SECRET
    if rpc.is_rpc_secret(value):
        return SECRET
    if isinstance(value, dict):
        return {k: _mask_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_secrets(v) for v in value]
    if isinstance(value, pulumi.asset.FileAsset):
        return {"fileAsset": Path(value.path).name}
    if isinstance(value, pulumi.asset.AssetArchive):
        return {"assetArchive": {k: _mask_secrets(v) for k, v in value.assets.items()}}
    return value


def run_program(
    project_dir: Path,
    stack: str,
    config: Mapping[str, object] | None = None,
    *,
    program: Path | None = None,
    previous_outputs: Mapping[str, Any] | None = None,
) -> ProgramRun:
    """Run ``__main__.py`` for ``stack`` under mocks; ``config`` defaults to the stack file.

    ``config`` uses the stack file's shape (namespaced keys, structured values as objects);
    ``previous_outputs`` are the outputs of the stack's last update (none: a new stack).
    """
    values = dict(read_stack_config(project_dir, stack) if config is None else config)
    secret_keys = [k for k, v in values.items() if v == SECRET]
    pulumi.runtime.set_all_config(config_as_engine_strings(values), secret_keys)
    runtime_settings.ROOT.set(None)
    region = str(values.get("aws:region") or "us-east-1")
    monitor = RecordingMonitor(ProviderMocks(region, previous_outputs))
    pulumi.runtime.set_mocks(
        monitor.mocks,
        project=PROJECT_NAME,
        stack=stack,
        preview=False,
        monitor=monitor,
        organization=MOCK_ORGANIZATION,
    )
    # A previous run that failed leaves its pending outputs behind; start clean, as
    # pulumi.runtime.test does.
    runtime_settings.SETTINGS.rpc_manager.clear()
    runtime_settings.SETTINGS.outputs.clear()
    # ...and free them now: asyncio logs a dead future's unretrieved exception with a formatted
    # traceback, which calls ast.parse on Python 3.11; if the collector ran that inside the
    # preflight's own ast.parse, CPython 3.11.7 would fail with "SystemError: AST constructor
    # recursion depth mismatch".
    gc.collect()
    exports = _run_and_export(program or project_dir / "__main__.py")
    for resource in monitor.declared:
        if not resource.outputs and resource.urn in monitor.resources:
            resource.outputs = dict(monitor.resources[resource.urn].state)
    return ProgramRun(stack=stack, resources=monitor.declared, exports=exports)


def _run_and_export(script: Path) -> dict[str, Any]:
    """Run the program under the mocks already set; its stack outputs, secrets masked.

    ``pulumi.runtime.test`` is Pulumi's public way to run a program under mocks to the end: it
    runs the function in the SDK's own event loop, waits for every registration, and awaits the
    Output the function returns. The exports are read in that Output, once the program ran.
    """
    exports: dict[str, Any] = {}

    def settle(key: str, value: Any) -> pulumi.Output[None]:
        output = pulumi.Output.from_input(value)
        secret: pulumi.Output[bool] = pulumi.Output.from_input(output.is_secret())
        return pulumi.Output.all(output, secret).apply(
            lambda pair: exports.__setitem__(key, SECRET if pair[1] else pair[0])
        )

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def run_main() -> pulumi.Output[list[None]]:
        runpy.run_path(str(script), run_name="__main__")
        root = pulumi.runtime.get_root_resource()
        outputs = getattr(root, "outputs", None) or {}
        return pulumi.Output.all(*(settle(key, value) for key, value in outputs.items()))

    run_main()
    return exports
