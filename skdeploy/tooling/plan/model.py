"""The plan document: every resource a stack declares, with its inputs and options, and its outputs.

Plans are compared across machines and checkouts, so the document holds no absolute path: the
program's file assets are masked to their names, and :func:`build_plan` warns if the project's
path appears anyway. Secret inputs are ``[secret]``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from skdeploy.tooling import common

#: Version of the plan document. A plan of another version is refused, not half-understood.
PLAN_VERSION: Final = 1


class PlanFileError(ValueError):
    """A base plan that cannot be read, or is not a plan this version understands."""


@dataclass(frozen=True)
class PlannedResource:
    """One declared resource, in the plan document's shape."""

    urn: str
    type: str
    name: str
    parent: str
    inputs: Mapping[str, Any]
    protect: bool = False
    retain_on_delete: bool = False
    depends_on: tuple[str, ...] = ()
    delete_before_replace: bool = False
    replacement_trigger: Any = None
    aliases: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """``{urn, type, name, parent, inputs, options: {protect, retainOnDelete, dependsOn}}``.

        ``deleteBeforeReplace`` and ``replacementTrigger`` are options too: the first makes a
        replacement a downtime, the second replaces the resource whenever its value changes.
        ``aliases`` are the full URNs the resource had before a move (absent in older plans).
        """
        return {
            "urn": self.urn,
            "type": self.type,
            "name": self.name,
            "parent": self.parent,
            "inputs": dict(self.inputs),
            "options": {
                "protect": self.protect,
                "retainOnDelete": self.retain_on_delete,
                "dependsOn": list(self.depends_on),
                "deleteBeforeReplace": self.delete_before_replace,
                "replacementTrigger": self.replacement_trigger,
                "aliases": list(self.aliases),
            },
        }


@dataclass(frozen=True)
class Plan:
    """Everything one stack declares, resources sorted by URN so that plans compare line by line."""

    stack: str
    resources: tuple[PlannedResource, ...]
    outputs: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The ``skdeploy plan --json`` document."""
        return {
            "version": PLAN_VERSION,
            "stack": self.stack,
            "resources": [r.to_json() for r in self.resources],
            "outputs": dict(self.outputs),
        }

    def dumps(self) -> str:
        """The document as stable JSON text (sorted keys), ending with a newline."""
        return json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n"


def _plain_numbers(value: Any) -> Any:
    """Whole floats as ints: the engine's wire format makes every number a float (1 → 1.0)."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _plain_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain_numbers(v) for v in value]
    return value


def build_plan(
    project_dir: Path,
    stack: str,
    config: Mapping[str, object] | None = None,
    *,
    previous: Plan | None = None,
) -> Plan:
    """Run the program for ``stack`` under mocks and record its plan.

    ``previous`` is the plan the stack was last deployed from: the program reads that plan's
    outputs back as the stack's own (it refuses some changes by comparing with them). None: a
    new stack. Raises SettingsError (bad stack file), PreflightError or
    EndpointReplacementRefused (the program refuses to declare the stack).
    """
    from skdeploy.tooling.mockrun import run_program  # pulumi is slow to import; only plan needs it

    run = run_program(
        project_dir,
        stack,
        config,
        previous_outputs=None if previous is None else dict(previous.outputs),
    )
    resources = tuple(
        sorted(
            (
                PlannedResource(
                    urn=r.urn,
                    type=r.type,
                    name=r.name,
                    parent=r.parent,
                    inputs=_plain_numbers(r.inputs),
                    protect=r.protect,
                    retain_on_delete=r.retain_on_delete,
                    depends_on=tuple(sorted(r.dependencies)),
                    delete_before_replace=r.delete_before_replace,
                    replacement_trigger=_plain_numbers(r.replacement_trigger),
                    aliases=tuple(sorted(r.aliases)),
                )
                for r in run.resources
            ),
            key=lambda r: r.urn,
        )
    )
    plan = Plan(stack=stack, resources=resources, outputs=_plain_numbers(run.exports))
    if str(project_dir.resolve()) in plan.dumps():
        common.progress(
            f"warning: the plan contains the project's path {project_dir.resolve()}; "
            "plans made in other checkouts will differ"
        )
    return plan


def _not_a_plan(source: str, problem: str) -> PlanFileError:
    return PlanFileError(f"{source} is not a skdeploy plan: {problem}")


def _resource_from_json(item: object, where: str, source: str) -> PlannedResource:
    if not isinstance(item, dict):
        raise _not_a_plan(source, f"{where} is not an object")
    for key in ("urn", "type", "name", "parent"):
        if not isinstance(item.get(key), str):
            raise _not_a_plan(source, f"{where}.{key} must be a string")
    inputs, options = item.get("inputs"), item.get("options", {})
    if not isinstance(inputs, dict):
        raise _not_a_plan(source, f"{where}.inputs must be an object")
    if not isinstance(options, dict) or not isinstance(options.get("dependsOn", []), list):
        raise _not_a_plan(source, f"{where}.options must be an object with a dependsOn list")
    if not isinstance(options.get("aliases", []), list):
        raise _not_a_plan(source, f"{where}.options.aliases must be a list")
    return PlannedResource(
        urn=item["urn"],
        type=item["type"],
        name=item["name"],
        parent=item["parent"],
        inputs=inputs,
        protect=bool(options.get("protect", False)),
        retain_on_delete=bool(options.get("retainOnDelete", False)),
        depends_on=tuple(str(d) for d in options.get("dependsOn", [])),
        delete_before_replace=bool(options.get("deleteBeforeReplace", False)),
        replacement_trigger=options.get("replacementTrigger"),
        aliases=tuple(str(a) for a in options.get("aliases", [])),
    )


def plan_from_json(data: object, source: str) -> Plan:
    """Read a plan document (raises PlanFileError if it is not one, or of another version)."""
    if not isinstance(data, dict):
        raise _not_a_plan(source, "the document is not a JSON object")
    version = data.get("version")
    if version != PLAN_VERSION:
        raise PlanFileError(
            f"{source} is a plan of version {json.dumps(version)}; this skdeploy reads version "
            f"{PLAN_VERSION}: make the base plan again with this version "
            "(skdeploy plan --json) before comparing"
        )
    stack, items, outputs = data.get("stack"), data.get("resources"), data.get("outputs", {})
    if not isinstance(stack, str):
        raise _not_a_plan(source, '"stack" must be a string')
    if not isinstance(items, list):
        raise _not_a_plan(source, '"resources" must be a list')
    if not isinstance(outputs, dict):
        raise _not_a_plan(source, '"outputs" must be an object')
    resources = [
        _resource_from_json(item, f"resources[{index}]", source) for index, item in enumerate(items)
    ]
    urns = [r.urn for r in resources]
    if len(set(urns)) != len(urns):
        raise _not_a_plan(source, "a URN appears twice")
    return Plan(stack, tuple(sorted(resources, key=lambda r: r.urn)), outputs)


def load_plan(path: Path) -> Plan:
    """Read a plan written by ``skdeploy plan --json`` (raises PlanFileError)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanFileError(f"cannot read the base plan {path}: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PlanFileError(f"{path} is not JSON: {exc}") from None
    return plan_from_json(data, str(path))
