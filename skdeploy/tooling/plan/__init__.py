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

The package: :mod:`~.model` (the plan document), :mod:`~.values` (leaf-by-leaf differences),
:mod:`~.diff` (resource by resource), :mod:`~.cost` (a plan's monthly cost, from
:mod:`skdeploy.core.cost`), :mod:`~.render` (text and markdown), :mod:`~.command`
(``register``, the argparse wiring).
"""

from skdeploy.tooling.plan.command import register
from skdeploy.tooling.plan.cost import CostContext, DiffCost, cost_inputs, plan_cost, prices_report
from skdeploy.tooling.plan.diff import (
    ACTIONS,
    ENDPOINT_TYPE,
    READ_TYPES,
    Action,
    PlanDiff,
    ResourceChange,
    diff_plans,
)
from skdeploy.tooling.plan.model import (
    PLAN_VERSION,
    Plan,
    PlanFileError,
    PlannedResource,
    build_plan,
    load_plan,
    plan_from_json,
)
from skdeploy.tooling.plan.render import (
    render_diff_markdown,
    render_diff_text,
    render_plan_markdown,
    render_plan_text,
)
from skdeploy.tooling.plan.values import ABSENT, Change, leaves, show, value_changes

__all__ = [
    "ABSENT",
    "ACTIONS",
    "ENDPOINT_TYPE",
    "PLAN_VERSION",
    "READ_TYPES",
    "Action",
    "Change",
    "CostContext",
    "DiffCost",
    "Plan",
    "PlanDiff",
    "PlanFileError",
    "PlannedResource",
    "ResourceChange",
    "build_plan",
    "cost_inputs",
    "diff_plans",
    "leaves",
    "load_plan",
    "plan_cost",
    "plan_from_json",
    "prices_report",
    "register",
    "render_diff_markdown",
    "render_diff_text",
    "render_plan_markdown",
    "render_plan_text",
    "show",
    "value_changes",
]
