"""``skdeploy plan``: what the stack declares, and what a change would do, with no cloud access.

``pulumi preview`` needs the Pulumi CLI, the AWS provider plugin and credentials, which a pull
request from a fork does not get (deploy-pitfalls.md, item 11). The plan runs the real program
under Pulumi's mocks instead (:mod:`skdeploy.tooling.mockrun`) and records every resource's type,
logical name, parent, inputs (secrets masked, file assets by file name) and options, plus the stack
outputs. Two plans, one from the base branch and one from the pull request, are then diffed:

- a resource is *added* or *deleted* when its URN appears or disappears (a read, such as the
  StackReference the program uses to see its previous outputs, is listed but never counted);
- it is *replaced* when a changed top-level input is one the provider replaces on
  (:func:`skdeploy.tooling.mockrun.replacing_fields`, the single table of those fields), or when its
  ``replacementTrigger`` option changes; else it is *updated*. A change of ``protect`` or
  ``retainOnDelete`` alone is an update, as it is for the engine; a change of dependencies alone
  is no change (the engine does not act on it).

The mocks name auto-named resources the way the provider does (a new name on replacement), so a
replaced Model changes the configuration's ``modelName``, which replaces the configuration, whose
new name updates the Endpoint: the diff shows the chain a real preview would show. The pull
request's program run sees the base plan's outputs as the stack's own previous outputs, so a
change the program refuses against a deployed stack (switching serverless and instances) is
refused here too.

Plans are compared across machines and checkouts, so the document holds no absolute path: the
program's file assets are masked to their names, and :func:`build_plan` warns if the project's
path appears anyway. Secret inputs are ``[secret]`` on both sides, so a changed secret does not
show in a diff.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from skdeploy.core.preflight import PreflightError
from skdeploy.tooling import common

#: Version of the plan document. A plan of another version is refused, not half-understood.
PLAN_VERSION: Final = 1
#: Longest rendering of a value shown in a diff; longer ones are shown as ``(changed)``.
MAX_SHOWN: Final = 80
#: Longest rendering of a value in a listing (the plan, an added resource); longer ones are cut.
MAX_LISTED: Final = 200
#: Type of the resource whose replacement means downtime (``--fail-on-replace``).
ENDPOINT_TYPE: Final = "aws:sagemaker/endpoint:Endpoint"

Action = Literal["add", "update", "replace", "move", "delete"]
#: Order of the summary line and of the markdown table (``move`` is shown only when there is one).
ACTIONS: Final[tuple[Action, ...]] = ("add", "update", "replace", "move", "delete")
_SYMBOL: Final[Mapping[Action, str]] = {
    "add": "+",
    "update": "~",
    "replace": "±",
    "move": "→",
    "delete": "-",
}


class PlanFileError(ValueError):
    """A base plan that cannot be read, or is not a plan this version understands."""


class _Absent:
    """An input that one side of a diff does not have (distinct from ``null``)."""

    def __repr__(self) -> str:
        return "(absent)"


ABSENT: Final = _Absent()


# --- The plan ------------------------------------------------------------------------------------


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


# --- Differences ---------------------------------------------------------------------------------

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _child_path(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    segment = key if _IDENTIFIER.match(key) else f"[{json.dumps(key)}]"
    if not path:
        return segment
    return f"{path}{segment}" if segment.startswith("[") else f"{path}.{segment}"


def _as_structure(value: Any) -> Any:
    """A string holding a JSON object or list (an IAM policy) is diffed as that structure."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            return value
        if isinstance(parsed, dict | list):
            return parsed
    return value


def _same(old: Any, new: Any) -> bool:
    """Equal as JSON (so that ``true`` and ``1`` differ, unlike in Python)."""
    if old is ABSENT or new is ABSENT:
        return old is new
    return json.dumps(old, sort_keys=True) == json.dumps(new, sort_keys=True)


def show(value: Any) -> str:
    """A value as the diff shows it: JSON, or ``(absent)``."""
    return repr(value) if value is ABSENT else json.dumps(value, ensure_ascii=False)


