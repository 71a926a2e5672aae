"""A production stack's safeguards: ``protect``, ``deployment`` and ``autoscaling``, or an
override in ``productionOverrides`` that waives each one knowingly."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from skdeploy.core.constants import CONFIG_NAMESPACE
from skdeploy.core.settings._coerce import as_bool, as_object
from skdeploy.core.settings.errors import Problems
from skdeploy.core.settings.values import StackValues

#: What a production stack must have, by the name ``productionOverrides`` waives it with, and
#: what goes wrong without it.
PRODUCTION_REQUIREMENTS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "protect": f"{CONFIG_NAMESPACE}:protect is not true (`pulumi destroy` would delete the "
        "endpoint and its bucket)",
        "deployment": f"{CONFIG_NAMESPACE}:deployment is not set (an update is not blue/green and "
        "does not roll back on errors or latency)",
        "autoscaling": f"{CONFIG_NAMESPACE}:autoscaling is not set (capacity does not follow load "
        "and a lost instance is not replaced by scaling)",
    }
)
#: Values of the ``environment`` tag that make a stack a production one, whatever its name.
PRODUCTION_ENVIRONMENTS: Final = ("prod", "production")


def production_reason(stack: str, tags: Mapping[str, str]) -> str | None:
    """Why ``stack`` is a production stack, or None.

    A stack named ``prod...`` (the policy pack's prod rule uses the same test) or tagged
    ``environment: prod``/``production`` (any case) is one.
    """
    if stack.lower().startswith("prod"):
        return f"stack name {stack!r}"
    for key, value in tags.items():
        if key.lower() == "environment" and value.lower() in PRODUCTION_ENVIRONMENTS:
            return f"tag {key}: {value}"
    return None


def parse_overrides(problems: Problems, value: object) -> frozenset[str]:
    """``productionOverrides``: distinct names of :data:`PRODUCTION_REQUIREMENTS`."""
    value = as_object(value)
    if value is None:
        return frozenset()
    known = ", ".join(PRODUCTION_REQUIREMENTS)
    if not isinstance(value, list):
        problems.add(
            "productionOverrides", value, f"must be a list of requirements to waive: {known}"
        )
        return frozenset()
    overrides: set[str] = set()
    for item in value:
        if not isinstance(item, str) or item not in PRODUCTION_REQUIREMENTS:
            problems.add(
                "productionOverrides", value, f"unknown requirement {item!r}; known: {known}"
            )
        elif item in overrides:
            problems.add("productionOverrides", value, f"lists {item} twice")
        else:
            overrides.add(item)
    return frozenset(overrides)


def check_safeguards(
    problems: Problems,
    values: StackValues,
    *,
    stack: str,
    tags: Mapping[str, str],
    overrides: frozenset[str],
) -> None:
    """A production stack has protect, deployment guardrails and autoscaling, or waives them.

    Presence is judged on the raw values: a present but invalid ``deployment`` is reported by
    its own rule, not again here as missing.
    """
    reason = production_reason(stack, tags)
    if reason is None:
        return
    present = {
        "protect": as_bool(values.get("protect", False)) is True,
        "deployment": values.has("deployment"),
        "autoscaling": values.has("autoscaling"),
    }
    missing = [r for r in PRODUCTION_REQUIREMENTS if not present[r] and r not in overrides]
    if not missing:
        return
    lacks = "; ".join(PRODUCTION_REQUIREMENTS[r] for r in missing)
    problems.items.append(
        f"stack {stack!r} is a production stack ({reason}) and lacks {len(missing)} "
        f"safeguard(s): {lacks}. Set them, or waive each one knowingly by listing it in "
        f"{CONFIG_NAMESPACE}:productionOverrides (here: [{', '.join(missing)}])"
    )
