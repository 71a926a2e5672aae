"""The monthly cost in every plan: priced from the table in the repo, offline (issue 17, part 2).

Every expected figure is computed here from the shipped price table, never written down, so the
tests hold when a price is updated; each difference is the table's own difference.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from skdeploy.core.cost import (
    PRICES_FILE,
    CostInputs,
    InstanceVariant,
    PriceTable,
    PriceTableError,
    Traffic,
    load_prices,
    monthly_cost,
    price_table_from_json,
)
from skdeploy.tooling import cli
from skdeploy.tooling.plan import build_plan, diff_plans, render_diff_markdown, render_diff_text
from skdeploy.tooling.plan.cost import CONFIG_TYPE, CostContext, DiffCost, money, prices_report
from tests.support import copy_project

TABLE = load_prices()
CONTEXT = CostContext(TABLE, Traffic())


def hourly(instance_type: str) -> float:
    """The table's figure for an instance type, whichever region it is given for."""
    found = TABLE.lookup(f"sagemaker.instance.{instance_type}", "eu-west-1")
    assert found is not None
    assert found.price.value is not None
    return found.price.value


def rate(key: str) -> float:
    found = TABLE.lookup(key, "us-east-1")
    assert found is not None
    assert found.price.value is not None
    return found.price.value


def set_stack_value(project: Path, stack: str, key: str, value: object) -> None:
    """Edit one ``config:`` value of the copy's stack file, as a pull request would."""
    path = project / "stacks" / f"Pulumi.{stack}.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["config"][key] = value
    path.write_text(yaml.safe_dump(data), encoding="utf-8")


