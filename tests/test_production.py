"""Production features: serverless dev, autoscaling, safe blue/green updates, capture, security."""

from __future__ import annotations

import importlib
import json
import keyword
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.validate import ParamValidator
from moto import mock_aws

from skdeploy.core.settings import SettingsError, load_stack_settings, read_stack_config
from skdeploy.infra.endpoint import EndpointReplacementRefused, SecondEndpointRefused, alarm_names
from skdeploy.infra.scaling import (
    SCALABLE_DIMENSION,
    ScalingTargetGuardProvider,
    deregister_scaling_target,
    scaling_resource_id,
)
from skdeploy.tooling.mockrun import ProgramRun, run_program
from tests import aws_requests
from tests.support import REPO, copy_project

CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
MODEL = "aws:sagemaker/model:Model"
TARGET = "aws:appautoscaling/target:Target"
POLICY = "aws:appautoscaling/policy:Policy"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
BUCKET = "aws:s3/bucket:Bucket"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
GUARD = "pulumi-python:dynamic:Resource"


@pytest.fixture(scope="module")
def stacks() -> dict[str, ProgramRun]:
    """The declarations of the three committed stacks."""
    return {stack: run_program(REPO, stack) for stack in ("dev", "staging", "prod")}


def statements(run: ProgramRun) -> dict[str, dict[str, Any]]:
    document = json.loads(run.one(ROLE_POLICY).inputs["policy"])
    return {s["Sid"]: s for s in document["Statement"]}


def variant(run: ProgramRun) -> dict[str, Any]:
    (only,) = run.one(CONFIG).inputs["productionVariants"]
    return only


def depends_on(run: ProgramRun, resource_type: str) -> set[str]:
    return {run.by_urn(u).type for u in run.one(resource_type).dependencies}


# --- Serverless dev ------------------------------------------------------------------------------


def test_dev_is_serverless_with_no_idle_instances(stacks: dict[str, ProgramRun]) -> None:
    """dev's variant is serverless (memory, concurrency) and declares no instances."""
    dev = variant(stacks["dev"])
    assert dev["serverlessConfig"] == {"memorySizeInMb": 2048, "maxConcurrency": 5}
    assert "instanceType" not in dev
    assert "initialInstanceCount" not in dev
    assert stacks["dev"].one(MODEL).inputs["enableNetworkIsolation"] is False
    assert not stacks["dev"].by_type(TARGET)
    assert stacks["dev"].exports["endpointKind"] == "serverless"


# --- Autoscaling ---------------------------------------------------------------------------------


def test_prod_scales_between_two_and_six_on_invocations(stacks: dict[str, ProgramRun]) -> None:
    """prod registers its variant with Application Auto Scaling and tracks invocations."""
    prod = stacks["prod"]
    target = prod.one(TARGET).inputs
    assert target["resourceId"] == scaling_resource_id("skdeploy-prod", "AllTraffic")
    assert target["scalableDimension"] == SCALABLE_DIMENSION
    assert target["serviceNamespace"] == "sagemaker"
    assert (target["minCapacity"], target["maxCapacity"]) == (2, 6)
    tracking = prod.one(POLICY).inputs["targetTrackingScalingPolicyConfiguration"]
    assert tracking["predefinedMetricSpecification"] == {
        "predefinedMetricType": "SageMakerVariantInvocationsPerInstance"
    }
    assert tracking["targetValue"] == 200
    assert (tracking["scaleInCooldown"], tracking["scaleOutCooldown"]) == (300, 60)
    assert variant(prod)["initialInstanceCount"] == 2


def test_autoscaling_is_ordered_after_the_endpoint(stacks: dict[str, ProgramRun]) -> None:
    """The scaling target waits for the endpoint, the policy for the target."""
    prod = stacks["prod"]
    assert ENDPOINT in depends_on(prod, TARGET)
    assert TARGET in depends_on(prod, POLICY)


