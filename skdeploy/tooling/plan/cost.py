"""A plan's monthly cost: the cost model's figures read from the plan document, and rendered.

The figures are read from the plan (the EndpointConfiguration's variants and data capture, the
autoscaling targets' min and max, the front door's Lambda memory, the region output), not from
the stack file, so that a base plan made on another branch is priced the same way as the head:
before and after come from the two documents the diff compares. The traffic assumption and the
price table are the same on both sides, so a difference is the change's own.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from skdeploy.core.cost import (
    BASE_REGION,
    Component,
    CostInputs,
    InstanceVariant,
    PriceTable,
    ServerlessVariant,
    StackCost,
    Traffic,
    load_prices,
    monthly_cost,
)
from skdeploy.tooling.plan.model import Plan

CONFIG_TYPE: Final = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
TARGET_TYPE: Final = "aws:appautoscaling/target:Target"
FUNCTION_TYPE: Final = "aws:lambda/function:Function"
OBJECT_TYPE: Final = "aws:s3/bucketObjectv2:BucketObjectv2"
#: Which cost components a change of a resource of each type can move.
COMPONENTS_OF: Final[Mapping[str, tuple[Component, ...]]] = {
    CONFIG_TYPE: ("instances", "serverless", "data_capture"),
    TARGET_TYPE: ("instances",),
    FUNCTION_TYPE: ("front_door",),
    "aws:apigatewayv2/api:Api": ("front_door",),
    OBJECT_TYPE: ("s3",),
}


@dataclass(frozen=True)
class CostContext:
    """What prices a plan: the table and the traffic assumption (the same for base and head)."""

    table: PriceTable
    traffic: Traffic

    @classmethod
    def default(cls) -> CostContext:
        """The shipped price table and the default traffic assumption."""
        return cls(load_prices(), Traffic())


def _int(value: Any, default: int = 0) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else default


def _scaled(plan: Plan) -> dict[str, tuple[int, int]]:
    """Variant name → (min, max) instances of each autoscaling target in the plan."""
    ranges = {}
    for resource in plan.resources:
        if resource.type == TARGET_TYPE:
            variant = str(resource.inputs.get("resourceId", "")).rsplit("/", 1)[-1]
            low = _int(resource.inputs.get("minCapacity"))
            ranges[variant] = (low, _int(resource.inputs.get("maxCapacity"), low))
    return ranges


def _variants(config: Mapping[str, Any], scaled: Mapping[str, tuple[int, int]]) -> CostInputs:
    instances, serverless = [], []
    listed = [*config.get("productionVariants", []), *config.get("shadowProductionVariants", [])]
    for variant in listed:
        if not isinstance(variant, dict):
            continue
        name = str(variant.get("variantName", "?"))
        if isinstance(variant.get("serverlessConfig"), dict):
            settings = variant["serverlessConfig"]
            serverless.append(
                ServerlessVariant(
                    name,
                    _int(settings.get("memorySizeInMb")),
                    _int(settings.get("maxConcurrency")),
                )
            )
        else:
            count = _int(variant.get("initialInstanceCount"), 1)
            low, high = scaled.get(name, (count, count))
            instances.append(InstanceVariant(name, str(variant.get("instanceType")), low, high))
    capture = config.get("dataCaptureConfig")
    percent = None
    if isinstance(capture, dict) and capture.get("enableCapture", True):
        percent = float(capture.get("initialSamplingPercentage", 0))
    return CostInputs(BASE_REGION, tuple(instances), tuple(serverless), capture_percent=percent)


def cost_inputs(plan: Plan) -> CostInputs:
    """The figures that drive ``plan``'s bill, read from its resources and outputs."""
    config = next((r.inputs for r in plan.resources if r.type == CONFIG_TYPE), {})
    inputs = _variants(config, _scaled(plan))
    memory = next(
        (_int(r.inputs.get("memorySize"), 128) for r in plan.resources if r.type == FUNCTION_TYPE),
        None,
    )
    region = plan.outputs.get("region")
    return CostInputs(
        region if isinstance(region, str) and region else BASE_REGION,
        inputs.instances,
        inputs.serverless,
        inputs.capture_percent,
        memory,
        artifacts=sum(1 for r in plan.resources if r.type == OBJECT_TYPE),
    )