@dataclass(frozen=True)
class Change:
    """One changed leaf, at a dotted path such as ``productionVariants[0].initialInstanceCount``."""

    path: str
    old: Any
    new: Any

    def render(self) -> str:
        """``path: old → new`` for short values, ``path: (changed)`` for long ones."""
        old, new = show(self.old), show(self.new)
        if len(old) > MAX_SHOWN or len(new) > MAX_SHOWN:
            return f"{self.path}: (changed)"
        return f"{self.path}: {old} → {new}"

    def to_json(self) -> dict[str, Any]:
        """``{path, old, new}``, without ``old``/``new`` when that side has no value."""
        data: dict[str, Any] = {"path": self.path}
        if self.old is not ABSENT:
            data["old"] = self.old
        if self.new is not ABSENT:
            data["new"] = self.new
        return data


def _opened(old: Any, new: Any, kind: type) -> bool:
    """Both sides are ``kind`` or absent, and one is a non-empty ``kind``: compare inside it.

    An object that appears or goes away is thus shown leaf by leaf, so that a replacing field
    nested in it (``deploymentConfig.autoRollbackConfiguration``) is seen to change.
    """
    sides = [v for v in (old, new) if v is not ABSENT]
    return all(isinstance(v, kind) for v in sides) and any(sides)


def value_changes(old: Any, new: Any, path: str = "") -> list[Change]:
    """Every changed leaf between two values, objects by key and lists by position."""
    old, new = _as_structure(old), _as_structure(new)
    if _same(old, new):
        return []
    changes: list[Change] = []
    if _opened(old, new, dict):
        before = {} if old is ABSENT else old
        after = {} if new is ABSENT else new
        for key in sorted(set(before) | set(after)):
            changes += value_changes(
                before.get(key, ABSENT), after.get(key, ABSENT), _child_path(path, key)
            )
        return changes
    if _opened(old, new, list):
        before = [] if old is ABSENT else old
        after = [] if new is ABSENT else new
        for index in range(max(len(before), len(after))):
            changes += value_changes(
                before[index] if index < len(before) else ABSENT,
                after[index] if index < len(after) else ABSENT,
                _child_path(path, index),
            )
        return changes
    return [Change(path, old, new)]


def leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every leaf of a value with its dotted path (JSON strings opened up), for listings."""
    value = _as_structure(value)
    if isinstance(value, dict) and value:
        for key in sorted(value):
            yield from leaves(value[key], _child_path(path, key))
    elif isinstance(value, list) and value:
        for index, item in enumerate(value):
            yield from leaves(item, _child_path(path, index))
    else:
        yield path, value


def _shown_leaf(path: str, value: Any) -> str:
    text = show(value)
    if len(text) > MAX_LISTED:
        text = f"{text[: MAX_LISTED - 1]}… ({len(text)} characters)"
    return f"{path}: {text}"


@dataclass(frozen=True)
class ResourceChange:
    """What happens to one resource, and which inputs and options changed."""

    action: Action
    resource: PlannedResource
    changes: tuple[Change, ...] = ()
    option_changes: tuple[Change, ...] = ()
    changed_inputs: tuple[str, ...] = ()
    replaced_because: tuple[str, ...] = ()
    #: The base plan's URN of a resource matched through one of its aliases.
    moved_from: str | None = None

    @property
    def label(self) -> str:
        """The action as shown: a replacement that deletes first is a downtime, and says so."""
        if self.action == "replace" and self.resource.delete_before_replace:
            return "replace (delete first)"
        return self.action

    def detail_lines(self) -> list[str]:
        """The changed inputs (or, for an added or deleted resource, all of them), one a line."""
        if self.action in ("add", "delete"):
            return [_shown_leaf(p, v) for p, v in leaves(dict(self.resource.inputs)) if p]
        lines = [] if self.moved_from is None else [f"moved from {self.moved_from}"]
        lines += [c.render() for c in self.changes]
        lines += [f"option {c.render()}" for c in self.option_changes]
        return lines

    def to_json(self) -> dict[str, Any]:
        """One entry of the diff document's ``resources``."""
        return {
            "urn": self.resource.urn,
            "type": self.resource.type,
            "name": self.resource.name,
            "action": self.action,
            "deleteFirst": self.action == "replace" and self.resource.delete_before_replace,
            "replacedBecause": list(self.replaced_because),
            "changes": [c.to_json() for c in self.changes],
            "optionChanges": [c.to_json() for c in self.option_changes],
            "movedFrom": self.moved_from,
        }


