"""``skdeploy plan``: the real program under mocks, planned, diffed and rendered, offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from skdeploy.tooling import cli
from skdeploy.tooling.mockrun import run_program
from skdeploy.tooling.plan import (
    PLAN_VERSION,
    Plan,
    PlanDiff,
    PlannedResource,
    build_plan,
    diff_plans,
    plan_from_json,
    render_diff_markdown,
    value_changes,
)
from tests.support import REPO, STACKS, copy_project

MODEL = "aws:sagemaker/model:Model"
CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
OBJECT = "aws:s3/bucketObjectv2:BucketObjectv2"
STACK = "staging"


def actions(diff: PlanDiff) -> dict[str, str]:
    """Resource type → action, for the types this project declares once."""
    return {change.resource.type: change.action for change in diff.resources}


def change_of(diff: PlanDiff, type_: str) -> list[str]:
    """The rendered detail lines of the one change to ``type_``."""
    (change,) = [c for c in diff.resources if c.resource.type == type_]
    return change.detail_lines()


def set_stack_value(project: Path, stack: str, key: str, value: object) -> None:
    """Edit one ``config:`` value of the copy's stack file, as a pull request would."""
    path = project / "stacks" / f"Pulumi.{stack}.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["config"][key] = value
    path.write_text(yaml.safe_dump(data), encoding="utf-8")


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``skdeploy ARGV`` in this process: exit code, stdout, stderr."""
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A throwaway copy of the project (its build/ folder inside the copy)."""
    return copy_project(tmp_path / "project")


def test_identical_inputs_give_an_empty_diff(project: Path) -> None:
    """Planning the same project twice: no resource and no output changes."""
    diff = diff_plans(build_plan(project, STACK), build_plan(project, STACK))
    assert diff.empty
    assert diff.resources == ()
    assert diff.unchanged > 10
    assert diff.summary() == "+0 to add, ~0 to update, ±0 to replace, -0 to delete"


def test_a_new_model_replaces_model_configuration_and_object_and_updates_the_endpoint(
    project: Path,
) -> None:
    """New model bytes: Model, configuration and artifact object replaced; Endpoint updated."""
    base = build_plan(project, STACK)
    with (project / "model" / "model.joblib").open("ab") as handle:
        handle.write(b"\n# a new model\n")
    diff = diff_plans(base, build_plan(project, STACK, previous=base))
    found = actions(diff)
    assert found[MODEL] == "replace"
    assert found[CONFIG] == "replace"
    assert found[OBJECT] == "replace"
    assert found[ENDPOINT] == "update"
    assert diff.count("add") == diff.count("delete") == 0
    by_type = {c.resource.type: c for c in diff.resources}
    assert by_type[OBJECT].replaced_because == ("key",)
    assert by_type[MODEL].replaced_because == ("primaryContainer",)
    assert by_type[CONFIG].replaced_because == ("productionVariants",)
    assert by_type[ENDPOINT].changed_inputs == ("endpointConfigName", "tags")
    old_model = base.outputs["modelName"]
    assert any(
        line.startswith(f'productionVariants[0].modelName: "{old_model}" → ')
        for line in change_of(diff, CONFIG)
    )


def test_an_instance_count_change_replaces_only_the_configuration(project: Path) -> None:
    """instanceCount 1 → 3: configuration replaced, Model untouched, Endpoint updated in place."""
    base = build_plan(project, STACK)
    set_stack_value(project, STACK, "skdeploy:instanceCount", 3)
    diff = diff_plans(base, build_plan(project, STACK, previous=base))
    assert actions(diff) == {CONFIG: "replace", ENDPOINT: "update"}
    assert change_of(diff, CONFIG) == ["productionVariants[0].initialInstanceCount: 1 → 3"]
    assert [line.split(":")[0] for line in change_of(diff, ENDPOINT)] == ["endpointConfigName"]


