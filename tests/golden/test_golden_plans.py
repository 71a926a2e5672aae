"""The plans of the shipped stacks, recorded before the component was split, guard that refactor.

``plan-<stack>.json`` is ``skdeploy plan --stack <stack> --json`` as it was before
``SklearnEndpoint`` became a tree of child components; ``plan-<variation>.json`` is the plan of a
stack with the optional parts the shipped stacks leave out (:data:`VARIATIONS`), recorded with
:func:`record` from the commit before the split (6b1d5f0)::

    git worktree add --detach /tmp/old 6b1d5f0
    PYTHONPATH=/tmp/old:. .venv/bin/python -c \
        "from tests.golden.test_golden_plans import record; record('prod-full')"

Today's plan, diffed against it with the project's own diff, may only add the new ``skdeploy:``
components and move AWS resources under them (each through an alias, with no change): a real
``pulumi up`` of a deployed stack then creates, deletes, replaces and updates nothing in AWS.

The artifact's sha256 is in the plan (S3 key, ModelDataUrl, tags, outputs) and changes whenever
the shipped handler code does, which is not this guard's business: the golden plan's sha is
replaced by the current artifact's, and the names the mocks derive from a Model's or an
EndpointConfiguration's inputs (a hash of them) are carried over only when those inputs are then
identical.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import pytest

from skdeploy.core.artifact import build_for_settings
from skdeploy.core.settings import load_stack_settings, read_stack_config
from skdeploy.tooling.mockrun import REPLACED_ON_ANY_CHANGE
from skdeploy.tooling.plan import Plan, PlanDiff, build_plan, diff_plans, plan_from_json
from tests.support import REPO, STACKS

GOLDEN = Path(__file__).resolve().parent
KEY = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
#: Name → (stack, config values changed): the optional parts no shipped stack has.
VARIATIONS: dict[str, tuple[str, dict[str, object]]] = {
    "prod-full": (
        "prod",
        {
            "skdeploy:api": {"throttle": {"rate": 50, "burst": 100}},
            "skdeploy:kmsKeyArn": KEY,
            "skdeploy:vpc": {"subnetIds": ["subnet-1", "subnet-2"], "securityGroupIds": ["sg-1"]},
            "skdeploy:networkIsolation": False,
        },
    ),
    "staging-variants": (
        "staging",
        {
            "skdeploy:variants": [
                {"name": "champion", "weight": 9},
                {"name": "challenger", "weight": 1, "instanceType": "ml.c5.large"},
            ],
            "skdeploy:shadow": {"name": "shadow", "instanceCount": 1},
        },
    ),
}
CASES = sorted([*STACKS, *VARIATIONS])


def stack_of(case: str) -> str:
    """The stack a shipped stack or a variation plans."""
    return VARIATIONS[case][0] if case in VARIATIONS else case


def plan_now(case: str) -> Plan:
    """The plan of a shipped stack (its stack file) or of a variation, by this checkout's code."""
    if case not in VARIATIONS:
        return build_plan(REPO, case)
    stack, changed = VARIATIONS[case]
    return build_plan(REPO, stack, {**read_stack_config(REPO, stack), **changed})


def record(case: str) -> None:
    """Write ``plan-<case>.json`` with the code on the path (see the module docstring)."""
    (GOLDEN / f"plan-{case}.json").write_text(plan_now(case).dumps(), encoding="utf-8")


#: Inputs of a Model feed its configuration's name: carry names over in that order.
HASH_NAMED_ORDER = (
    "aws:sagemaker/model:Model",
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
)


@cache
def current_plan(case: str) -> Plan:
    """Today's plan of a case (built once per test session)."""
    return plan_now(case)


def current_sha256(stack: str) -> str:
    """The artifact's sha256 as the deploy workflow computes it (see test_workflows.py)."""
    return build_for_settings(load_stack_settings(REPO, stack)).sha256


def _hashed_name(text: str, logical: str) -> str | None:
    """The physical name ``<logical>-<7 hex>`` the mocks gave a resource, as a plan shows it."""
    found = set(re.findall(rf"(?<![\w-]){re.escape(logical)}-[0-9a-f]{{7}}(?![\w-])", text))
    assert len(found) <= 1, f"{logical}: several physical names {sorted(found)}"
    return found.pop() if found else None


def normalised_golden(case: str, current: Plan, sha256: str) -> Plan:
    """The golden plan as it reads with today's artifact (see the module docstring)."""
    text = (GOLDEN / f"plan-{case}.json").read_text(encoding="utf-8")
    golden_sha = json.loads(text)["outputs"]["artifactSha256"]
    text = text.replace(golden_sha, sha256)
    current_text = current.dumps()
    for type_ in HASH_NAMED_ORDER:
        assert type_ in REPLACED_ON_ANY_CHANGE
        golden = plan_from_json(json.loads(text), f"golden {case}")
        for resource in (r for r in golden.resources if r.type == type_):
            now = [r for r in current.resources if r.type == type_ and r.name == resource.name]
            if len(now) != 1 or dict(now[0].inputs) != dict(resource.inputs):
                continue  # a real change: the diff shows it
            old, new = _hashed_name(text, resource.name), _hashed_name(current_text, resource.name)
            if old and new:
                text = text.replace(old, new)
    return plan_from_json(json.loads(text), f"golden {case}")


def unexpected_changes(diff: PlanDiff) -> list[str]:
    """Every change but a new ``skdeploy:`` component or a move with no change."""
    found = []
    for change in diff.resources:
        if change.action == "add" and change.resource.type.startswith("skdeploy:"):
            continue
        moved_only = change.action == "move" and not change.changes and not change.option_changes
        if moved_only:
            continue
        found.append(f"{change.label} {change.resource.type} {change.resource.urn}")
    return found


@pytest.mark.parametrize("case", CASES)
def test_a_stack_plans_as_before_the_split(case: str) -> None:
    """Against its golden plan, a stack only gains skdeploy components; outputs are equal."""
    current = current_plan(case)
    sha256 = current_sha256(stack_of(case))
    assert current.outputs["artifactSha256"] == sha256
    golden = normalised_golden(case, current, sha256)
    diff = diff_plans(golden, current)
    assert unexpected_changes(diff) == []
    assert diff.outputs == ()
    assert dict(golden.outputs) == dict(current.outputs)


def test_every_shipped_stack_has_a_golden_plan() -> None:
    """A new stack file needs its golden plan recorded, or this guard would skip it."""
    assert sorted(p.stem.removeprefix("plan-") for p in GOLDEN.glob("plan-*.json")) == CASES