@dataclass(frozen=True)
class PlanDiff:
    """The difference between a base plan and this one, resource by resource."""

    stack: str
    resources: tuple[ResourceChange, ...]
    unchanged: int
    outputs: tuple[Change, ...] = ()

    def count(self, action: Action) -> int:
        """How many resources get ``action``."""
        return sum(1 for r in self.resources if r.action == action)

    @property
    def empty(self) -> bool:
        """True when nothing would change (resources or outputs)."""
        return not self.resources and not self.outputs

    def summary(self) -> str:
        """``+2 to add, ~1 to update, ±2 to replace, -0 to delete`` (``→1 to move`` if any)."""
        shown = [a for a in ACTIONS if a != "move" or self.count(a)]
        return ", ".join(f"{_SYMBOL[a]}{self.count(a)} to {a}" for a in shown)

    def replaces(self, type_: str) -> list[ResourceChange]:
        """Resources of ``type_`` that would be replaced or deleted."""
        return [
            r
            for r in self.resources
            if r.resource.type == type_ and r.action in ("replace", "delete")
        ]

    def to_json(self) -> dict[str, Any]:
        """The ``skdeploy plan --against BASE --json`` document."""
        return {
            "version": PLAN_VERSION,
            "stack": self.stack,
            "summary": {**{a: self.count(a) for a in ACTIONS}, "unchanged": self.unchanged},
            "resources": [r.to_json() for r in self.resources],
            "outputs": [c.to_json() for c in self.outputs],
        }


def _options(resource: PlannedResource) -> dict[str, Any]:
    """The options whose change the engine acts on (dependencies alone change nothing)."""
    return {
        "protect": resource.protect,
        "retainOnDelete": resource.retain_on_delete,
        "replacementTrigger": resource.replacement_trigger,
    }


#: Resources the program reads rather than manages: listed in the plan, never added or deleted.
READ_TYPES: Final = frozenset({"pulumi:pulumi:StackReference"})


def _resource_change(
    before: PlannedResource, after: PlannedResource, *, moved: bool = False
) -> ResourceChange | None:
    """How ``before`` becomes ``after``; a move with no change is ``move``, else None."""
    from skdeploy.tooling.mockrun import replacing_fields

    moved_from = before.urn if moved else None
    inputs: list[Change] = []
    changed: list[str] = []
    for key in sorted(set(before.inputs) | set(after.inputs)):
        found = value_changes(
            before.inputs.get(key, ABSENT), after.inputs.get(key, ABSENT), _child_path("", key)
        )
        if found:
            changed.append(key)
            inputs += found
    options = value_changes(_options(before), _options(after))
    if not changed and not options:
        return ResourceChange("move", after, moved_from=moved_from) if moved else None
    replacing = sorted(replacing_fields(after.type, {c.path for c in inputs}))
    if any(c.path.startswith("replacementTrigger") for c in options):
        # Conservative: a trigger that changes, appears or goes away is taken as a replacement.
        replacing.append("replacementTrigger")
    return ResourceChange(
        "replace" if replacing else "update",
        after,
        changes=tuple(inputs),
        option_changes=tuple(options),
        changed_inputs=tuple(changed),
        replaced_because=tuple(replacing),
        moved_from=moved_from,
    )


def _moves(
    old: Mapping[str, PlannedResource], new: Mapping[str, PlannedResource]
) -> dict[str, str]:
    """Head URN → base URN of each resource the engine finds under an alias of its new URN.

    As for the engine, an alias matches a base resource that no head resource keeps its URN.
    """
    moves: dict[str, str] = {}
    for urn, resource in new.items():
        if urn in old:
            continue
        found = [a for a in resource.aliases if a in old and a not in new]
        if found and found[0] not in moves.values():
            moves[urn] = found[0]
    return moves


def diff_plans(base: Plan, head: Plan) -> PlanDiff:
    """What applying ``head`` to a stack deployed from ``base`` would do.

    A resource is matched by URN, or by one of its aliases (a move: not a delete and a create).
    """
    old = {r.urn: r for r in base.resources if r.type not in READ_TYPES}
    new = {r.urn: r for r in head.resources if r.type not in READ_TYPES}
    moves = _moves(old, new)
    changes: list[ResourceChange] = []
    unchanged = 0
    for urn in sorted((set(old) - set(moves.values())) | set(new)):
        before = old.get(moves.get(urn, urn))
        if before is None:
            changes.append(ResourceChange("add", new[urn]))
        elif urn not in new:
            changes.append(ResourceChange("delete", before))
        elif (change := _resource_change(before, new[urn], moved=urn in moves)) is not None:
            changes.append(change)
        else:
            unchanged += 1
    outputs = value_changes(dict(base.outputs), dict(head.outputs))
    return PlanDiff(head.stack, tuple(changes), unchanged, tuple(outputs))


