"""A plan or a diff for a terminal (text) or a pull request (GitHub-flavoured markdown)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from skdeploy.core.rollback import ROLLBACK_TAG
from skdeploy.tooling.plan.cost import CostContext, DiffCost, cost_lines, plan_cost
from skdeploy.tooling.plan.diff import SYMBOL, PlanDiff, diff_plans, engine_options
from skdeploy.tooling.plan.model import Plan, PlannedResource
from skdeploy.tooling.plan.values import leaves, shown_leaf


def _short_type(type_: str) -> str:
    """``aws:sagemaker/endpoint:Endpoint`` → ``Endpoint``."""
    return type_.rsplit(":", 1)[-1]


def _flags(resource: PlannedResource) -> str:
    flags = [k for k, on in engine_options(resource).items() if on]
    return f" [{', '.join(flags)}]" if flags else ""


def render_plan_text(plan: Plan, context: CostContext | None = None) -> str:
    """The plan as a tree: each resource under its parent, its inputs beneath it; then its
    monthly cost at ``context``'s prices and traffic (default: the shipped table)."""
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
                f"{indent}    {shown_leaf(p, v)}" for p, v in leaves(dict(resource.inputs)) if p
            )
            walk(resource.urn, depth + 1)

    walk("", 1)
    lines.append("outputs:")
    lines.extend(f"  {shown_leaf(p, v)}" for p, v in leaves(dict(plan.outputs)) if p)
    cost = plan_cost(plan, CostContext.default() if context is None else context)
    lines.append(f"monthly cost of stack {plan.stack} ({cost.region}):")
    lines.extend(cost_lines(cost))
    return "\n".join(lines) + "\n"


def rollbacks(diff: PlanDiff) -> list[str]:
    """``rollback to <sha>`` for each resource whose rollback tag the diff adds or changes (a
    pinned stack's Model, see :mod:`skdeploy.core.rollback`): said first, for the reviewer."""
    found: list[str] = []
    for change in diff.resources:
        if change.action == "add":
            tags = change.resource.inputs.get("tags")
            labels = [tags.get(ROLLBACK_TAG)] if isinstance(tags, dict) else []
        elif change.action in ("replace", "update"):
            labels = [c.new for c in change.changes if ROLLBACK_TAG in c.path]
        else:
            labels = []
        found += [label for label in labels if isinstance(label, str) and label not in found]
    return found


def render_diff_text(diff: PlanDiff, base_name: str, cost: DiffCost | None = None) -> str:
    """The diff for a terminal: one block per changed resource (with the monthly cost it moves),
    then outputs, then the summary and, with ``cost``, the stack's cost before and after."""
    if diff.empty:
        return f"Stack {diff.stack}: no changes against {base_name}.\n"
    lines = [f"Changes to stack {diff.stack} against {base_name}:"]
    lines += [f"This is a {label}." for label in rollbacks(diff)]
    for change in diff.resources:
        resource = change.resource
        why = (
            f"  (replaced because {', '.join(change.replaced_because)} changed)"
            if change.replaced_because
            else ""
        )
        lines.append(
            f"{SYMBOL[change.action]} {change.label:<7} {resource.type}  {resource.name}{why}"
        )
        lines.extend(f"      {line}" for line in change.detail_lines())
        moved = None if cost is None else cost.of_change(resource.type)
        if moved is not None:
            lines.append(f"      monthly cost: {moved[0]} → {moved[1]}")
    if diff.outputs:
        lines.append("outputs:")
        lines.extend(f"  {c.render()}" for c in diff.outputs)
    lines.append(f"{diff.summary()} ({diff.unchanged} unchanged)")
    if cost is not None:
        lines.append(f"{cost.summary()} ({cost.after.traffic.describe()} assumed)")
        lines.extend(f"  {part}: {old} → {new}" for part, old, new in cost.rows() if old != new)
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


def _cost_markdown(diff: PlanDiff, cost: DiffCost) -> list[str]:
    """The stack's monthly cost before and after, part by part, then per changed resource."""
    lines = [
        f"**{_cell(cost.summary())}** ({_cell(cost.after.traffic.describe())} assumed)",
        "",
        "| Monthly cost | Before | After |",
        "|---|---|---|",
    ]
    lines += [f"| {_cell(part)} | {_cell(old)} | {_cell(new)} |" for part, old, new in cost.rows()]
    moved = [(c, cost.of_change(c.resource.type)) for c in diff.resources]
    shown = [(c, m) for c, m in moved if m is not None]
    if shown:
        lines += ["", "| Changed resource | Monthly cost before | After |", "|---|---|---|"]
        lines += [
            f"| {_cell(c.resource.name)} ({_cell(_short_type(c.resource.type))}, {c.label}) "
            f"| {_cell(m[0])} | {_cell(m[1])} |"
            for c, m in shown
        ]
        lines += [
            "",
            "Each row is the cost of the parts the resource drives: instances show under both the "
            "configuration and the autoscaling target.",
        ]
    return [*lines, ""]


def render_diff_markdown(diff: PlanDiff, title: str, cost: DiffCost | None = None) -> str:
    """The diff for a pull request: summary line, the monthly cost before and after (with
    ``cost``), a table of resources, details per resource."""
    lines = [f"#### {_cell(title)}", "", f"**{diff.summary()}** ({diff.unchanged} unchanged)", ""]
    lines += [f"**This is a {_cell(label)}.**\n" for label in rollbacks(diff)]
    if cost is not None:
        lines += _cost_markdown(diff, cost)
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
                f"| {SYMBOL[change.action]} {change.label} | {_cell(change.resource.name)} "
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


def render_plan_markdown(plan: Plan, context: CostContext | None = None) -> str:
    """The plan alone, as a new stack would be created: every resource is added, and the
    monthly cost goes from nothing to the stack's."""
    empty = Plan(stack=plan.stack, resources=())
    diff = diff_plans(empty, plan)
    cost = DiffCost.of(empty, plan, CostContext.default() if context is None else context)
    return render_diff_markdown(
        diff, f"skdeploy plan: stack {plan.stack} (no base plan: every resource is new)", cost
    )