def test_a_tag_change_updates_in_place_and_replaces_nothing(project: Path) -> None:
    """A new stack tag: every tagged resource updated in place, even the immutable Model."""
    base = build_plan(project, STACK)
    stack_file = project / "stacks" / f"Pulumi.{STACK}.yaml"
    tags = yaml.safe_load(stack_file.read_text(encoding="utf-8"))["config"]["skdeploy:tags"]
    set_stack_value(project, STACK, "skdeploy:tags", {**tags, "team": "fraud"})
    diff = diff_plans(base, build_plan(project, STACK, previous=base))
    assert diff.count("replace") == diff.count("add") == diff.count("delete") == 0
    assert actions(diff)[MODEL] == actions(diff)[CONFIG] == actions(diff)[ENDPOINT] == "update"
    assert change_of(diff, MODEL) == ['tags.team: (absent) → "fraud"']


def test_traffic_shifting_settings_update_the_endpoint_in_place(project: Path) -> None:
    """A new canary size changes deploymentConfig but not its ForceNew part: an update."""
    base = build_plan(project, "prod")
    set_stack_value(
        project, "prod", "skdeploy:deployment", {"strategy": "canary", "canaryPercent": 10}
    )
    diff = diff_plans(base, build_plan(project, "prod", previous=base))
    assert actions(diff)[ENDPOINT] == "update"
    assert any(
        line.startswith("deploymentConfig.blueGreenUpdatePolicy.trafficRoutingConfiguration")
        for line in change_of(diff, ENDPOINT)
    )


def test_dropping_auto_rollback_replaces_the_endpoint(project: Path) -> None:
    """No deployment settings: autoRollbackConfiguration (ForceNew) goes away, a replacement."""
    base = build_plan(project, "prod")
    path = project / "stacks" / "Pulumi.prod.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    del data["config"]["skdeploy:deployment"]
    # A production stack without deployment guardrails must say so (the settings' prod rule).
    data["config"]["skdeploy:productionOverrides"] = ["deployment"]
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    diff = diff_plans(base, build_plan(project, "prod", previous=base))
    (endpoint,) = [c for c in diff.resources if c.resource.type == ENDPOINT]
    assert endpoint.action == "replace"
    assert endpoint.replaced_because == ("deploymentConfig.autoRollbackConfiguration",)
    assert diff.replaces(ENDPOINT) == [endpoint]