# --- Rendering -----------------------------------------------------------------------------------


def _short_type(type_: str) -> str:
    """``aws:sagemaker/endpoint:Endpoint`` → ``Endpoint``."""
    return type_.rsplit(":", 1)[-1]


def _flags(resource: PlannedResource) -> str:
    flags = [k for k, on in _options(resource).items() if on]
    return f" [{', '.join(flags)}]" if flags else ""


def render_plan_text(plan: Plan) -> str:
    """The plan as a tree: each resource under its parent, its inputs beneath it."""
    by_urn = {r.urn: r for r in plan.resources}
    children: dict[str, list[PlannedResource]] = {}
    for resource in plan.resources:
        parent = resource.parent if resource.parent in by_urn else ""
        children.setdefault(parent, []).append(resource)
    lines = [
        f"Plan of stack {plan.stack}: {len(plan.resources)} resources "
        "(the program run offline under Pulumi's mocks)"
    ]

    def walk(parent: str, depth: int) -> None:
        for resource in children.get(parent, []):
            indent = "  " * depth
            lines.append(f"{indent}{resource.type}  {resource.name}{_flags(resource)}")
            lines.extend(
                f"{indent}    {_shown_leaf(p, v)}" for p, v in leaves(dict(resource.inputs)) if p
            )
            walk(resource.urn, depth + 1)

    walk("", 1)
    lines.append("outputs:")
    lines.extend(f"  {_shown_leaf(p, v)}" for p, v in leaves(dict(plan.outputs)) if p)
    return "\n".join(lines) + "\n"


def render_diff_text(diff: PlanDiff, base_name: str) -> str:
    """The diff for a terminal: one block per changed resource, then outputs, then the summary."""
    if diff.empty:
        return f"Stack {diff.stack}: no changes against {base_name}.\n"
    lines = [f"Changes to stack {diff.stack} against {base_name}:"]
    for change in diff.resources:
        resource = change.resource
        why = (
            f"  (replaced because {', '.join(change.replaced_because)} changed)"
            if change.replaced_because
            else ""
        )
        lines.append(
            f"{_SYMBOL[change.action]} {change.label:<7} {resource.type}  {resource.name}{why}"
        )
        lines.extend(f"      {line}" for line in change.detail_lines())
    if diff.outputs:
        lines.append("outputs:")
        lines.extend(f"  {c.render()}" for c in diff.outputs)
    lines.append(f"{diff.summary()} ({diff.unchanged} unchanged)")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    """Text safe in a markdown table cell: pipes escaped, no line breaks, no raw HTML."""
    return (
        text.replace("\\", "\\\\")
        .replace("|", "\\|")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("\n", " ")
    )