def test_an_instance_type_change_deregisters_the_target_before_the_endpoint_update(
    stacks: dict[str, ProgramRun],
) -> None:
    """The guard precedes the Endpoint; a new type replaces target and policy, deleted first."""
    prod = stacks["prod"]
    assert GUARD in depends_on(prod, ENDPOINT)
    assert prod.one(GUARD).inputs["instance_type"] == "ml.c5.xlarge"
    for resource_type in (TARGET, POLICY):
        resource = prod.one(resource_type)
        assert resource.delete_before_replace is True
        assert resource.replacement_trigger == "ml.c5.xlarge"
    config = read_stack_config(REPO, "prod")
    config["skdeploy:instanceType"] = "ml.c5.2xlarge"
    changed = run_program(REPO, "prod", config)
    assert changed.one(TARGET).replacement_trigger == "ml.c5.2xlarge"
    assert changed.one(GUARD).inputs["instance_type"] == "ml.c5.2xlarge"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto with dummy credentials."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield


def test_the_guard_deregisters_the_scaling_target_on_a_type_change(aws: None) -> None:
    """Updating the guard with a new instance type removes the registered target (moto)."""
    client = boto3.client("application-autoscaling", region_name="eu-west-1")
    resource_id = scaling_resource_id("skdeploy-prod", "AllTraffic")
    client.register_scalable_target(
        ServiceNamespace="sagemaker",
        ResourceId=resource_id,
        ScalableDimension=SCALABLE_DIMENSION,
        MinCapacity=2,
        MaxCapacity=6,
    )
    provider = ScalingTargetGuardProvider()
    olds = {"region": "eu-west-1", "resource_id": resource_id, "instance_type": "ml.c5.xlarge"}
    provider.update("id", olds, {**olds, "instance_type": "ml.c5.xlarge"})
    assert client.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    provider.update("id", olds, {**olds, "instance_type": "ml.c5.2xlarge"})
    assert client.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"] == []
    assert deregister_scaling_target("eu-west-1", resource_id) is False


# --- Safe updates --------------------------------------------------------------------------------


def test_prod_updates_blue_green_by_canary_with_rollback_alarms(
    stacks: dict[str, ProgramRun],
) -> None:
    """prod shifts 25 % first and rolls back on its two alarms, watched per endpoint and variant."""
    prod = stacks["prod"]
    deployment = prod.one(ENDPOINT).inputs["deploymentConfig"]
    routing = deployment["blueGreenUpdatePolicy"]["trafficRoutingConfiguration"]
    assert routing == {
        "type": "CANARY",
        "waitIntervalInSeconds": 600,
        "canarySize": {"type": "CAPACITY_PERCENT", "value": 25},
    }
    rollback = deployment["autoRollbackConfiguration"]["alarms"]
    assert [a["alarmName"] for a in rollback] == alarm_names("skdeploy-prod")
    alarms = {a.inputs["name"]: a.inputs for a in prod.by_type(ALARM)}
    assert set(alarms) == set(alarm_names("skdeploy-prod"))
    for alarm in alarms.values():
        assert alarm["dimensions"] == {"EndpointName": "skdeploy-prod", "VariantName": "AllTraffic"}
        assert alarm["namespace"] == "AWS/SageMaker"
    assert alarms["skdeploy-prod-invocation-5xx-errors"]["threshold"] == 5
    assert alarms["skdeploy-prod-model-latency"]["threshold"] == 500_000  # microseconds
    assert ALARM in depends_on(prod, ENDPOINT)
    assert statements(prod)["ReadRollbackAlarms"] == {
        "Sid": "ReadRollbackAlarms",
        "Effect": "Allow",
        "Action": ["cloudwatch:DescribeAlarms"],
        "Resource": [
            f"arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{name}"
            for name in alarm_names("skdeploy-prod")
        ],
    }
    assert "ReadRollbackAlarms" not in statements(stacks["staging"])


ORDINARY_CHANGES: list[tuple[str, object]] = [
    ("skdeploy:instanceType", "ml.c5.2xlarge"),
    ("skdeploy:instanceCount", 3),
    ("skdeploy:autoscaling", {"min": 3, "max": 8}),
    ("skdeploy:dataCapture", {"samplingPercent": 50}),
    ("skdeploy:deployment", {"strategy": "canary", "canaryPercent": 10, "errorThreshold": 20}),
    ("skdeploy:deployment", {"strategy": "linear", "latencyThresholdMs": 900}),
    ("skdeploy:logRetentionDays", 90),
]


