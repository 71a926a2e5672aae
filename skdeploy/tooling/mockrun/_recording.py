"""What the program declared, as the engine would receive it, read from each registration request.

Plain mocks show a resource's inputs only; :class:`RecordingMonitor` also keeps its parent, its
options (protect, retain on delete, dependencies, replacement trigger) and its aliases, resolved
to the full old URNs the engine would match. A dynamic resource's serialized provider is shown as
``[dynamic provider]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from google.protobuf import json_format
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc

from skdeploy.core.settings import SECRET
from skdeploy.tooling.mockrun._provider import ProviderMocks


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
    #: URNs of the components that called ``register_outputs`` (the stack's own aside).
    completed: frozenset[str] = frozenset()

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


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """A mock monitor that also records the options of each registration (plain mocks cannot)."""

    def __init__(self, mocks: ProviderMocks) -> None:
        super().__init__(mocks)
        self.declared: list[DeclaredResource] = []
        self.stack_urn = ""
        self.completed: set[str] = set()

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
            stack=spec.stack or pulumi.get_stack(),
            project=spec.project or pulumi.get_project(),
        )

    def RegisterResourceOutputs(self, request: Any) -> Any:
        """A component's ``register_outputs``: it declared all its children."""
        if request.urn != self.stack_urn:
            self.completed.add(request.urn)
        return super().RegisterResourceOutputs(request)  # type: ignore[no-untyped-call]

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