def _fenced(lines: Sequence[str]) -> list[str]:
    """A code block whose fence is longer than any run of backticks in ``lines``."""
    longest = max((len(run) for line in lines for run in re.findall(r"`+", line)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence, *lines, fence]


def _details(summary: str, lines: Sequence[str]) -> list[str]:
    return ["<details>", f"<summary>{_cell(summary)}</summary>", "", *_fenced(lines), "</details>"]


def _replaces(name: str, fields: Sequence[str]) -> bool:
    """Whether input ``name`` holds one of the replacing ``fields`` (``name`` or ``name.x``)."""
    return any(f == name or f.startswith((f"{name}.", f"{name}[")) for f in fields)


def render_diff_markdown(diff: PlanDiff, title: str) -> str:
    """The diff for a pull request: summary line, a table of resources, details per resource."""
    lines = [f"#### {_cell(title)}", "", f"**{diff.summary()}** ({diff.unchanged} unchanged)", ""]
    if diff.empty:
        lines.append("No changes.")
        return "\n".join(lines) + "\n"
    if diff.resources:
        lines += ["| Action | Resource | Type | Changed inputs |", "|---|---|---|---|"]
        for change in diff.resources:
            named = ", ".join(
                f"**{name}**" if _replaces(name, change.replaced_because) else name
                for name in change.changed_inputs
            )
            lines.append(
                f"| {_SYMBOL[change.action]} {change.label} | {_cell(change.resource.name)} "
                f"| {_cell(_short_type(change.resource.type))} | {_cell(named)} |"
            )
        lines += ["", "Inputs in bold force the replacement.", ""]
        for change in diff.resources:
            details = change.detail_lines()
            if details:
                summary = f"{change.label}: {change.resource.name} ({change.resource.type})"
                lines += [*_details(summary, details), ""]
    if diff.outputs:
        lines += [*_details("stack outputs", [c.render() for c in diff.outputs]), ""]
    return "\n".join(lines)


def render_plan_markdown(plan: Plan) -> str:
    """The plan alone, as a new stack would be created: every resource is added."""
    empty = Plan(stack=plan.stack, resources=())
    diff = diff_plans(empty, plan)
    return render_diff_markdown(
        diff, f"skdeploy plan: stack {plan.stack} (no base plan: every resource is new)"
    )


# --- Command line --------------------------------------------------------------------------------


def _plan_command(args: argparse.Namespace) -> int:
    if args.fail_on_replace and args.against is None:
        print("skdeploy: --fail-on-replace needs --against BASE.json", file=sys.stderr)
        return common.EXIT_CANNOT_RUN
    base: Plan | None = None
    if args.against is not None:
        try:
            base = load_plan(Path(args.against))
        except PlanFileError as exc:
            print(f"skdeploy: {exc}", file=sys.stderr)
            return common.EXIT_CANNOT_RUN
        if base.stack != args.stack:
            print(
                f"skdeploy: {args.against} is a plan of stack {base.stack!r}, not {args.stack!r}",
                file=sys.stderr,
            )
            return common.EXIT_CANNOT_RUN
    settings = common.stack_settings(args)
    from skdeploy.infra.endpoint import EndpointReplacementRefused

    try:
        plan = build_plan(settings.project_dir, settings.stack, previous=base)
    except (PreflightError, EndpointReplacementRefused) as exc:
        print(exc, file=sys.stderr)
        print("skdeploy: the program refuses to declare this stack; no plan", file=sys.stderr)
        return common.EXIT_FAILED
    if base is None:
        if args.json:
            sys.stdout.write(plan.dumps())
        elif args.markdown:
            sys.stdout.write(render_plan_markdown(plan))
        else:
            sys.stdout.write(render_plan_text(plan))
        return common.EXIT_OK
    diff = diff_plans(base, plan)
    base_name = Path(args.against).name
    if args.json:
        sys.stdout.write(json.dumps(diff.to_json(), indent=2, sort_keys=True) + "\n")
    elif args.markdown:
        sys.stdout.write(
            render_diff_markdown(diff, f"skdeploy plan: stack {plan.stack} against {base_name}")
        )
    else:
        sys.stdout.write(render_diff_text(diff, base_name))
    replaced = diff.replaces(ENDPOINT_TYPE)
    if args.fail_on_replace and replaced:
        names = ", ".join(r.resource.name for r in replaced)
        print(f"skdeploy: the endpoint would be replaced or deleted: {names}", file=sys.stderr)
        return common.EXIT_FAILED
    return common.EXIT_OK


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``skdeploy plan``."""
    parser = sub.add_parser(
        "plan",
        help="what the stack declares, offline; with --against, what would change",
        description=(
            "Run the Pulumi program under Pulumi's mocks (no CLI, no plugin, no credentials) and "
            "print every resource with its inputs and options, and the stack outputs. With "
            "--against BASE.json (a plan made by `skdeploy plan --json` on the base branch), "
            "print what would be added, updated, replaced or deleted, and which inputs changed. "
            "Exit codes: 0 done (changes are not a failure), 1 the program refused the stack or "
            "--fail-on-replace found the endpoint replaced, 2 cannot run."
        ),
    )
    common.add_stack_arguments(parser)
    output = parser.add_mutually_exclusive_group()
    output.add_argument(
        "--json",
        action="store_true",
        help=f"print the plan (or diff) as JSON, version {PLAN_VERSION}",
    )
    output.add_argument(
        "--markdown", action="store_true", help="print GitHub-flavoured markdown, for a PR"
    )
    parser.add_argument(
        "--against",
        metavar="BASE.json",
        type=Path,
        help="a base plan to diff against (from `skdeploy plan --json`)",
    )
    parser.add_argument(
        "--fail-on-replace",
        action="store_true",
        help="with --against: exit 1 if the Endpoint would be replaced or deleted (downtime)",
    )
    parser.set_defaults(handler=_plan_command)
