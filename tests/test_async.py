"""Asynchronous inference (the ``async`` key): settings, program, IAM and botocore validation.

The program runs under Pulumi mocks (:mod:`skdeploy.tooling.mockrun`); its declarations are
turned into the API requests the provider would send and validated by botocore's own
``ParamValidator`` against the services' models.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.validate import ParamValidator

from skdeploy.core.settings import (
    AsyncInferenceSettings,
    SettingsError,
    parse_settings,
    read_stack_config,
)
from skdeploy.tooling import cli, smoke
from skdeploy.tooling.mockrun import ProgramRun, run_program
from tests import aws_requests
from tests.conftest import TEST_ENDPOINT_NAME, LocalEndpoint, make_project, running_serve
from tests.support import REPO, copy_project
from tests.test_policy import as_resources, violations_of

INPUT = "s3://requests-bucket/async/in"
OUTPUT = "s3://results-bucket/async/out"
FAILURE = "s3://results-bucket/async/failed"
DONE = "arn:aws:sns:eu-west-1:123456789012:done"
FAILED = "arn:aws:sns:eu-west-1:123456789012:failed"
ASYNC = {
    "inputPath": INPUT,
    "outputPath": OUTPUT,
    "failurePath": FAILURE,
    "successTopicArn": DONE,
    "errorTopicArn": FAILED,
    "maxConcurrentInvocationsPerInstance": 4,
}
CONFIG_TYPE = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
POLICY_TYPE = "aws:appautoscaling/policy:Policy"
TARGET_TYPE = "aws:appautoscaling/target:Target"


def _client_model(service: str) -> Any:
    return boto3.client(
        service, region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x"
    ).meta.service_model


def _valid(service: str, operation: str, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` as the provider sends them, asserted valid by botocore."""
    shape = _client_model(service).operation_model(operation).input_shape
    params = aws_requests.coerce(params, shape)
    report = ParamValidator().validate(params, shape)
    assert not report.has_errors(), f"{operation}: {report.generate_report()}"
    return params


def _settings(**keys: object) -> Any:
    return parse_settings(
        {"endpointName": "skdeploy-async", **keys},
        stack="dev",
        region="eu-west-1",
        project_dir=REPO,
    )


def _run(tmp_path: Path, stack: str, **asynchronous: object) -> ProgramRun:
    project = copy_project(tmp_path / "project")
    config = read_stack_config(project, stack)
    config["skdeploy:async"] = {**ASYNC, **asynchronous}
    return run_program(project, stack, config)


def _role_statements(run: ProgramRun) -> dict[str, dict[str, Any]]:
    document = json.loads(run.one("aws:iam/rolePolicy:RolePolicy").inputs["policy"])
    return {s["Sid"]: s for s in document["Statement"]}


# --- Settings -------------------------------------------------------------------------------------


def test_the_async_key_becomes_async_inference_settings() -> None:
    """Every member is read, and the write locations and topics are derived from them."""
    settings = _settings(**{"async": ASYNC})
    assert settings.async_inference == AsyncInferenceSettings(
        input_path=INPUT,
        output_path=OUTPUT,
        failure_path=FAILURE,
        success_topic_arn=DONE,
        error_topic_arn=FAILED,
        max_concurrent_invocations_per_instance=4,
    )
    assert settings.async_inference.write_locations == (
        ("results-bucket", "async/out"),
        ("results-bucket", "async/failed"),
    )
    assert settings.async_inference.topic_arns == (DONE, FAILED)
    assert settings.async_inference.read_location == ("requests-bucket", "async/in")


def test_async_with_serverless_is_refused_by_name() -> None:
    """SageMaker does not combine them: the problem names ``async`` and serverless."""
    with pytest.raises(SettingsError) as raised:
        _settings(**{"async": ASYNC, "serverless": {}})
    assert "async" in str(raised.value)
    assert "cannot be combined with serverless" in str(raised.value)


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ({"inputPath": INPUT, "failurePath": FAILURE}, "async.outputPath"),
        ({"outputPath": OUTPUT}, "async.inputPath"),
        ({"inputPath": INPUT, "outputPath": "results-bucket/out"}, "async.outputPath"),
        ({**ASYNC, "successTopicArn": "done"}, "async.successTopicArn"),
        ({**ASYNC, "maxConcurrentInvocationsPerInstance": 0}, "async."),
        ({**ASYNC, "scaleToZero": True}, "async.scaleToZero"),
        ({**ASYNC, "queue": 1}, "async.queue"),
    ],
    ids=[
        "no-output",
        "no-input",
        "not-s3-uri",
        "bad-topic",
        "zero-concurrency",
        "zero-no-autoscaling",
        "unknown",
    ],
)
def test_a_bad_async_map_is_refused_naming_the_member(value: dict[str, Any], named: str) -> None:
    """A missing output path, a malformed URI or topic, or scale-to-zero alone is refused."""
    with pytest.raises(SettingsError) as raised:
        _settings(**{"async": value})
    assert named in str(raised.value)