@pytest.mark.parametrize(("key", "value"), ORDINARY_CHANGES)
def test_no_ordinary_change_touches_a_field_that_replaces_the_endpoint(
    stacks: dict[str, ProgramRun], key: str, value: object
) -> None:
    """name and autoRollbackConfiguration (ForceNew in the provider) stay the same."""
    config = read_stack_config(REPO, "prod")
    config[key] = value
    before, after = stacks["prod"].one(ENDPOINT).inputs, run_program(REPO, "prod", config)
    changed = after.one(ENDPOINT).inputs
    assert changed["name"] == before["name"]
    assert (
        changed["deploymentConfig"]["autoRollbackConfiguration"]
        == before["deploymentConfig"]["autoRollbackConfiguration"]
    )


def test_switching_to_serverless_is_refused_without_the_opt_in(tmp_path: Path) -> None:
    """A stack that ran instances last time cannot silently become serverless."""
    with pytest.raises(EndpointReplacementRefused, match="allowEndpointReplacement"):
        run_program(REPO, "dev", previous_outputs={"endpointKind": "instances"})
    assert (
        run_program(REPO, "dev", previous_outputs={"endpointKind": "serverless"}).exports[
            "endpointKind"
        ]
        == "serverless"
    )


LIBRARY_PROGRAM = """
from pathlib import Path

from skdeploy.infra.endpoint import SklearnEndpoint
from skdeploy.infra.config import from_pulumi_config
from skdeploy.infra.program import export_outputs

settings = from_pulumi_config(Path({project!r}))
endpoint = SklearnEndpoint("mine", settings)  # a user's own program
"""


def test_the_component_exports_nothing_itself(tmp_path: Path) -> None:
    """Only the program exports stack outputs: a component alone leaves none."""
    program = tmp_path / "__main__.py"
    program.write_text(LIBRARY_PROGRAM.format(project=str(REPO)))
    assert run_program(REPO, "dev", program=program).exports == {}


def test_a_library_program_that_exports_the_outputs_keeps_the_kind_guard(
    tmp_path: Path,
) -> None:
    """Used as a library with export_outputs, endpointKind is there for the next update's guard."""
    program = tmp_path / "__main__.py"
    program.write_text(LIBRARY_PROGRAM.format(project=str(REPO)) + "export_outputs(endpoint)\n")
    run = run_program(REPO, "dev", program=program)
    assert run.exports["endpointKind"] == "serverless"
    with pytest.raises(EndpointReplacementRefused, match="allowEndpointReplacement"):
        run_program(
            REPO,
            "dev",
            program=program,
            previous_outputs=run_program(REPO, "staging", program=program).exports,
        )


def test_a_second_component_in_one_program_is_refused(tmp_path: Path) -> None:
    """Two SklearnEndpoints would share endpointKind (one guard): the second is refused."""
    program = tmp_path / "__main__.py"
    program.write_text(
        LIBRARY_PROGRAM.format(project=str(REPO)) + 'SklearnEndpoint("theirs", settings)\n'
    )
    with pytest.raises(SecondEndpointRefused, match="one SklearnEndpoint per stack: 'mine'"):
        run_program(REPO, "dev", program=program)
    assert run_program(REPO, "dev").exports["endpointKind"] == "serverless"  # next run is fine


def test_the_opt_in_replaces_the_endpoint_deleting_it_first() -> None:
    """With the opt-in, a kind switch replaces the endpoint, deleting it first (same name)."""
    config = read_stack_config(REPO, "dev")
    config["skdeploy:allowEndpointReplacement"] = True
    run = run_program(REPO, "dev", config, previous_outputs={"endpointKind": "instances"})
    endpoint = run.one(ENDPOINT)
    assert endpoint.replacement_trigger == "serverless"
    assert endpoint.delete_before_replace is True


# --- Data capture, logs, protection --------------------------------------------------------------


@pytest.mark.parametrize(("stack", "percent"), [("staging", 100), ("prod", 20)])
def test_capture_writes_exactly_where_the_role_may(
    stacks: dict[str, ProgramRun], stack: str, percent: int
) -> None:
    """Data capture goes to the artifact bucket's prefix, and the role may write only there."""
    run = stacks[stack]
    capture = run.one(CONFIG).inputs["dataCaptureConfig"]
    bucket = run.one(BUCKET).outputs["bucket"]
    assert capture["enableCapture"] is True
    assert capture["initialSamplingPercentage"] == percent
    assert capture["destinationS3Uri"] == f"s3://{bucket}/datacapture"
    assert [o["captureMode"] for o in capture["captureOptions"]] == ["Input", "Output"]
    assert statements(run)["WriteDataCapture"] == {
        "Sid": "WriteDataCapture",
        "Effect": "Allow",
        "Action": ["s3:PutObject"],
        "Resource": [f"arn:aws:s3:::{bucket}/datacapture/*"],
    }
    assert "WriteDataCapture" not in statements(stacks["dev"])


