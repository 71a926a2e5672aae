"""What applying one plan to a stack deployed from another would do, resource by resource.

- a resource is *added* or *deleted* when its URN appears or disappears (a read, such as the
  StackReference the program uses to see its previous outputs, is listed but never counted);
  a resource whose new URN is matched by one of its aliases is *moved* (the engine's matching);
- it is *replaced* when a changed top-level input is one the provider replaces on
  (:func:`skdeploy.tooling.mockrun.replacing_fields`, the single table of those fields), or when its
  ``replacementTrigger`` option changes; else it is *updated*. A change of ``protect`` or
  ``retainOnDelete`` alone is an update, as it is for the engine; a change of dependencies alone
  is no change (the engine does not act on it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from skdeploy.tooling.plan.model import PLAN_VERSION, Plan, PlannedResource
from skdeploy.tooling.plan.values import (
    ABSENT,
    Change,
    child_path,
    leaves,
    shown_leaf,
    value_changes,
)

#: Type of the resource whose replacement means downtime (``--fail-on-replace``).
ENDPOINT_TYPE: Final = "aws:sagemaker/endpoint:Endpoint"

Action = Literal["add", "update", "replace", "move", "delete"]
#: Order of the summary line and of the markdown table (``move`` is shown only when there is one).
ACTIONS: Final[tuple[Action, ...]] = ("add", "update", "replace", "move", "delete")
SYMBOL: Final[Mapping[Action, str]] = {
    "add": "+",
    "update": "~",
    "replace": "±",
    "move": "→",
    "delete": "-",
}


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
            return [shown_leaf(p, v) for p, v in leaves(dict(self.resource.inputs)) if p]
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
        return ", ".join(f"{SYMBOL[a]}{self.count(a)} to {a}" for a in shown)

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


def engine_options(resource: PlannedResource) -> dict[str, Any]:
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
            before.inputs.get(key, ABSENT), after.inputs.get(key, ABSENT), child_path("", key)
        )
        if found:
            changed.append(key)
            inputs += found
    options = value_changes(engine_options(before), engine_options(after))
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
