"""Asynchronous inference (the ``async`` key): settings, program, IAM and botocore validation.

The program runs under Pulumi mocks (:mod:`skdeploy.tooling.mockrun`); its declarations are
turned into the API requests the provider would send and validated by botocore's own
``ParamValidator`` against the services' models.
"""

from __future__ import annotations

import json
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
from skdeploy.tooling.mockrun import ProgramRun, run_program
from tests import aws_requests
from tests.support import REPO, copy_project

OUTPUT = "s3://results-bucket/async/out"
FAILURE = "s3://results-bucket/async/failed"
DONE = "arn:aws:sns:eu-west-1:123456789012:done"
FAILED = "arn:aws:sns:eu-west-1:123456789012:failed"
ASYNC = {
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


def test_async_with_serverless_is_refused_by_name() -> None:
    """SageMaker does not combine them: the problem names ``async`` and serverless."""
    with pytest.raises(SettingsError) as raised:
        _settings(**{"async": ASYNC, "serverless": {}})
    assert "async" in str(raised.value)
    assert "cannot be combined with serverless" in str(raised.value)


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ({"failurePath": FAILURE}, "async.outputPath"),
        ({"outputPath": "results-bucket/out"}, "async.outputPath"),
        ({"outputPath": OUTPUT, "successTopicArn": "done"}, "async.successTopicArn"),
        ({"outputPath": OUTPUT, "maxConcurrentInvocationsPerInstance": 0}, "async."),
        ({"outputPath": OUTPUT, "scaleToZero": True}, "async.scaleToZero"),
        ({"outputPath": OUTPUT, "queue": 1}, "async.queue"),
    ],
    ids=[
        "no-output",
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
    """Least privilege: s3:PutObject on the two prefixes, sns:Publish on the two topics."""
    statements = _role_statements(_run(tmp_path, "staging"))
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
    assert not {"WriteAsyncResults", "PublishAsyncNotices"} & set(_role_statements(run))


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