# --- Program, IAM, botocore -----------------------------------------------------------------------


def test_the_endpoint_configuration_gets_async_inference_config_that_botocore_accepts(
    tmp_path: Path,
) -> None:
    """CreateEndpointConfig carries AsyncInferenceConfig and passes botocore's validation."""
    run = _run(tmp_path, "staging")
    params = _valid(
        "sagemaker",
        "CreateEndpointConfig",
        aws_requests.create_endpoint_config(run.one(CONFIG_TYPE)),
    )
    assert params["AsyncInferenceConfig"] == {
        "OutputConfig": {
            "S3OutputPath": OUTPUT,
            "S3FailurePath": FAILURE,
            "NotificationConfig": {"SuccessTopic": DONE, "ErrorTopic": FAILED},
        },
        "ClientConfig": {"MaxConcurrentInvocationsPerInstance": 4},
    }


def test_the_role_may_write_exactly_the_result_prefixes_and_publish_exactly_the_topics(
    tmp_path: Path,
) -> None:
    """Least privilege: s3:GetObject on the input prefix, s3:PutObject on the two result
    prefixes, sns:Publish on the two topics."""
    statements = _role_statements(_run(tmp_path, "staging"))
    assert statements["ReadAsyncRequests"] == {
        "Sid": "ReadAsyncRequests",
        "Effect": "Allow",
        "Action": ["s3:GetObject"],
        "Resource": ["arn:aws:s3:::requests-bucket/async/in/*"],
    }
    assert statements["WriteAsyncResults"] == {
        "Sid": "WriteAsyncResults",
        "Effect": "Allow",
        "Action": ["s3:PutObject"],
        "Resource": [
            "arn:aws:s3:::results-bucket/async/failed/*",
            "arn:aws:s3:::results-bucket/async/out/*",
        ],
    }
    assert statements["PublishAsyncNotices"]["Action"] == ["sns:Publish"]
    assert statements["PublishAsyncNotices"]["Resource"] == [DONE, FAILED]


def test_a_stack_without_async_has_no_async_grants_or_config() -> None:
    """The committed stacks are unchanged: no async config, no S3 result or SNS grants."""
    run = run_program(REPO, "staging")
    assert "asyncInferenceConfig" not in run.one(CONFIG_TYPE).inputs
    async_sids = {"ReadAsyncRequests", "WriteAsyncResults", "PublishAsyncNotices"}
    assert not async_sids & set(_role_statements(run))


def test_without_topics_the_role_publishes_nothing(tmp_path: Path) -> None:
    """No topic, no sns:Publish statement (and no notification config)."""
    run = _run(tmp_path, "staging", successTopicArn=None, errorTopicArn=None)
    assert "PublishAsyncNotices" not in _role_statements(run)
    output = run.one(CONFIG_TYPE).inputs["asyncInferenceConfig"]["outputConfig"]
    assert "notificationConfig" not in output


def test_autoscaling_tracks_the_backlog_and_scales_from_zero(tmp_path: Path) -> None:
    """With autoscaling and scaleToZero: min 0, backlog tracking, a step policy on its alarm."""
    run = _run(tmp_path, "prod", scaleToZero=True, targetBacklogPerInstance=3)
    (target,) = run.by_type(TARGET_TYPE)
    assert target.inputs["minCapacity"] == 0
    policies = {p.inputs["policyType"]: p for p in run.by_type(POLICY_TYPE)}
    tracking = policies["TargetTrackingScaling"].inputs["targetTrackingScalingPolicyConfiguration"]
    assert tracking["targetValue"] == 3
    assert tracking["customizedMetricSpecification"]["metricName"] == (
        "ApproximateBacklogSizePerInstance"
    )
    assert "predefinedMetricSpecification" not in tracking
    alarms = [
        a
        for a in run.by_type("aws:cloudwatch/metricAlarm:MetricAlarm")
        if a.inputs["metricName"] == "HasBacklogWithoutCapacity"
    ]
    (alarm,) = alarms
    assert alarm.inputs["alarmActions"] == [policies["StepScaling"].outputs["arn"]]
    for policy in policies.values():
        params = {"PolicyName": policy.name, **aws_requests.body(policy)}
        for step in params.get("StepScalingPolicyConfiguration", {}).get("StepAdjustments", []):
            # The provider takes the bound as a string and sends it as the API's double.
            step["MetricIntervalLowerBound"] = float(step["MetricIntervalLowerBound"])
        _valid("application-autoscaling", "PutScalingPolicy", params)
    _valid("application-autoscaling", "RegisterScalableTarget", aws_requests.body(target))
    _valid(
        "cloudwatch",
        "PutMetricAlarm",
        {
            "AlarmName": alarm.name,
            **aws_requests.body(alarm),
            "Dimensions": [{"Name": k, "Value": v} for k, v in alarm.inputs["dimensions"].items()],
        },
    )