def stack_value(project: Path, stack: str, key: str) -> Any:
    path = project / "stacks" / f"Pulumi.{stack}.yaml"
    return yaml.safe_load(path.read_text(encoding="utf-8"))["config"][key]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A throwaway copy of the project."""
    return copy_project(tmp_path / "project")


def diff_cost(project: Path, stack: str, key: str, value: object) -> DiffCost:
    """The cost before and after a pull request that sets ``key`` to ``value``."""
    base = build_plan(project, stack)
    set_stack_value(project, stack, key, value)
    return DiffCost.of(base, build_plan(project, stack, previous=base), CONTEXT)


def serverless_cost(memory_mb: int, traffic: Traffic) -> float:
    gb_seconds = traffic.requests_per_month * traffic.duration_ms / 1000 * memory_mb / 1024
    return gb_seconds * rate("sagemaker.serverless.gb_second")


def expected_figure(project: Path, stack: str) -> str:
    """The compute line each demo stack's plan must print, computed from the table."""
    hours = TABLE.hours_per_month
    if stack == "dev":
        memory = stack_value(project, "dev", "skdeploy:serverless")["memoryMb"]
        return money(serverless_cost(memory, Traffic()), serverless_cost(memory, Traffic()))
    if stack == "staging":
        count = stack_value(project, stack, "skdeploy:instanceCount")
        price = hourly(stack_value(project, stack, "skdeploy:instanceType"))
        return money(count * price * hours, count * price * hours)
    scaling = stack_value(project, stack, "skdeploy:autoscaling")
    price = hourly(stack_value(project, stack, "skdeploy:instanceType"))
    return money(scaling["min"] * price * hours, scaling["max"] * price * hours)


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_each_demo_stack_s_plan_prints_its_monthly_cost(
    project: Path, stack: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`skdeploy plan` of every demo stack ends with its monthly cost, at the table's prices."""
    code = cli.main(["plan", "--stack", stack, "--project-dir", str(project)])
    out = capsys.readouterr().out
    assert code == cli.EXIT_OK
    cost = out[out.index(f"monthly cost of stack {stack}") :]
    assert f"variant AllTraffic{' (serverless)' if stack == 'dev' else ''}: " in cost
    assert expected_figure(project, stack) in cost
    assert "traffic assumed: 100,000 requests/month" in cost


def test_an_instance_type_change_moves_the_cost_by_the_table_s_difference(project: Path) -> None:
    """ml.m5.large → ml.m5.xlarge on staging: + (new - old hourly price) x hours a month."""
    old_type = stack_value(project, "staging", "skdeploy:instanceType")
    cost = diff_cost(project, "staging", "skdeploy:instanceType", "ml.m5.xlarge")
    expected = (hourly("ml.m5.xlarge") - hourly(old_type)) * TABLE.hours_per_month
    assert cost.after.low - cost.before.low == pytest.approx(expected)
    assert cost.after.high - cost.before.high == pytest.approx(expected)
    assert expected != 0


def test_an_instance_count_change_moves_the_cost_by_the_count_times_the_price(
    project: Path,
) -> None:
    """instanceCount 1 → 3 on staging: + 2 x hourly price x hours a month, shown per change."""
    cost = diff_cost(project, "staging", "skdeploy:instanceCount", 3)
    price = hourly(stack_value(project, "staging", "skdeploy:instanceType"))
    assert cost.after.low - cost.before.low == pytest.approx(2 * price * TABLE.hours_per_month)
    hours = TABLE.hours_per_month
    assert cost.of_change(CONFIG_TYPE) == (
        money(price * hours, price * hours) + " + 1 unpriced",
        money(3 * price * hours, 3 * price * hours) + " + 1 unpriced",
    )


def test_a_serverless_memory_change_moves_the_cost_by_the_gb_seconds_price(
    project: Path,
) -> None:
    """memoryMb 2048 → 4096 on dev: + the assumed GB-seconds of 2 GB more x the table's price."""
    serverless = dict(stack_value(project, "dev", "skdeploy:serverless"))
    old = serverless["memoryMb"]
    serverless["memoryMb"] = 4096
    cost = diff_cost(project, "dev", "skdeploy:serverless", serverless)
    expected = serverless_cost(4096, Traffic()) - serverless_cost(old, Traffic())
    assert cost.after.low - cost.before.low == pytest.approx(expected)
    assert expected > 0


def test_an_autoscaling_maximum_change_moves_only_the_high_end(project: Path) -> None:
    """prod max 6 → 8: the low end (min instances) stays, the high end grows by 2 instances."""
    scaling = dict(stack_value(project, "prod", "skdeploy:autoscaling"))
    scaling["max"] = scaling["max"] + 2
    cost = diff_cost(project, "prod", "skdeploy:autoscaling", scaling)
    price = hourly(stack_value(project, "prod", "skdeploy:instanceType"))
    assert cost.after.low == pytest.approx(cost.before.low)
    assert cost.after.high - cost.before.high == pytest.approx(2 * price * TABLE.hours_per_month)


def test_the_diff_text_and_the_pr_comment_show_the_cost_before_and_after(project: Path) -> None:
    """The terminal diff and the markdown show the stack's and the changed resource's cost."""
    base = build_plan(project, "staging")
    set_stack_value(project, "staging", "skdeploy:instanceCount", 2)
    head = build_plan(project, "staging", previous=base)
    diff, cost = diff_plans(base, head), DiffCost.of(base, head, CONTEXT)
    one = money(*(hourly("ml.m5.large") * TABLE.hours_per_month,) * 2)
    two = money(*(2 * hourly("ml.m5.large") * TABLE.hours_per_month,) * 2)
    text = render_diff_text(diff, "base.json", cost)
    assert f"      monthly cost: {one} + 1 unpriced → {two} + 1 unpriced" in text
    assert f"monthly cost: {one} + 2 unpriced → {two} + 2 unpriced" in text
    markdown = render_diff_markdown(diff, "title", cost)
    assert f"| variant AllTraffic | {one} | {two} |" in markdown
    assert f"| {one} + 1 unpriced | {two} + 1 unpriced |" in markdown
    assert "monthly cost" not in render_diff_text(diff, "base.json")


def test_the_price_table_s_age_is_reported_against_an_injected_today() -> None:
    """The report says how many days old the oldest figure is, on a fixed "today"."""
    today = TABLE.oldest + datetime.timedelta(days=42)
    report = prices_report(TABLE, today)
    assert f"oldest from {TABLE.oldest.isoformat()} (42 days old on {today.isoformat()})" in report
    assert TABLE.age_days(today) == 42
    for price in TABLE.prices.values():
        assert f"{price.key} [{price.region}, {price.date.isoformat()}]" in report
        assert price.source in report


def test_skdeploy_plan_prices_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    """`skdeploy plan --prices` needs no stack: it prints the table and its age, exit 0."""
    assert cli.main(["plan", "--prices"]) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert out.startswith(f"Price table: {len(TABLE.prices)} prices, oldest from ")
    assert "days old on" in out


def test_every_price_says_where_it_comes_from_and_unsourced_ones_say_so() -> None:
    """Each figure has a region, a source and a date; a null figure's source says not found."""
    data = json.loads(PRICES_FILE.read_text(encoding="utf-8"))
    for item in data["prices"]:
        assert item["region"]
        assert item["date"]
        assert item["source"].startswith(("AWS:", "third-party", "not found"))
        assert (item["value"] is None) == item["source"].startswith("not found")


def small_table(value: float | None, region: str = "us-east-1") -> PriceTable:
    return price_table_from_json(
        {
            "hours_per_month": 730,
            "prices": [
                {
                    "key": "sagemaker.instance.ml.m5.large",
                    "region": region,
                    "unit": "instance-hour",
                    "value": value,
                    "source": "test",
                    "date": "2026-01-01",
                }
            ],
        }
    )


def test_an_unsourced_price_is_shown_unpriced_never_as_zero() -> None:
    """A null figure: the line is unpriced and the total says a part is left out."""
    inputs = CostInputs("us-east-1", instances=(InstanceVariant("a", "ml.m5.large", 1, 1),))
    cost = monthly_cost(inputs, small_table(None))
    (line,) = cost.lines
    assert not line.priced
    assert not cost.complete
    assert money(line.low, line.high) == "unpriced"


def test_another_region_s_figure_stands_in_and_the_line_says_so() -> None:
    """eu-west-1 without its own figure: priced at us-east-1's, and the line names it."""
    inputs = CostInputs("eu-west-1", instances=(InstanceVariant("a", "ml.m5.large", 2, 2),))
    (line,) = monthly_cost(inputs, small_table(0.5)).lines
    assert line.low == pytest.approx(2 * 0.5 * 730)
    assert "us-east-1 price, no eu-west-1 figure" in line.detail
    (exact,) = monthly_cost(inputs, small_table(0.5, "eu-west-1")).lines
    assert "no eu-west-1 figure" not in exact.detail


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"value": -1}, "must not be negative"),
        ({"value": "1"}, "must be a number or null"),
        ({"source": ""}, "source must be a non-empty string"),
        ({"date": "yesterday"}, "must be a date"),
    ],
)
def test_a_malformed_price_is_refused_by_name(change: dict[str, Any], message: str) -> None:
    """A figure without a source, a date or a proper value is refused, naming the field."""
    item = {
        "key": "k",
        "region": "us-east-1",
        "unit": "u",
        "value": 1,
        "source": "s",
        "date": "2026-01-01",
        **change,
    }
    with pytest.raises(PriceTableError, match=message):
        price_table_from_json({"hours_per_month": 730, "prices": [item]})