def test_the_json_plan_has_a_version_and_round_trips(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """plan --json to a file, then plan --against that file: exit 0 and "no changes"."""
    args = ("plan", "--stack", STACK, "--project-dir", str(project))
    code, out, _ = run_cli(capsys, *args, "--json")
    assert code == cli.EXIT_OK
    document = json.loads(out)
    assert document["version"] == PLAN_VERSION
    assert document["stack"] == STACK
    urns = [r["urn"] for r in document["resources"]]
    assert urns == sorted(urns)
    endpoint = next(r for r in document["resources"] if r["type"] == ENDPOINT)
    assert set(endpoint) == {"urn", "type", "name", "parent", "inputs", "options"}
    assert {"protect", "retainOnDelete", "dependsOn"} <= set(endpoint["options"])
    assert document["outputs"]["endpointName"] == "skdeploy-staging"
    base = tmp_path / "base.json"
    base.write_text(out, encoding="utf-8")
    code, out, _ = run_cli(capsys, *args, "--against", str(base))
    assert code == cli.EXIT_OK
    assert "no changes" in out
    code, out, _ = run_cli(capsys, *args, "--against", str(base), "--json")
    assert json.loads(out)["resources"] == []


def test_the_markdown_diff_has_the_summary_line_and_a_table(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--markdown: the +/~/±/- summary, a table row "update" for the Endpoint, details."""
    args = ("plan", "--stack", STACK, "--project-dir", str(project))
    base = tmp_path / "base.json"
    base.write_text(run_cli(capsys, *args, "--json")[1], encoding="utf-8")
    with (project / "model" / "model.joblib").open("ab") as handle:
        handle.write(b"\n# a new model\n")
    code, out, _ = run_cli(capsys, *args, "--against", str(base), "--markdown")
    assert code == cli.EXIT_OK
    assert "+0 to add, ~4 to update, ±3 to replace, -0 to delete" in out  # not the role policy
    assert "| Action | Resource | Type | Changed inputs |" in out
    assert "| ~ update | skdeploy-staging-endpoint | Endpoint | endpointConfigName, tags |" in out
    assert "| ± replace | skdeploy-staging-model | Model | **primaryContainer**, tags |" in out
    assert "<details>" in out
    assert "</details>" in out


def test_the_markdown_plan_without_a_base_lists_every_resource_as_added(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--markdown alone: every declared resource appears as added, with its inputs."""
    code, out, _ = run_cli(
        capsys, "plan", "--stack", STACK, "--project-dir", str(project), "--markdown"
    )
    plan = build_plan(project, STACK)
    managed = [r for r in plan.resources if r.type != "pulumi:pulumi:StackReference"]
    assert code == cli.EXIT_OK
    assert f"+{len(managed)} to add, ~0 to update, ±0 to replace, -0 to delete" in out
    assert out.count("| + add |") == len(managed)


def test_table_cells_escape_pipes_and_html() -> None:
    """A name with | or < cannot break the markdown table or open an HTML tag."""
    resource = PlannedResource("urn:x", "aws:x/y:Y", "a|b<c>", "", {"k": 1})
    changed = PlannedResource("urn:x", "aws:x/y:Y", "a|b<c>", "", {"k": 2})
    old, new = Plan("s", (resource,)), Plan("s", (changed,))
    out = render_diff_markdown(diff_plans(old, new), "title")
    assert "| ~ update | a\\|b&lt;c&gt; | Y | k |" in out


def test_a_base_plan_of_another_version_is_refused(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A base plan with "version": 2 is not diffed: exit 2 and a message naming the versions."""
    args = ("plan", "--stack", STACK, "--project-dir", str(project))
    document = json.loads(run_cli(capsys, *args, "--json")[1])
    document["version"] = PLAN_VERSION + 1
    base = tmp_path / "base.json"
    base.write_text(json.dumps(document), encoding="utf-8")
    code, out, err = run_cli(capsys, *args, "--against", str(base))
    assert code == cli.EXIT_CANNOT_RUN
    assert out == ""
    assert f"version {PLAN_VERSION + 1}" in err
    assert f"reads version {PLAN_VERSION}" in err


@pytest.mark.parametrize(
    ("content", "reason"),
    [(None, "cannot read"), ("{not json", "is not JSON"), ("[]", "not a JSON object")],
)
def test_an_unreadable_base_plan_cannot_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, reason: str
) -> None:
    """A missing, non-JSON or non-plan base file: exit 2 with the reason, before any run."""
    base = tmp_path / "base.json"
    if content is not None:
        base.write_text(content, encoding="utf-8")
    code, _, err = run_cli(
        capsys, "plan", "--stack", STACK, "--project-dir", str(REPO), "--against", str(base)
    )
    assert code == cli.EXIT_CANNOT_RUN
    assert reason in err


def test_bad_settings_cannot_run(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An invalid stack file: exit 2 and the settings error, no plan printed."""
    set_stack_value(project, STACK, "skdeploy:instanceType", "large")
    code, out, err = run_cli(capsys, "plan", "--stack", STACK, "--project-dir", str(project))
    assert code == cli.EXIT_CANNOT_RUN
    assert out == ""
    assert "instanceType" in err


def serverless_to_instances(project: Path, *, allow_replacement: bool) -> None:
    """Turn the dev stack (serverless) into an instance endpoint, as a pull request would."""
    path = project / "stacks" / "Pulumi.dev.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    del data["config"]["skdeploy:serverless"]
    data["config"]["skdeploy:instanceType"] = "ml.m5.large"
    data["config"]["skdeploy:allowEndpointReplacement"] = allow_replacement
    path.write_text(yaml.safe_dump(data), encoding="utf-8")


def test_fail_on_replace_exits_1_when_the_endpoint_would_be_replaced(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Serverless → instances with the opt-in: Endpoint replaced, deleted first; exit 1."""
    args = ("plan", "--stack", "dev", "--project-dir", str(project))
    base = tmp_path / "base.json"
    base.write_text(run_cli(capsys, *args, "--json")[1], encoding="utf-8")
    assert run_cli(capsys, *args, "--against", str(base), "--fail-on-replace")[0] == cli.EXIT_OK
    serverless_to_instances(project, allow_replacement=True)
    code, out, err = run_cli(capsys, *args, "--against", str(base), "--fail-on-replace")
    assert code == cli.EXIT_FAILED
    assert (
        "± replace (delete first) aws:sagemaker/endpoint:Endpoint  skdeploy-dev-endpoint  "
        "(replaced because replacementTrigger changed)"
    ) in out
    assert "endpoint would be replaced" in err
    assert run_cli(capsys, *args, "--against", str(base))[0] == cli.EXIT_OK


def test_a_renamed_endpoint_is_deleted_and_fails_on_replace(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A new endpointName renames every URN: all deleted and added; --fail-on-replace exits 1."""
    args = ("plan", "--stack", STACK, "--project-dir", str(project))
    base = tmp_path / "base.json"
    base.write_text(run_cli(capsys, *args, "--json")[1], encoding="utf-8")
    set_stack_value(project, STACK, "skdeploy:endpointName", "skdeploy-staging-2")
    code, out, _ = run_cli(capsys, *args, "--against", str(base), "--fail-on-replace", "--json")
    diff = json.loads(out)
    assert code == cli.EXIT_FAILED
    assert diff["summary"]["delete"] == diff["summary"]["add"] > 10
    assert {r["action"] for r in diff["resources"] if r["type"] == ENDPOINT} == {"add", "delete"}


def test_the_head_plan_reads_the_base_outputs_as_the_stack_s_previous_ones(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Serverless → instances without the opt-in: the program refuses, as a preview would."""
    args = ("plan", "--stack", "dev", "--project-dir", str(project))
    base = tmp_path / "base.json"
    base.write_text(run_cli(capsys, *args, "--json")[1], encoding="utf-8")
    serverless_to_instances(project, allow_replacement=False)
    code, out, err = run_cli(capsys, *args, "--against", str(base))
    assert code == cli.EXIT_FAILED
    assert out == ""
    assert "allowEndpointReplacement" in err
    assert run_cli(capsys, *args)[0] == cli.EXIT_OK


@pytest.mark.parametrize("stack", STACKS)
def test_the_plan_holds_no_absolute_path_of_this_machine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], stack: str
) -> None:
    """The JSON plan names no path of the checkout or the build folder, for every stack."""
    project = copy_project(tmp_path / "project")
    code, out, _ = run_cli(
        capsys, "plan", "--stack", stack, "--project-dir", str(project), "--json"
    )
    assert code == cli.EXIT_OK
    assert str(tmp_path) not in out
    assert str(REPO) not in out
    assert '"fileAsset": "model.tar.gz"' in out


def test_plans_of_two_checkouts_are_identical(tmp_path: Path) -> None:
    """The same commit in two folders plans the same URNs, names and inputs."""
    first = build_plan(copy_project(tmp_path / "one"), STACK)
    second = build_plan(copy_project(tmp_path / "two"), STACK)
    assert first.dumps() == second.dumps()


def test_nested_changes_are_dotted_paths_and_long_values_are_summarised() -> None:
    """Dict and list changes become dotted paths; long values show as (changed)."""
    old = {"variants": [{"count": 1, "url": "s3://b/" + "a" * 100}], "gone": True}
    new = {"variants": [{"count": 3, "url": "s3://b/" + "b" * 100}], "added": "x"}
    rendered = [c.render() for c in value_changes(old, new)]
    assert rendered == [
        'added: (absent) → "x"',
        "gone: true → (absent)",
        "variants[0].count: 1 → 3",
        "variants[0].url: (changed)",
    ]


def test_json_policy_strings_are_diffed_by_statement() -> None:
    """An IAM policy held as JSON text is compared as a structure, not as one long string."""
    old = {"policy": json.dumps({"Statement": [{"Action": ["s3:GetObject"]}]})}
    new = {"policy": json.dumps({"Statement": [{"Action": ["s3:PutObject"]}]})}
    assert [c.render() for c in value_changes(old, new)] == [
        'policy.Statement[0].Action[0]: "s3:GetObject" → "s3:PutObject"'
    ]
    same = {"policy": json.dumps({"Statement": []}, indent=2)}
    assert value_changes({"policy": json.dumps({"Statement": []})}, same) == []


#: A program that declares a bucket, under a component when BOX is set (aliased if ALIAS is).
MOVING_PROGRAM = """
import os
import pulumi
import pulumi_aws as aws

parent = None
if os.environ.get("BOX"):
    parent = pulumi.ComponentResource("skdeploy:test:Box", "box")
aliases = [pulumi.Alias(parent=pulumi.ROOT_STACK_RESOURCE)] if os.environ.get("ALIAS") else []
aws.s3.Bucket(
    "data",
    force_destroy=bool(os.environ.get("CHANGED")),
    opts=pulumi.ResourceOptions(parent=parent, aliases=aliases),
)
"""


def moving_plan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, box: bool, alias: bool, changed: bool
) -> Plan:
    """The plan of :data:`MOVING_PROGRAM`, the bucket at the top or under a component."""
    program = tmp_path / "moving.py"
    program.write_text(MOVING_PROGRAM, encoding="utf-8")
    for name, on in (("BOX", box), ("ALIAS", alias), ("CHANGED", changed)):
        monkeypatch.setenv(name, "1" if on else "")
    run = run_program(tmp_path, STACK, {"aws:region": "eu-west-1"}, program=program)
    resources = tuple(
        PlannedResource(r.urn, r.type, r.name, r.parent, r.inputs, aliases=r.aliases)
        for r in run.resources
    )
    return Plan(STACK, resources)


def test_an_alias_is_recorded_as_the_full_old_urn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Alias(parent=the stack) on a bucket under a component: the old top-level URN."""
    before = moving_plan(tmp_path, monkeypatch, box=False, alias=False, changed=False)
    after = moving_plan(tmp_path, monkeypatch, box=True, alias=True, changed=False)
    (old,) = [r for r in before.resources if r.type == "aws:s3/bucket:Bucket"]
    (new,) = [r for r in after.resources if r.type == "aws:s3/bucket:Bucket"]
    assert new.urn != old.urn
    assert old.urn in new.aliases
    document = json.loads(after.dumps())
    assert [old.urn in r["options"]["aliases"] for r in document["resources"]].count(True) == 1


def test_a_moved_resource_with_an_alias_is_moved_with_no_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under a new parent with an alias: "move", no delete and no create of the bucket."""
    before = moving_plan(tmp_path, monkeypatch, box=False, alias=False, changed=False)
    after = moving_plan(tmp_path, monkeypatch, box=True, alias=True, changed=False)
    diff = diff_plans(before, after)
    assert actions(diff) == {"skdeploy:test:Box": "add", "aws:s3/bucket:Bucket": "move"}
    (moved,) = [c for c in diff.resources if c.action == "move"]
    assert moved.changes == ()
    assert moved.moved_from == before.resources[0].urn
    assert diff.summary() == "+1 to add, ~0 to update, ±0 to replace, →1 to move, -0 to delete"


def test_a_moved_resource_keeps_its_input_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Moved and changed: an update of the moved bucket, with the changed input listed."""
    before = moving_plan(tmp_path, monkeypatch, box=False, alias=False, changed=False)
    after = moving_plan(tmp_path, monkeypatch, box=True, alias=True, changed=True)
    diff = diff_plans(before, after)
    (bucket,) = [c for c in diff.resources if c.resource.type == "aws:s3/bucket:Bucket"]
    assert bucket.action == "update"
    assert bucket.changed_inputs == ("forceDestroy",)
    assert bucket.detail_lines()[0] == f"moved from {bucket.moved_from}"


def test_a_moved_resource_without_an_alias_is_deleted_and_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under a new parent with no alias: the engine sees a new bucket and an old one to delete."""
    before = moving_plan(tmp_path, monkeypatch, box=False, alias=False, changed=False)
    after = moving_plan(tmp_path, monkeypatch, box=True, alias=False, changed=False)
    diff = diff_plans(before, after)
    buckets = sorted(c.action for c in diff.resources if c.resource.type == "aws:s3/bucket:Bucket")
    assert buckets == ["add", "delete"]


def test_a_plan_without_aliases_still_loads(project: Path) -> None:
    """A plan document written before aliases were recorded reads as one with none."""
    document = json.loads(build_plan(project, STACK).dumps())
    for resource in document["resources"]:
        del resource["options"]["aliases"]
    plan = plan_from_json(document, "old.json")
    assert all(r.aliases == () for r in plan.resources)
