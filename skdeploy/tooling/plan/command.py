"""``skdeploy plan``: the command line of the plan, its diff and their renderings."""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

from skdeploy.core.cost import PriceTableError, Traffic, load_prices
from skdeploy.core.preflight import PreflightError
from skdeploy.tooling import common
from skdeploy.tooling.plan.cost import CostContext, DiffCost, prices_report
from skdeploy.tooling.plan.diff import ENDPOINT_TYPE, diff_plans
from skdeploy.tooling.plan.model import PLAN_VERSION, Plan, PlanFileError, build_plan, load_plan
from skdeploy.tooling.plan.render import (
    render_diff_markdown,
    render_diff_text,
    render_plan_markdown,
    render_plan_text,
)


def _cost_context(args: argparse.Namespace) -> CostContext:
    """The shipped price table and the traffic the command line assumes."""
    traffic = Traffic(args.requests_per_month, args.duration_ms, args.payload_kb)
    return CostContext(load_prices(), traffic)


def _prices_command(today: datetime.date) -> int:
    try:
        sys.stdout.write(prices_report(load_prices(), today))
    except PriceTableError as exc:
        print(f"skdeploy: {exc}", file=sys.stderr)
        return common.EXIT_CANNOT_RUN
    return common.EXIT_OK


def _plan_command(args: argparse.Namespace) -> int:
    if args.prices:
        return _prices_command(datetime.datetime.now(datetime.timezone.utc).date())
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
    context = _cost_context(args)
    if base is None:
        if args.json:
            sys.stdout.write(plan.dumps())
        elif args.markdown:
            sys.stdout.write(render_plan_markdown(plan, context))
        else:
            sys.stdout.write(render_plan_text(plan, context))
        return common.EXIT_OK
    diff = diff_plans(base, plan)
    cost = DiffCost.of(base, plan, context)
    base_name = Path(args.against).name
    if args.json:
        sys.stdout.write(json.dumps(diff.to_json(), indent=2, sort_keys=True) + "\n")
    elif args.markdown:
        title = f"skdeploy plan: stack {plan.stack} against {base_name}"
        sys.stdout.write(render_diff_markdown(diff, title, cost))
    else:
        sys.stdout.write(render_diff_text(diff, base_name, cost))
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
    _add_cost_arguments(parser)
    parser.set_defaults(handler=_plan_command)


def _add_cost_arguments(parser: argparse.ArgumentParser) -> None:
    """The traffic assumption the monthly cost rests on, and ``--prices``."""
    default = Traffic()
    parser.add_argument(
        "--prices",
        action="store_true",
        help="print the price table (region, source and date of every figure) and how old it is",
    )
    parser.add_argument(
        "--requests-per-month",
        type=int,
        default=default.requests_per_month,
        metavar="N",
        help=f"traffic assumed for the monthly cost (default: {default.requests_per_month:,})",
    )
    parser.add_argument(
        "--duration-ms",
        type=float,
        default=default.duration_ms,
        metavar="MS",
        help=f"mean request duration assumed (default: {default.duration_ms:g})",
    )
    parser.add_argument(
        "--payload-kb",
        type=float,
        default=default.payload_kb,
        metavar="KB",
        help=f"mean request + response size assumed, for captured data (default: "
        f"{default.payload_kb:g})",
    )
