"""Rollback to an earlier artifact, the smoke record it relies on, and the history of a bucket.

The plan is the real program under Pulumi's mocks (``skdeploy plan``); every S3 and STS call is a
real boto3 client's against moto, which validates each request with botocore's models.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from skdeploy.core.constants import (
    OUTPUT_ARTIFACT_SHA256,
    OUTPUT_ENDPOINT_CONFIG_NAME,
    OUTPUT_ENDPOINT_NAME,
    OUTPUT_MODEL_DATA_URL,
    OUTPUT_REGION,
    artifact_key,
)
from skdeploy.core.preflight import PreflightError
from skdeploy.core.rollback import (
    DEPLOYED_BY_TAG,
    PIN_KEY,
    ROLLBACK_TAG,
    SMOKE_AT_TAG,
    SMOKE_TAG,
    pin_stack_text,
    rollback_label,
    smoke_tags,
)
from skdeploy.core.settings import SettingsError, load_stack_settings, read_stack_config
from skdeploy.infra import store
from skdeploy.tooling import history, rollback, smoke
from skdeploy.tooling.cli import build_parser
from skdeploy.tooling.plan import (
    build_plan,
    diff_plans,
    render_diff_markdown,
    render_diff_text,
)
from skdeploy.tooling.smoke.record import record_smoke
from skdeploy.tooling.smoke.target import Target
from tests import test_smoke
from tests.support import REPO, copy_project
from tests.test_smoke import ModelServer, create_endpoint, runtime_client, smoke_args
from tests.test_workflows import allows, load_deploy_policy, load_policy

REGION = "us-east-1"
BUCKET = "skdeploy-prod-artifacts-abc1234"
PASSED = "a" * 64
FAILED = "b" * 64
UNTESTED = "c" * 64
MISSING = "d" * 64
#: The stand-in endpoint of the smoke tests (a fixture, used by name).
model_server = test_smoke.model_server
STACK_TAG = {"Key": "skdeploy:stack", "Value": "prod"}
WHEN = datetime(2026, 12, 1, 9, 30, tzinfo=timezone.utc)


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A moto bucket holding a passed, a failed and an untested artifact (and a non-artifact)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket=BUCKET)
        recorded = {
            PASSED: smoke_tags(True, WHEN, "arn:aws:iam::123456789012:role/deployer"),
            FAILED: smoke_tags(False, WHEN, None),
            UNTESTED: {},
        }
        for sha, tags in recorded.items():
            client.put_object(Bucket=BUCKET, Key=artifact_key(sha), Body=b"tar")
            tag_set = [STACK_TAG, *({"Key": k, "Value": v} for k, v in tags.items())]
            client.put_object_tagging(
                Bucket=BUCKET, Key=artifact_key(sha), Tagging={"TagSet": tag_set}
            )
        client.put_object(Bucket=BUCKET, Key="datacapture/x.jsonl", Body=b"{}")
        yield client


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def test_a_rollback_plans_a_change_of_the_model_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pinned to an earlier sha, the plan replaces the Model (tagged as a rollback) and what must
    follow its new name, builds and uploads nothing, and changes nothing else but tags."""
    base = build_plan(REPO, "prod")

    def no_build(*args: object, **kwargs: object) -> None:
        raise AssertionError("a pinned stack must not build an artifact")

    monkeypatch.setattr(store, "build_for_settings", no_build)
    monkeypatch.setattr(store, "build_artifact", no_build)
    pinned = {**read_stack_config(REPO, "prod"), PIN_KEY: PASSED}
    head = build_plan(REPO, "prod", pinned, previous=base)
    diff = diff_plans(base, head)
    by_action: dict[str, list[str]] = {}
    for change in diff.resources:
        by_action.setdefault(change.action, []).append(change.resource.type)
        if change.resource.type not in (MODEL, CONFIG, ENDPOINT):
            assert change.action == "delete" or change.changed_inputs == ("tags",), change
    assert "add" not in by_action
    assert sorted(by_action["replace"]) == sorted([MODEL, CONFIG])
    assert ENDPOINT in by_action["update"]
    # The object the stack uploaded leaves the state only: it stays in S3 for the next rollback.
    assert by_action["delete"] == [OBJECT]
    (deleted,) = [c for c in diff.resources if c.action == "delete"]
    assert deleted.resource.retain_on_delete
    (model,) = [r for r in head.resources if r.type == MODEL]
    assert model.inputs["tags"][ROLLBACK_TAG] == rollback_label(PASSED)
    assert model.inputs["primaryContainer"]["modelDataUrl"].endswith(artifact_key(PASSED))
    assert head.outputs[OUTPUT_ARTIFACT_SHA256] == PASSED
    assert not [r for r in head.resources if r.type == OBJECT]
    # The diff says it first, in the terminal and in the pull request's comment.
    said = f"This is a {rollback_label(PASSED)}."
    assert render_diff_text(diff, "base").splitlines()[1] == said
    assert f"**{said}**" in render_diff_markdown(diff, "prod")
    again = build_plan(REPO, "prod", pinned, previous=head)
    assert "This is a" not in render_diff_text(diff_plans(head, again), "pinned")