def test_without_scale_to_zero_the_minimum_stays_and_no_step_policy_is_declared(
    tmp_path: Path,
) -> None:
    """Backlog tracking alone keeps autoscaling's min and declares no scale-from-zero policy."""
    run = _run(tmp_path, "prod")
    (target,) = run.by_type(TARGET_TYPE)
    assert target.inputs["minCapacity"] == 2
    assert [p.inputs["policyType"] for p in run.by_type(POLICY_TYPE)] == ["TargetTrackingScaling"]


# --- Locally: InvokeEndpointAsync through boto3 against skdeploy serve --s3-dir ----------------

SAMPLES = json.loads((REPO / "model" / "samples.json").read_text())
LOCAL_ASYNC = {
    "inputPath": "s3://inputs/requests",
    "outputPath": "s3://results/async/out",
    "failurePath": "s3://results/async/failed",
}


@pytest.fixture(scope="module")
def async_endpoint(
    runtime_python: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LocalEndpoint, Path]]:
    """An async stack served with ``--s3-dir``: the endpoint and the folder standing for S3."""
    if sys.platform == "win32":
        pytest.skip("skdeploy serve needs Linux or macOS (gunicorn)")
    work = tmp_path_factory.mktemp("async-endpoint")
    project = make_project(work / "project", config={"skdeploy:async": LOCAL_ASYNC})
    s3_dir = work / "s3"
    (s3_dir / "inputs" / "requests").mkdir(parents=True)
    with running_serve(project, work / "logs", "--s3-dir", str(s3_dir)) as endpoint:
        yield endpoint, s3_dir


def _put(s3_dir: Path, key: str, body: bytes) -> str:
    """Write ``body`` as ``s3://inputs/<key>`` in the local S3 folder; its URI."""
    path = s3_dir / "inputs" / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    return f"s3://inputs/{key}"


def _object(s3_dir: Path, uri: str) -> bytes:
    """The local object behind an ``s3://`` URI."""
    return (s3_dir / uri.removeprefix("s3://")).read_bytes()


def test_a_local_async_round_trip_writes_the_predictions_at_the_output_location(
    async_endpoint: tuple[LocalEndpoint, Path],
) -> None:
    """invoke_endpoint_async answers 202 with InferenceId and OutputLocation; the output holds
    the recorded predictions."""
    endpoint, s3_dir = async_endpoint
    uri = _put(
        s3_dir, "requests/all.json", json.dumps({"instances": SAMPLES["instances"]}).encode()
    )
    answer = endpoint.client().invoke_endpoint_async(
        EndpointName=TEST_ENDPOINT_NAME,
        InputLocation=uri,
        ContentType="application/json",
        Accept="application/json",
    )
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 202
    inference_id = answer["InferenceId"]
    assert answer["OutputLocation"] == f"s3://results/async/out/{inference_id}.out"
    assert answer["FailureLocation"] == f"s3://results/async/failed/{inference_id}-error.out"
    predictions = json.loads(_object(s3_dir, answer["OutputLocation"]))["predictions"]
    assert predictions == pytest.approx(SAMPLES["predictions"], abs=SAMPLES["tolerance"])


def test_a_given_inference_id_names_the_output(
    async_endpoint: tuple[LocalEndpoint, Path],
) -> None:
    """The caller's InferenceId is answered back and names the output object."""
    endpoint, s3_dir = async_endpoint
    uri = _put(s3_dir, "requests/one.csv", b"1.0\n")
    answer = endpoint.client().invoke_endpoint_async(
        EndpointName=TEST_ENDPOINT_NAME,
        InputLocation=uri,
        ContentType="text/csv",
        InferenceId="abc",
    )
    assert answer["InferenceId"] == "abc"
    assert answer["OutputLocation"] == "s3://results/async/out/abc.out"
    assert _object(s3_dir, answer["OutputLocation"])