def plan_cost(plan: Plan, context: CostContext) -> StackCost:
    """The monthly cost of what ``plan`` declares."""
    return monthly_cost(cost_inputs(plan), context.table, context.traffic)


def money(low: float | None, high: float | None) -> str:
    """``$83.95``, ``$167.90-$503.70`` for a range, ``unpriced`` without a figure."""
    if low is None or high is None:
        return "unpriced"
    if round(low, 2) == round(high, 2):
        return f"${low:,.2f}"
    return f"${low:,.2f}-${high:,.2f}"


def total(cost: StackCost, components: tuple[Component, ...] | None = None) -> str:
    """The total of the priced lines (of ``components``), marked when some lines are unpriced."""
    lines = [c for c in cost.lines if components is None or c.component in components]
    low = sum(c.low for c in lines if c.low is not None)
    high = sum(c.high for c in lines if c.high is not None)
    unpriced = sum(1 for c in lines if not c.priced)
    shown = money(low, high) if len(lines) > unpriced or not lines else "unpriced"
    if unpriced and len(lines) > unpriced:
        shown += f" + {unpriced} unpriced"
    return shown


def cost_lines(cost: StackCost) -> list[str]:
    """The stack's cost, one line per part, then the total and the assumption it rests on."""
    lines = [
        f"  {line.label}: {money(line.low, line.high)}  ({line.detail})" for line in cost.lines
    ]
    lines.append(f"  total: {total(cost)} a month")
    lines.append(f"  traffic assumed: {cost.traffic.describe()} (--requests-per-month, ...)")
    return lines


def change_cost(type_: str, before: StackCost, after: StackCost) -> tuple[str, str] | None:
    """The monthly cost a change of a resource of ``type_`` moves: (before, after), or None."""
    components = COMPONENTS_OF.get(type_)
    if components is None:
        return None
    old, new = total(before, components), total(after, components)
    return None if old == new else (old, new)


def _plain(value: float) -> str:
    """A price without an exponent: ``0.0000166667``, not ``1.66667e-05``."""
    return f"{value:.10f}".rstrip("0").rstrip(".")


def prices_report(table: PriceTable, today: datetime.date) -> str:
    """How old the price table is, and every figure with its region, source and date."""
    age = table.age_days(today)
    lines = [
        f"Price table: {len(table.prices)} prices, oldest from {table.oldest.isoformat()} "
        f"({age} days old on {today.isoformat()}); {table.currency}, "
        f"{table.hours_per_month:g} hours a month. Nothing is fetched at run time."
    ]
    for price in sorted(table.prices.values(), key=lambda p: (p.key, p.region)):
        value = "not sourced" if price.value is None else f"${_plain(price.value)} per {price.unit}"
        lines.append(f"  {price.key} [{price.region}, {price.date.isoformat()}]: {value}")
        lines.append(f"      source: {price.source}")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class DiffCost:
    """The monthly cost of the base plan and of the head plan, at the same prices and traffic."""

    before: StackCost
    after: StackCost

    @classmethod
    def of(cls, base: Plan, head: Plan, context: CostContext) -> DiffCost:
        """Price both plans."""
        return cls(plan_cost(base, context), plan_cost(head, context))

    def of_change(self, type_: str) -> tuple[str, str] | None:
        """What a change of a resource of ``type_`` moves, before and after (None: nothing)."""
        return change_cost(type_, self.before, self.after)

    def summary(self) -> str:
        """``monthly cost: $83.95 → $167.90`` (the totals, unpriced parts marked)."""
        return f"monthly cost: {total(self.before)} → {total(self.after)}"

    def rows(self) -> list[tuple[str, str, str]]:
        """(part, before, after) for every part either side has, in the model's order."""
        labels = list(
            dict.fromkeys([line.label for line in (*self.before.lines, *self.after.lines)])
        )
        rows = []
        for label in labels:
            old = [line for line in self.before.lines if line.label == label]
            new = [line for line in self.after.lines if line.label == label]
            rows.append(
                (
                    label,
                    money(old[0].low, old[0].high) if old else "-",
                    money(new[0].low, new[0].high) if new else "-",
                )
            )
        return rows