MODEL = "aws:sagemaker/model:Model"
CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
OBJECT = "aws:s3/bucketObjectv2:BucketObjectv2"


def test_a_pin_is_not_blocked_by_the_projects_current_model(tmp_path: Path) -> None:
    """A model file the checks refuse blocks the plan, but not a rollback to a tested artifact."""
    project = copy_project(tmp_path / "project")
    (project / "model" / "model.joblib").write_bytes(b"not a pickle\n" * 10)
    config = read_stack_config(project, "prod")
    with pytest.raises(PreflightError, match=r"model\.joblib"):
        build_plan(project, "prod", config)
    head = build_plan(project, "prod", {**config, PIN_KEY: PASSED})
    (model,) = [r for r in head.resources if r.type == MODEL]
    assert model.inputs["primaryContainer"]["modelDataUrl"].endswith(artifact_key(PASSED))


def test_an_unpinned_stack_is_not_labelled_a_rollback() -> None:
    """Without the pin the Model carries no rollback tag and the artifact is uploaded."""
    plan = build_plan(REPO, "prod")
    (model,) = [r for r in plan.resources if r.type == MODEL]
    assert ROLLBACK_TAG not in model.inputs["tags"]
    assert [r for r in plan.resources if r.type == OBJECT]


def test_rollback_to_a_passed_artifact_pins_the_stack_file(
    s3: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A sha in the bucket that passed its smoke test is written into the stack file."""
    project = copy_project(tmp_path / "p")
    before = (project / "stacks" / "Pulumi.prod.yaml").read_text()
    args = parse(
        "rollback", "-s", "prod", "--project-dir", str(project), "--bucket", BUCKET, "--to", PASSED
    )
    assert rollback.execute(args, s3=s3) == 0
    after = (project / "stacks" / "Pulumi.prod.yaml").read_text()
    assert load_stack_settings(project, "prod").artifact_sha256 == PASSED
    assert after.replace(f"  {PIN_KEY}: {PASSED}\n", "") == before  # comments and all kept
    assert PASSED in capsys.readouterr().out


@pytest.mark.parametrize(
    ("sha", "reason"),
    [
        (MISSING, "is not in bucket"),
        (FAILED, "failed its smoke test at 2026-12-01T09:30:00Z"),
        (UNTESTED, "was never smoke-tested"),
    ],
)
def test_rollback_to_a_missing_failed_or_untested_artifact_is_refused_by_name(
    s3: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], sha: str, reason: str
) -> None:
    """Exit 1, naming the sha and why, and the stack file is left as it was."""
    project = copy_project(tmp_path / "p")
    before = (project / "stacks" / "Pulumi.prod.yaml").read_text()
    args = parse(
        "rollback", "-s", "prod", "--project-dir", str(project), "--bucket", BUCKET, "--to", sha
    )
    assert rollback.execute(args, s3=s3) == 1
    err = capsys.readouterr().err
    assert f"artifact {sha} " in err
    assert reason in err
    assert (project / "stacks" / "Pulumi.prod.yaml").read_text() == before


def test_rollback_finds_the_bucket_in_the_stack_outputs(s3: Any, tmp_path: Path) -> None:
    """``--outputs``: the bucket is the one ``modelDataUrl`` points into."""
    project = copy_project(tmp_path / "p")
    outputs = tmp_path / "outputs.json"
    outputs.write_text(
        f'{{"endpointName": "skdeploy-prod", "{OUTPUT_MODEL_DATA_URL}": '
        f'"s3://{BUCKET}/{artifact_key(UNTESTED)}", "{OUTPUT_ARTIFACT_SHA256}": "{UNTESTED}"}}'
    )
    args = parse(
        "rollback", "-s", "prod", "--project-dir", str(project), "--outputs", str(outputs),
        "--to", PASSED,
    )  # fmt: skip
    assert rollback.execute(args, s3=s3) == 0


def test_a_bad_sha_is_refused_by_the_command_line() -> None:
    """``--to`` must be a sha256."""
    with pytest.raises(SystemExit):
        parse("rollback", "-s", "prod", "--to", "HEAD~1")


def test_history_lists_what_was_served_with_its_smoke_record(
    s3: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every artifact (and nothing else in the bucket), its result, when, by whom, and which one
    the stack serves."""
    outputs = tmp_path / "outputs.json"
    outputs.write_text(
        f'{{"endpointName": "skdeploy-prod", "{OUTPUT_MODEL_DATA_URL}": '
        f'"s3://{BUCKET}/{artifact_key(PASSED)}", "{OUTPUT_ARTIFACT_SHA256}": "{PASSED}"}}'
    )
    args = parse("history", "-s", "prod", "--project-dir", str(REPO), "--outputs", str(outputs))
    assert history.execute(args, s3=s3) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4
    rows = {line.split()[2]: line for line in lines[1:]}
    assert rows.keys() == {PASSED, FAILED, UNTESTED}
    assert "passed" in rows[PASSED]
    assert "role/deployer" in rows[PASSED]
    assert rows[PASSED].endswith("(serving)")
    assert "failed" in rows[FAILED]
    assert "2026-12-01T09:30:00Z" in rows[FAILED]
    assert "untested" in rows[UNTESTED]
    assert "unknown" in rows[UNTESTED]


def test_history_as_json(s3: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """``--json``: one object per artifact."""
    args = parse("history", "-s", "prod", "--project-dir", str(REPO), "--bucket", BUCKET, "--json")
    assert history.execute(args, s3=s3) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["sha256"]: r["smoke"] for r in rows} == {
        PASSED: "passed",
        FAILED: "failed",
        UNTESTED: "untested",
    }


def test_history_of_a_missing_bucket_cannot_run(
    s3: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exit 2 with S3's reason."""
    args = parse("history", "-s", "prod", "--project-dir", str(REPO), "--bucket", "skdeploy-none")
    assert history.execute(args, s3=s3) == 2
    assert "NoSuchBucket" in capsys.readouterr().err


def test_smoke_of_a_deployed_stack_records_its_result_on_the_served_artifact(s3: Any) -> None:
    """The smoke result, time and caller are merged into the object's tags (its own kept); the
    next rollback to it is then allowed."""
    target = Target(
        "skdeploy-prod",
        REGION,
        "stack outputs",
        model_data_url=f"s3://{BUCKET}/{artifact_key(UNTESTED)}",
    )
    assert record_smoke(target, passed=True) == UNTESTED
    tags = {
        t["Key"]: t["Value"]
        for t in s3.get_object_tagging(Bucket=BUCKET, Key=artifact_key(UNTESTED))["TagSet"]
    }
    assert tags[SMOKE_TAG] == "passed"
    assert tags[STACK_TAG["Key"]] == STACK_TAG["Value"]
    assert tags[DEPLOYED_BY_TAG].startswith("arn:aws:")
    assert tags[SMOKE_AT_TAG].endswith("Z")
    assert record_smoke(target, passed=False) == UNTESTED
    answer = s3.get_object_tagging(Bucket=BUCKET, Key=artifact_key(UNTESTED))
    assert {"Key": SMOKE_TAG, "Value": "failed"} in answer["TagSet"]


def test_a_local_smoke_test_records_nothing(s3: Any) -> None:
    """A local endpoint says nothing about which deployed artifact answered."""
    local = Target("x", REGION, "local", endpoint_url="http://127.0.0.1:1")
    assert record_smoke(local, passed=True) is None
    named = Target("skdeploy-prod", REGION, "--endpoint-name")
    assert record_smoke(named, passed=True) is None


def test_the_pin_is_refused_with_variants() -> None:
    """A pin names one artifact: a stack of several models cannot take it."""
    from skdeploy.core.settings.parse import parse_settings

    raw = {
        "artifactSha256": PASSED,
        "variants": [{"name": "a", "weight": 1}, {"name": "b", "weight": 1}],
    }
    with pytest.raises(SettingsError, match="pins the single model"):
        parse_settings(raw, stack="dev", region=REGION, project_dir=REPO)
    with pytest.raises(SettingsError, match="must be a sha256"):
        parse_settings({"artifactSha256": "abc"}, stack="dev", region=REGION, project_dir=REPO)


def test_the_pin_replaces_an_earlier_pin_and_keeps_the_rest() -> None:
    """Rolling back twice leaves one pin line."""
    text = "# prod\nconfig:\n  aws:region: us-east-1\n"
    once = pin_stack_text(text, PASSED)
    assert once == f"# prod\nconfig:\n  {PIN_KEY}: {PASSED}\n  aws:region: us-east-1\n"
    assert pin_stack_text(once, FAILED) == once.replace(PASSED, FAILED)


def test_the_deploy_role_may_record_smoke_results_on_artifacts_only() -> None:
    """The deploy workflow's role tags artifact objects and lists the bucket, nothing wider; the
    preview role reads the history but cannot write a smoke record."""
    deploy = [load_deploy_policy()]
    obj = f"arn:aws:s3:::{BUCKET}/{artifact_key(PASSED)}"
    for action in ("s3:GetObject", "s3:GetObjectTagging", "s3:PutObjectTagging"):
        assert allows(deploy, action, obj)
        assert not allows(deploy, action, "arn:aws:s3:::payroll/models/x")
    assert allows(deploy, "s3:ListBucket", f"arn:aws:s3:::{BUCKET}")
    preview = [load_policy(REPO / "deploy" / "preview-role-policy.json")]
    assert allows(preview, "s3:GetObjectTagging", obj)
    assert allows(preview, "s3:ListBucket", f"arn:aws:s3:::{BUCKET}")
    assert not allows(preview, "s3:PutObjectTagging", obj)


def test_skdeploy_smoke_of_a_deployed_stack_tags_the_artifact_it_served(
    s3: Any, model_server: ModelServer, tmp_path: Path
) -> None:
    """``skdeploy smoke --outputs``: a passing run leaves ``passed`` on the served artifact, and
    a rollback to it is then allowed."""
    sagemaker = boto3.client("sagemaker", region_name=REGION, config=smoke.CONTROL_CONFIG)
    config_name = create_endpoint(sagemaker, model_server.endpoint_name)
    outputs = tmp_path / "outputs.json"
    outputs.write_text(
        json.dumps(
            {
                OUTPUT_ENDPOINT_NAME: model_server.endpoint_name,
                OUTPUT_ENDPOINT_CONFIG_NAME: config_name,
                OUTPUT_REGION: REGION,
                OUTPUT_MODEL_DATA_URL: f"s3://{BUCKET}/{artifact_key(UNTESTED)}",
            }
        )
    )
    clients = smoke.Clients(runtime=runtime_client(model_server.url), sagemaker=sagemaker)
    assert (
        smoke.execute(smoke_args("--outputs", str(outputs), "--calls", "1"), clients=clients) == 0
    )
    answer = s3.get_object_tagging(Bucket=BUCKET, Key=artifact_key(UNTESTED))
    assert {"Key": SMOKE_TAG, "Value": "passed"} in answer["TagSet"]
    project = copy_project(tmp_path / "p")
    args = parse(
        "rollback", "-s", "prod", "--project-dir", str(project), "--bucket", BUCKET, "--to",
        UNTESTED,
    )  # fmt: skip
    assert rollback.execute(args, s3=s3) == 0


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_no_lifecycle_rule_can_delete_an_artifact_history_lists(stack: str) -> None:
    """The bucket declares no lifecycle rule and the deploy role can neither set one nor delete
    an artifact: every artifact history lists stays available to a rollback. (A retention
    window setting is for the day a lifecycle rule is added; this fails that day.)"""
    plan = build_plan(REPO, stack)
    assert not [r for r in plan.resources if "lifecycle" in r.type.lower()]
    deploy = [load_deploy_policy()]
    assert not allows(deploy, "s3:PutLifecycleConfiguration", f"arn:aws:s3:::{BUCKET}")
    for action in ("s3:DeleteObject", "s3:DeleteObjectVersion"):
        assert not allows(deploy, action, f"arn:aws:s3:::{BUCKET}/{artifact_key(PASSED)}")
