"""A plan or a diff for a terminal (text) or a pull request (GitHub-flavoured markdown)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from skdeploy.tooling.plan.diff import SYMBOL, PlanDiff, diff_plans, engine_options
from skdeploy.tooling.plan.model import Plan, PlannedResource
from skdeploy.tooling.plan.values import leaves, shown_leaf


def _short_type(type_: str) -> str:
    """``aws:sagemaker/endpoint:Endpoint`` → ``Endpoint``."""
    return type_.rsplit(":", 1)[-1]


def _flags(resource: PlannedResource) -> str:
    flags = [k for k, on in engine_options(resource).items() if on]
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
                f"{indent}    {shown_leaf(p, v)}" for p, v in leaves(dict(resource.inputs)) if p
            )
            walk(resource.urn, depth + 1)

    walk("", 1)
    lines.append("outputs:")
    lines.extend(f"  {shown_leaf(p, v)}" for p, v in leaves(dict(plan.outputs)) if p)
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
            f"{SYMBOL[change.action]} {change.label:<7} {resource.type}  {resource.name}{why}"
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


def render_plan_markdown(plan: Plan) -> str:
    """The plan alone, as a new stack would be created: every resource is added."""
    empty = Plan(stack=plan.stack, resources=())
    diff = diff_plans(empty, plan)
    return render_diff_markdown(
        diff, f"skdeploy plan: stack {plan.stack} (no base plan: every resource is new)"
    )