def test_a_request_the_model_refuses_is_written_to_the_failure_location(
    async_endpoint: tuple[LocalEndpoint, Path],
) -> None:
    """A container error is not an error of the call: its answer goes to FailureLocation."""
    endpoint, s3_dir = async_endpoint
    uri = _put(s3_dir, "requests/bad.csv", b"months,salary")
    answer = endpoint.client().invoke_endpoint_async(
        EndpointName=TEST_ENDPOINT_NAME, InputLocation=uri, ContentType="text/csv"
    )
    assert "error" in json.loads(_object(s3_dir, answer["FailureLocation"]))
    assert not (s3_dir / answer["OutputLocation"].removeprefix("s3://")).exists()


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("s3://inputs/requests/missing.json", "not found"),
        ("s3://inputs/../../outside.json", "does not name an object"),
        ("https://example.com/x.json", "is not an s3:// URI"),
        ("s3://inputs/elsewhere/x.json", "is not under the stack's async.inputPath"),
    ],
    ids=["missing", "escapes", "not-s3", "outside-input-path"],
)
def test_an_input_location_that_cannot_be_read_is_a_validation_error(
    async_endpoint: tuple[LocalEndpoint, Path], location: str, message: str
) -> None:
    """A missing object, a path out of the folder or another scheme is refused, saying which."""
    endpoint, _ = async_endpoint
    client = endpoint.client()
    with pytest.raises(client.exceptions.ValidationError) as raised:
        client.invoke_endpoint_async(EndpointName=TEST_ENDPOINT_NAME, InputLocation=location)
    assert message in raised.value.response["Error"]["Message"]


def test_an_endpoint_without_async_refuses_invoke_endpoint_async(
    local_endpoint: LocalEndpoint,
) -> None:
    """A stack without ``async`` answers ValidationError naming the missing setting."""
    client = local_endpoint.client()
    with pytest.raises(client.exceptions.ValidationError) as raised:
        client.invoke_endpoint_async(
            EndpointName=TEST_ENDPOINT_NAME, InputLocation="s3://inputs/x.json"
        )
    assert "not configured for asynchronous inference" in raised.value.response["Error"]["Message"]


# --- skdeploy smoke --async-s3-dir ----------------------------------------------------------------


def _smoke_async(
    endpoint: LocalEndpoint, s3_dir: Path, samples: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[int, dict[str, str]]:
    """Run the smoke test with the async check; its exit code and each check's verdict."""
    target = smoke.Target(
        endpoint.endpoint_name, endpoint.region, "test", endpoint_url=endpoint.url
    )
    code = smoke.smoke_and_report(
        target,
        [(None, samples)],
        calls=0,
        as_json=True,
        async_local=smoke.LocalAsync(s3_dir, LOCAL_ASYNC["inputPath"]),
    )
    report = json.loads(capsys.readouterr().out)
    return code, {c["name"]: c["status"] for c in report["checks"]}


def test_the_smoke_test_checks_the_predictions_through_invoke_endpoint_async(
    async_endpoint: tuple[LocalEndpoint, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """With --async-s3-dir the smoke test adds an ``async`` check, which passes here."""
    endpoint, s3_dir = async_endpoint
    code, checks = _smoke_async(endpoint, s3_dir, REPO / "model" / "samples.json", capsys)
    assert checks["async"] == "PASS"
    assert code == 0


def test_the_async_smoke_check_fails_on_wrong_predictions(
    async_endpoint: tuple[LocalEndpoint, Path],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    """Samples whose expected predictions are off fail the ``async`` check too."""
    endpoint, s3_dir = async_endpoint
    shifted = dict(SAMPLES, predictions=[p + 1000 for p in SAMPLES["predictions"]])
    samples = tmp_path / "samples.json"
    samples.write_text(json.dumps(shifted))
    code, checks = _smoke_async(endpoint, s3_dir, samples, capsys)
    assert checks["async"] == "FAIL"
    assert code == 1


def test_async_smoke_needs_a_local_endpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--async-s3-dir against AWS (no --endpoint-url) cannot run: exit 2, saying why."""
    code = cli.main(
        [
            "smoke",
            "--endpoint-name",
            "x",
            "--region",
            "eu-west-1",
            "--async-s3-dir",
            str(tmp_path),
            "--samples",
            str(REPO / "model" / "samples.json"),
        ]
    )
    assert code == 2
    assert "--async-s3-dir" in capsys.readouterr().err


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_an_async_stack_passes_every_policy_pack_rule(tmp_path: Path, stack: str) -> None:
    """The async grants, alarm and scaling policies break none of the policy pack's rules."""
    extra = {"scaleToZero": True} if stack == "prod" else {}
    run = _run(tmp_path, stack, **extra)
    assert violations_of(stack, as_resources(run)) == []