@pytest.mark.parametrize(("stack", "days"), [("dev", 7), ("staging", 30), ("prod", 365)])
def test_the_log_group_is_declared_with_its_retention(
    stacks: dict[str, ProgramRun], stack: str, days: int
) -> None:
    """/aws/sagemaker/Endpoints/<name> exists before the endpoint, with the stack's retention."""
    run = stacks[stack]
    logs = run.one(LOG_GROUP).inputs
    assert logs["name"] == f"/aws/sagemaker/Endpoints/skdeploy-{stack}"
    assert logs["retentionInDays"] == days
    assert LOG_GROUP in depends_on(run, ENDPOINT)


def test_prod_protects_its_endpoint_and_bucket(stacks: dict[str, ProgramRun]) -> None:
    """prod's endpoint, bucket and logs are protected and retained; dev's are not."""
    for resource_type in (ENDPOINT, BUCKET, LOG_GROUP):
        assert stacks["prod"].one(resource_type).protect is True
        assert stacks["prod"].one(resource_type).retain_on_delete is True
        assert stacks["dev"].one(resource_type).protect is False


def accepts_tags(type_token: str) -> bool:
    """Whether pulumi-aws gives this resource type a ``tags`` input."""
    package, module, name = type_token.split(":")
    if package != "aws":
        return False
    folder = module.split("/")[0]
    python_module = importlib.import_module(
        f"pulumi_aws.{folder}_" if keyword.iskeyword(folder) else f"pulumi_aws.{folder}"
    )
    return hasattr(getattr(python_module, f"{name}Args"), "tags")


def test_every_resource_carries_the_stack_tags(stacks: dict[str, ProgramRun]) -> None:
    """Tags with stack, project and artifact sha256 are on every resource that takes tags."""
    taggable = 0
    for run in stacks.values():
        for resource in run.resources:
            if resource.custom and accepts_tags(resource.type):
                taggable += 1
                assert "tags" in resource.inputs, f"{resource.type} {resource.name} has no tags"
                assert resource.inputs["tags"]["skdeploy:stack"] == run.stack
                assert (
                    resource.inputs["tags"]["skdeploy:artifact-sha256"]
                    == run.exports["artifactSha256"]
                )
    assert taggable >= 20  # buckets, roles, models, configurations, endpoints, logs, alarms...


SAGEMAKER_MODEL = boto3.client(
    "sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
).meta.service_model


def test_a_serverless_endpoint_configuration_carries_the_kms_key_too() -> None:
    """dev (serverless) with kmsKeyArn: the configuration names the key, and botocore accepts it."""
    key = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    config = read_stack_config(REPO, "dev")
    config["skdeploy:kmsKeyArn"] = key
    run = run_program(REPO, "dev", config)
    assert "serverlessConfig" in run.one(CONFIG).inputs["productionVariants"][0]
    assert run.one(CONFIG).inputs["kmsKeyArn"] == key
    shape = SAGEMAKER_MODEL.operation_model("CreateEndpointConfig").input_shape
    params = aws_requests.coerce(aws_requests.create_endpoint_config(run.one(CONFIG)), shape)
    assert params["KmsKeyId"] == key
    report = ParamValidator().validate(params, shape)
    assert not report.has_errors(), report.generate_report()


def test_kms_and_vpc_narrow_the_role_to_that_key_and_add_the_network(tmp_path: Path) -> None:
    """A KMS key encrypts bucket, storage, capture and logs; the role may use exactly that key."""
    key = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    config = read_stack_config(REPO, "staging")
    config["skdeploy:kmsKeyArn"] = key
    config["skdeploy:vpc"] = {"subnetIds": ["subnet-1", "subnet-2"], "securityGroupIds": ["sg-1"]}
    config["skdeploy:networkIsolation"] = False
    run = run_program(REPO, "staging", config)
    encryption = run.one(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    ).inputs["rules"][0]["applyServerSideEncryptionByDefault"]
    assert encryption == {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": key}
    assert run.one(CONFIG).inputs["kmsKeyArn"] == key
    assert run.one(CONFIG).inputs["dataCaptureConfig"]["kmsKeyId"] == key
    assert run.one(LOG_GROUP).inputs["kmsKeyId"] == key
    assert statements(run)["UseStackKey"]["Resource"] == [key]
    assert run.one(MODEL).inputs["vpcConfig"] == {
        "subnets": ["subnet-1", "subnet-2"],
        "securityGroupIds": ["sg-1"],
    }
    assert statements(run)["ManageVpcNetworkInterfaces"]["Resource"] == "*"


# --- Bad combinations ----------------------------------------------------------------------------

SERVERLESS = {"memoryMb": 2048, "maxConcurrency": 5}
BAD_COMBINATIONS: list[tuple[dict[str, object], list[str]]] = [
    (
        {
            "serverless": SERVERLESS,
            "autoscaling": {"min": 1, "max": 2},
            "dataCapture": {"samplingPercent": 10},
            "vpc": {"subnetIds": ["s"], "securityGroupIds": ["g"]},
            "networkIsolation": True,
        },
        [
            "autoscaling = ",
            "dataCapture = ",
            "vpc = ",
            "networkIsolation = ",
            "cannot be combined with serverless",
        ],
    ),
    ({"serverless": {"memoryMb": 1500}}, ["serverless.memoryMb", "steps of 1024"]),
    ({"serverless": {"memoryMb": 8192}}, ["serverless.memoryMb"]),
    ({"autoscaling": {"min": 4, "max": 2}}, ["min must not exceed max"]),
    ({"autoscaling": {"max": 2}}, ["autoscaling.min", "needs min and max"]),
    (
        {"deployment": {"strategy": "big-bang"}},
        ["deployment.strategy", "all-at-once, canary, linear"],
    ),
    (
        {"serverless": SERVERLESS, "deployment": {"strategy": "canary"}},
        ["all-at-once blue/green only"],
    ),
    ({"vpc": {"securityGroupIds": ["sg-1"]}}, ["vpc.subnetIds", "subnets and security groups"]),
    ({"vpc": {"subnetIds": [], "securityGroupIds": ["sg-1"]}}, ["vpc.subnetIds", "non-empty"]),
    ({"startupHealthCheckTimeoutSeconds": 30}, ["60-3600"]),
    ({"logRetentionDays": 10}, ["logRetentionDays"]),
    ({"kmsKeyArn": "alias/mine"}, ["KMS key ARN"]),
    ({"dataCapture": {"captureContent": "everything"}}, ["both, input, output"]),
    ({"deployment": {"surprise": 1}}, ["deployment.surprise", "unknown key"]),
]


@pytest.mark.parametrize(("raw", "fragments"), BAD_COMBINATIONS)
def test_bad_combinations_are_refused_in_one_message(
    tmp_path: Path, raw: dict[str, object], fragments: list[str]
) -> None:
    """Each bad setting or combination is named, all of them in one SettingsError."""
    project = copy_project(tmp_path)
    config = {"aws:region": "us-east-1", **{f"skdeploy:{k}": v for k, v in raw.items()}}
    (project / "stacks" / "Pulumi.bad.yaml").write_text(yaml.safe_dump({"config": config}))
    with pytest.raises(SettingsError) as caught:
        load_stack_settings(project, "bad")
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, message


# --- HTTPS front door ----------------------------------------------------------------------------


def with_api(api: dict[str, object]) -> ProgramRun:
    config = read_stack_config(REPO, "staging")
    config["skdeploy:api"] = api
    return run_program(REPO, "staging", config)


def test_the_front_door_routes_post_predict_to_a_lambda_with_iam_auth() -> None:
    """api on: an HTTP API with POST /predict (IAM auth), throttled, proxying to the function."""
    run = with_api({"throttle": {"rate": 50, "burst": 100}})
    route = run.one("aws:apigatewayv2/route:Route").inputs
    assert route["routeKey"] == "POST /predict"
    assert route["authorizationType"] == "AWS_IAM"
    integration = run.one("aws:apigatewayv2/integration:Integration").inputs
    function = run.one("aws:lambda/function:Function")
    assert integration["integrationUri"] == function.outputs["arn"]
    assert integration["payloadFormatVersion"] == "2.0"
    assert route["target"].startswith("integrations/")
    stage = run.one("aws:apigatewayv2/stage:Stage").inputs
    assert stage["defaultRouteSettings"] == {"throttlingRateLimit": 50, "throttlingBurstLimit": 100}
    assert function.inputs["environment"]["variables"]["ENDPOINT_NAME"] == "skdeploy-staging"
    assert function.inputs["code"] == {"assetArchive": {"handler.py": {"fileAsset": "handler.py"}}}
    assert function.inputs["runtime"] == "python3.12"
    api = run.one("aws:apigatewayv2/api:Api").outputs
    assert run.exports["apiUrl"] == f"{api['apiEndpoint']}/predict"
    permission = run.one("aws:lambda/permission:Permission").inputs
    assert permission["principal"] == "apigateway.amazonaws.com"
    assert permission["sourceArn"] == f"{api['executionArn']}/*/POST/predict"


def test_the_front_door_role_may_invoke_exactly_this_endpoint() -> None:
    """The function's role invokes only this endpoint and writes only its own logs."""
    run = with_api({})
    policies = [json.loads(p.inputs["policy"]) for p in run.by_type(ROLE_POLICY)]
    (front,) = [p for p in policies if p["Statement"][0]["Sid"] == "InvokeThisEndpoint"]
    invoke, logs = front["Statement"]
    assert invoke["Action"] == ["sagemaker:InvokeEndpoint"]
    assert invoke["Resource"] == [run.exports["endpointArn"]]
    assert logs["Resource"] == [
        "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/skdeploy-staging-api:log-stream:*"
    ]


def test_a_public_front_door_must_be_asked_for() -> None:
    """auth: none makes the route public; without the api key nothing is declared."""
    run = with_api({"auth": "none"})
    assert run.one("aws:apigatewayv2/route:Route").inputs["authorizationType"] == "NONE"
    assert not run_program(REPO, "staging").by_type("aws:apigatewayv2/api:Api")
    assert "apiUrl" not in run_program(REPO, "staging").exports


def test_a_bad_front_door_setting_is_refused(tmp_path: Path) -> None:
    """An unknown auth mode or a zero rate is named in the settings error."""
    project = copy_project(tmp_path)
    config = {
        "aws:region": "us-east-1",
        "skdeploy:api": {"auth": "apikey", "throttle": {"rate": 0}},
    }
    (project / "stacks" / "Pulumi.bad.yaml").write_text(yaml.safe_dump({"config": config}))
    with pytest.raises(SettingsError) as caught:
        load_stack_settings(project, "bad")
    assert "api.auth" in str(caught.value)


# --- Several variants and a shadow ---------------------------------------------------------------


def two_models(tmp_path: Path) -> Path:
    """A project copy with a second model directory (other bytes: another artifact)."""
    project = copy_project(tmp_path)
    (project / "challenger").mkdir()
    (project / "challenger" / "model.joblib").write_bytes(
        (project / "model" / "model.joblib").read_bytes()
    )
    (project / "challenger" / "extra.joblib").write_bytes(
        (project / "model" / "model.joblib").read_bytes()
    )
    return project


def test_variants_put_several_models_behind_one_endpoint(tmp_path: Path) -> None:
    """Each variant gets its own artifact and Model; traffic is split by weight; role reads both."""
    project = two_models(tmp_path)
    config = read_stack_config(project, "staging")
    config["skdeploy:variants"] = [
        {"name": "champion", "weight": 9},
        {
            "name": "challenger",
            "modelDir": "challenger",
            "modelFiles": ["model.joblib", "extra.joblib"],
            "weight": 1,
            "instanceType": "ml.c5.large",
        },
    ]
    config["skdeploy:shadow"] = {"name": "shadow", "modelDir": "challenger", "instanceCount": 1}
    run = run_program(project, "staging", config)
    models = {m.name: m for m in run.by_type(MODEL)}
    assert set(models) == {
        "skdeploy-staging-champion-model",
        "skdeploy-staging-challenger-model",
        "skdeploy-staging-shadow-model",
    }
    keys = [o.inputs["key"] for o in run.by_type("aws:s3/bucketObjectv2:BucketObjectv2")]
    assert len(keys) == len(set(keys)) == 2  # the shadow's inputs equal the challenger's: shared
    variants = {v["variantName"]: v for v in run.one(CONFIG).inputs["productionVariants"]}
    assert (
        variants["champion"]["initialVariantWeight"],
        variants["challenger"]["initialVariantWeight"],
    ) == (9, 1)
    assert variants["challenger"]["instanceType"] == "ml.c5.large"
    assert (
        variants["challenger"]["modelName"]
        == models["skdeploy-staging-challenger-model"].outputs["name"]
    )
    (shadow,) = run.one(CONFIG).inputs["shadowProductionVariants"]
    assert shadow["variantName"] == "shadow"
    reads = statements(run)["ReadModelArtifact"]["Resource"]
    bucket = run.one(BUCKET).outputs["bucket"]
    assert reads == [f"arn:aws:s3:::{bucket}/models/*"]
    assert all(key.startswith("models/") for key in keys)


def test_each_variant_is_autoscaled_and_guarded(tmp_path: Path) -> None:
    """With autoscaling, every production variant gets its own target, policy and guard."""
    project = two_models(tmp_path)
    config = read_stack_config(project, "prod")
    config["skdeploy:variants"] = [
        {"name": "blue", "weight": 1},
        {"name": "green", "modelDir": "challenger", "weight": 1},
    ]
    run = run_program(project, "prod", config)
    targets = sorted(t.inputs["resourceId"] for t in run.by_type(TARGET))
    assert targets == [
        "endpoint/skdeploy-prod/variant/blue",
        "endpoint/skdeploy-prod/variant/green",
    ]
    assert len(run.by_type(POLICY)) == 2
    assert len(run.by_type(GUARD)) == 2


VARIANT_PROBLEMS: list[tuple[dict[str, object], str]] = [
    (
        {"variants": [{"name": "a", "weight": 0}, {"name": "b", "weight": 0}]},
        "weights are all zero",
    ),
    ({"variants": [{"name": "a"}, {"name": "a"}]}, "variant names must be unique"),
    ({"variants": [{"weight": 1}]}, "every variant needs a name"),
    ({"variants": [{"name": "a", "modelDir": "nowhere"}]}, "variants[0].modelDir"),
    ({"variants": []}, "non-empty list of variants"),
    ({"shadow": {"name": "AllTraffic"}}, "must differ from the production variants"),
    ({"serverless": {"memoryMb": 2048}, "variants": [{"name": "a"}]}, "variants = "),
    ({"serverless": {"memoryMb": 2048}, "shadow": {"name": "s"}}, "shadow = "),
]


@pytest.mark.parametrize(("raw", "fragment"), VARIANT_PROBLEMS)
def test_bad_variants_are_refused(tmp_path: Path, raw: dict[str, object], fragment: str) -> None:
    """Zero weights, duplicate or missing names, missing models and serverless are refused."""
    project = copy_project(tmp_path)
    config = {"aws:region": "us-east-1", **{f"skdeploy:{k}": v for k, v in raw.items()}}
    (project / "stacks" / "Pulumi.bad.yaml").write_text(yaml.safe_dump({"config": config}))
    with pytest.raises(SettingsError) as caught:
        load_stack_settings(project, "bad")
    assert fragment in str(caught.value)


def test_preflight_checks_every_variant(tmp_path: Path) -> None:
    """A challenger lacking model_fn, or whose pickle runs a shell, is refused by name."""
    from skdeploy.core.preflight import static_checks
    from skdeploy.core.settings import parse_settings

    project = two_models(tmp_path)
    (project / "challenger-code").mkdir()
    (project / "challenger-code" / "inference.py").write_text(
        "def predict_fn(data, model):\n    return data\n"
    )
    (project / "challenger" / "extra.joblib").write_bytes(b"\x80\x04cposix\nsystem\n.")
    settings = parse_settings(
        {
            "variants": [
                {"name": "champion"},
                {"name": "challenger", "modelDir": "challenger", "inferenceDir": "challenger-code"},
            ]
        },
        stack="staging",
        region="eu-west-1",
        project_dir=project,
    )
    messages = [f.message for f in static_checks(settings).errors]
    assert any(m.startswith("challenger/inference.py defines no model_fn") for m in messages), (
        messages
    )
    assert any(m.startswith("challenger/extra.joblib") and "posix.system" in m for m in messages), (
        messages
    )
    assert not any(m.startswith("champion/") for m in messages), messages
