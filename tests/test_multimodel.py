"""Multi-model endpoints: several models behind one endpoint, each picked by ``TargetModel``."""

from __future__ import annotations

import json
import re
import shutil
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import pytest
from botocore.validate import ParamValidator
from moto import mock_aws

from skdeploy.core.constants import MULTI_MODEL_PREFIX
from skdeploy.core.preflight import static_checks
from skdeploy.core.settings import (
    SettingsError,
    load_stack_settings,
    parse_settings,
    read_stack_config,
)
from skdeploy.core.settings.multimodel import SERVERLESS_SOURCE
from skdeploy.tooling import cli
from skdeploy.tooling.demo import run_check
from skdeploy.tooling.mockrun import ProgramRun, run_program
from tests import aws_requests
from tests.conftest import TEST_STACK, make_project, running_serve
from tests.support import copy_project, shift_predictions

MODEL_NAMES = ("iris-a", "iris-b", "iris-c")


def multi_model_project(dest: Path) -> Path:
    """The project with three models (see :func:`add_models`)."""
    project = copy_project(dest)
    add_models(project)
    return project


def add_models(project: Path) -> None:
    """Three models under ``models/``: one model file, handlers shifting its answers by 0, 100
    and 200, and each model's samples (predictions and targets) shifted to match."""
    for index, name in enumerate(MODEL_NAMES):
        model_dir = project / "models" / name / "model"
        shutil.copytree(project / "model", model_dir)
        handlers = project / "models" / name / "inference"
        shutil.copytree(project / "inference", handlers)
        if index:
            shift = 100.0 * index
            shift_predictions(handlers, shift)
            samples = json.loads((model_dir / "samples.json").read_text())
            for key in ("predictions", "targets"):
                samples[key] = [value + shift for value in samples[key]]
            (model_dir / "samples.json").write_text(json.dumps(samples))


def models_setting() -> list[dict[str, str]]:
    return [
        {"name": n, "modelDir": f"models/{n}/model", "inferenceDir": f"models/{n}/inference"}
        for n in MODEL_NAMES
    ]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return multi_model_project(tmp_path_factory.mktemp("multimodel"))


def parse(project: Path, raw: dict[str, object]):
    return parse_settings(raw, stack="mm", region="us-east-1", project_dir=project)


def problems_of(project: Path, raw: dict[str, object]) -> str:
    with pytest.raises(SettingsError) as raised:
        parse(project, raw)
    return str(raised.value)


def test_models_are_read_in_order_with_their_folders(project: Path) -> None:
    """Each model keeps its name and folders; the top-level folders are the first model's."""
    settings = parse(project, {"models": models_setting()})
    assert settings.multi_model
    assert [m.name for m in settings.models] == list(MODEL_NAMES)
    assert settings.models[1].inference_dir == project / "models" / "iris-b" / "inference"
    assert settings.model_dir == settings.models[0].model_dir


def test_a_stack_without_models_is_not_multi_model(project: Path) -> None:
    """No ``models`` key: the stack serves its one model as before."""
    settings = parse(project, {})
    assert not settings.multi_model
    assert settings.models == ()


@pytest.mark.parametrize(
    ("models", "expected"),
    [
        ([], "models = []: must be a non-empty list of models"),
        ([{"name": "a"}], "models[0].modelDir = (missing)"),
        ([{"modelDir": "model"}], "models[0].name = (missing)"),
        ([{"name": "a_b", "modelDir": "model"}], "models[0].name = a_b: 1-63 letters"),
        ([{"name": "a", "modelDir": "nowhere"}], "models[0].modelDir = nowhere: directory"),
        ([{"name": "a", "modelDir": "model", "weight": 2}], "models[0].weight = 2: unknown key"),
        (
            [{"name": "a", "modelDir": "model"}, {"name": "a", "modelDir": "model"}],
            "model names must be unique",
        ),
    ],
)
def test_a_bad_model_entry_is_refused_by_name(
    project: Path, models: list[dict[str, object]], expected: str
) -> None:
    """Each malformed entry is named with its index and member."""
    assert expected in problems_of(project, {"models": models})


def test_serverless_with_models_is_refused_with_its_source(project: Path) -> None:
    """AWS's serverless guide lists multi-model endpoints among what serverless lacks."""
    message = problems_of(project, {"models": models_setting(), "serverless": {"memoryMb": 2048}})
    assert "serverless = " in message
    assert "Serverless Inference does not support multi-model endpoints" in message
    assert SERVERLESS_SOURCE in message


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("modelDir", "model"),
        ("inferenceDir", "inference"),
        ("modelFiles", ["model.joblib"]),
        ("variants", [{"name": "a", "weight": 1}]),
        ("shadow", {"name": "s"}),
        ("artifactSha256", "0" * 64),
        ("async", {"outputPath": "s3://bucket/out"}),
        ("api", {"auth": "iam"}),
    ],
)
def test_keys_skdeploy_does_not_combine_with_models_are_refused(
    project: Path, key: str, value: object
) -> None:
    """Every key that would contradict ``models`` is named as such."""
    message = problems_of(project, {"models": models_setting(), key: value})
    assert f"{key} = " in message
    assert "not with models" in message


# --- The program: one artifact per model, one MultiModel Model ----------------------------------

SAGEMAKER = boto3.client(
    "sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
).meta.service_model


def multi_model_run(project: Path) -> ProgramRun:
    """The staging stack of ``project`` with the three models, run under Pulumi's mocks."""
    config = read_stack_config(project, "staging")
    config["skdeploy:models"] = models_setting()
    return run_program(project, "staging", config)


@pytest.fixture(scope="module")
def declared(project: Path) -> ProgramRun:
    return multi_model_run(project)


def test_three_models_build_three_artifacts_under_one_prefix(declared: ProgramRun) -> None:
    """Each model is its own content-addressed object under the multi-model prefix."""
    objects = declared.by_type("aws:s3/bucketObjectv2:BucketObjectv2")
    keys = sorted(o.inputs["key"] for o in objects)
    assert len(keys) == len(MODEL_NAMES)
    for key, name in zip(keys, MODEL_NAMES, strict=True):
        assert re.fullmatch(MULTI_MODEL_PREFIX + name + r"-[0-9a-f]{64}\.tar\.gz", key), key
    # Three handler folders (answers shifted by 0, 100, 200): three different artifacts.
    assert len({key.rsplit("-", 1)[1] for key in keys}) == len(MODEL_NAMES)


def test_the_model_serves_the_prefix_in_multi_model_mode(declared: ProgramRun) -> None:
    """One Model, ``Mode: MultiModel``, its ``modelDataUrl`` the common prefix."""
    (model,) = declared.by_type("aws:sagemaker/model:Model")
    container = model.inputs["primaryContainer"]
    assert container["mode"] == "MultiModel"
    bucket = declared.one("aws:s3/bucket:Bucket").outputs["bucket"]
    assert container["modelDataUrl"] == f"s3://{bucket}/{MULTI_MODEL_PREFIX}"
    assert declared.exports["modelDataUrl"] == container["modelDataUrl"]


def test_the_role_reads_exactly_the_multi_model_prefix(declared: ProgramRun) -> None:
    """The execution role's artifact grant is the multi-model prefix and nothing wider."""
    policy = json.loads(declared.one("aws:iam/rolePolicy:RolePolicy").inputs["policy"])
    bucket = declared.one("aws:s3/bucket:Bucket").outputs["bucket"]
    reads = [s["Resource"] for s in policy["Statement"] if "s3:GetObject" in str(s.get("Action"))]
    assert reads == [[f"arn:aws:s3:::{bucket}/{MULTI_MODEL_PREFIX}*"]], reads


def test_every_sagemaker_request_passes_botocore_validation(declared: ProgramRun) -> None:
    """CreateModel, CreateEndpointConfig and CreateEndpoint validate against botocore's model."""
    calls = {
        "CreateModel": aws_requests.create_model(declared.one("aws:sagemaker/model:Model")),
        "CreateEndpointConfig": aws_requests.create_endpoint_config(
            declared.one("aws:sagemaker/endpointConfiguration:EndpointConfiguration")
        ),
        "CreateEndpoint": aws_requests.create_endpoint(
            declared.one("aws:sagemaker/endpoint:Endpoint")
        ),
    }
    for operation, params in calls.items():
        shape = SAGEMAKER.operation_model(operation).input_shape
        report = ParamValidator().validate(aws_requests.coerce(params, shape), shape)
        assert not report.has_errors(), f"{operation}: {report.generate_report()}"
    assert calls["CreateModel"]["PrimaryContainer"]["Mode"] == "MultiModel"


def test_a_change_to_one_model_replaces_only_its_artifact(tmp_path: Path) -> None:
    """Shifting one model's answers changes its object's key; the others and the Model stay."""
    project = multi_model_project(tmp_path)
    before = multi_model_run(project)
    shift_predictions(project / "models" / "iris-a" / "inference", 1.0)
    after = multi_model_run(project)

    def keys(run: ProgramRun) -> dict[str, str]:
        return {
            o.name: o.inputs["key"] for o in run.by_type("aws:s3/bucketObjectv2:BucketObjectv2")
        }

    changed = {n for n in keys(before) if keys(before)[n] != keys(after)[n]}
    assert changed == {"skdeploy-staging-model-iris-a-artifact"}
    model = "aws:sagemaker/model:Model"
    assert (
        before.one(model).inputs["primaryContainer"] == after.one(model).inputs["primaryContainer"]
    )


def test_each_model_is_preflight_checked_and_named(tmp_path: Path) -> None:
    """A bad model file in one model refuses the stack, and the findings name that model."""
    project = multi_model_project(tmp_path)
    (project / "models" / "iris-b" / "model" / "model.joblib").write_bytes(b"not a pickle")
    report = static_checks(parse(project, {"models": models_setting()}))
    assert not report.ok
    assert report.errors
    assert all(f.message.startswith("iris-b: ") for f in report.errors), report.render()


# --- skdeploy serve: every model on one port, routed by TargetModel -----------------------------


@pytest.fixture(scope="module")
def served(runtime_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """``skdeploy serve`` of a three-model test stack, through a real boto3 client."""
    if sys.platform == "win32":
        pytest.skip("skdeploy serve needs Linux or macOS (gunicorn)")
    work = tmp_path_factory.mktemp("multimodel-serve")
    project = make_project(work / "project", config={"skdeploy:models": models_setting()})
    add_models(project)
    with running_serve(project, work / "logs") as endpoint:
        yield endpoint


def served_project(endpoint: Any) -> Path:
    """The project the ``served`` endpoint runs (beside its logs folder)."""
    return Path(endpoint.stdout).parent.parent / "project"


def invoke(endpoint: Any, target: str | None) -> dict[str, Any]:
    extra = {} if target is None else {"TargetModel": target}
    answer = endpoint.client().invoke_endpoint(
        EndpointName=endpoint.endpoint_name,
        ContentType="application/json",
        Accept="application/json",
        Body=json.dumps(SAMPLES["instances"]),
        **extra,
    )
    return dict(json.loads(answer["Body"].read()))


SAMPLES = json.loads((Path(__file__).parents[1] / "model" / "samples.json").read_text())


def test_each_target_model_answers_with_its_own_model(served: Any) -> None:
    """Bare names and the deployed ``<name>-<sha>.tar.gz`` keys reach their own model."""
    base = [float(p) for p in invoke(served, "iris-a")["predictions"]]
    for index, name in enumerate(MODEL_NAMES):
        got = [float(p) for p in invoke(served, name)["predictions"]]
        assert got == [p + 100.0 * index for p in base], name
    ready = json.loads((served.stdout.parent / "ready.json").read_text())
    for target in ready["models"]:
        name = target.rsplit("-", 1)[0]
        assert invoke(served, target) == invoke(served, name)


@pytest.mark.parametrize("target", ["iris-z", None])
def test_an_unknown_or_missing_target_is_a_validation_error(
    served: Any, target: str | None
) -> None:
    """botocore raises the service's ValidationError (a 400 with a JSON body)."""
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        invoke(served, target)
    error = raised.value.response
    assert error["Error"]["Code"] == "ValidationError"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "iris-a-" in error["Error"]["Message"]


def test_smoke_checks_every_model_against_its_own_samples(
    served: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """One smoke run per model, each through its TargetModel, each passing on its samples."""
    where = ["--stack", TEST_STACK, "--project-dir", str(served_project(served))]
    code = cli.main(["smoke", *where, "--endpoint-url", served.url, "--calls", "2", "--json"])
    captured = capsys.readouterr()
    assert code == cli.EXIT_OK, captured.out + captured.err
    runs = json.loads(captured.out)["variants"]
    assert [target.rsplit("-", 1)[0] for target in runs] == list(MODEL_NAMES)
    assert all(target.endswith(".tar.gz") for target in runs)


def test_smoke_fails_when_a_model_answers_with_another_models_predictions(
    served: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Swapped samples (iris-b's file under iris-c) fail the predictions check of iris-c."""
    project = tmp_path / "swapped"
    shutil.copytree(served_project(served), project, symlinks=True)
    models = project / "models"
    shutil.copy(models / "iris-b" / "model" / "samples.json", models / "iris-c" / "model")
    where = ["--stack", TEST_STACK, "--project-dir", str(project)]
    code = cli.main(["smoke", *where, "--endpoint-url", served.url, "--calls", "2"])
    assert code == cli.EXIT_FAILED, capsys.readouterr().out


def test_moto_accepts_the_role_and_the_multi_model_endpoint(
    declared: ProgramRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Role, policy, MultiModel Model, configuration and endpoint: moto accepts them."""
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(key, "testing")
    region = declared.exports["region"]
    with mock_aws():
        iam = boto3.client("iam", region_name=region)
        role = declared.one("aws:iam/role:Role")
        iam.create_role(
            RoleName=role.outputs["name"], AssumeRolePolicyDocument=role.inputs["assumeRolePolicy"]
        )
        iam.put_role_policy(
            RoleName=role.outputs["name"],
            PolicyName="execution",
            PolicyDocument=declared.one("aws:iam/rolePolicy:RolePolicy").inputs["policy"],
        )
        sagemaker = boto3.client("sagemaker", region_name=region)
        model = declared.one("aws:sagemaker/model:Model")
        config = declared.one("aws:sagemaker/endpointConfiguration:EndpointConfiguration")
        endpoint = declared.one("aws:sagemaker/endpoint:Endpoint")
        for operation, params, call in (
            ("CreateModel", aws_requests.create_model(model), sagemaker.create_model),
            (
                "CreateEndpointConfig",
                aws_requests.create_endpoint_config(config),
                sagemaker.create_endpoint_config,
            ),
            ("CreateEndpoint", aws_requests.create_endpoint(endpoint), sagemaker.create_endpoint),
        ):
            call(**aws_requests.coerce(params, SAGEMAKER.operation_model(operation).input_shape))
        described = sagemaker.describe_model(ModelName=declared.exports["modelName"])
        assert described["PrimaryContainer"]["Mode"] == "MultiModel"
        assert described["PrimaryContainer"]["ModelDataUrl"] == declared.exports["modelDataUrl"]


def test_batch_refuses_a_stack_of_several_models_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Batch transform scores with one model: a multi-model stack cannot run, and says why."""
    project = make_project(tmp_path / "project", config={"skdeploy:models": models_setting()})
    add_models(project)
    data = tmp_path / "rows.csv"
    data.write_text("12\n")
    argv = ["batch", "-s", TEST_STACK, "--project-dir", str(project), "--input", str(data)]
    assert cli.main([*argv, "--output", str(tmp_path / "out")]) == cli.EXIT_CANNOT_RUN
    message = capsys.readouterr().err
    assert "serves several models" in message
    assert all(name in message for name in MODEL_NAMES)
    assert not (tmp_path / "out").exists()


def test_check_loads_and_predicts_every_model_and_names_the_one_that_fails(
    runtime_python: Path, tmp_path: Path
) -> None:
    """The runtime checks serve each model alone: a wrong last model is refused by its name."""
    project = make_project(tmp_path / "project", config={"skdeploy:models": models_setting()})
    add_models(project)
    last = MODEL_NAMES[-1]
    samples_path = project / "models" / last / "model" / "samples.json"
    samples = json.loads(samples_path.read_text())
    samples["predictions"] = [value + 1000.0 for value in samples["predictions"]]
    samples_path.write_text(json.dumps(samples))
    report = run_check(load_stack_settings(project, TEST_STACK))
    assert "memory" in report.checks_run
    assert "load-and-predict" in report.checks_run
    assert [f.message.split(":")[0] for f in report.errors] == [last], report.render()


def test_the_router_refuses_a_declared_oversize_body_without_reading_it(served: Any) -> None:
    """A Content-Length over the limit gets the 413 at once, as from one model's server: the
    router neither waits for nor holds the body (a huge declared size cannot exhaust it)."""
    host, port = served.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(
            (
                f"POST /endpoints/{served.endpoint_name}/invocations HTTP/1.1\r\n"
                f"Host: {host}:{port}\r\nContent-Type: application/json\r\n"
                "X-Amzn-SageMaker-Target-Model: iris-a\r\n"
                f"Content-Length: {10**12}\r\n\r\n[[1]]"
            ).encode()
        )
        status_line = connection.makefile("rb").readline()
    assert status_line.split()[1] == b"413", status_line
    response = invoke(served, "iris-a")  # and the router still serves
    assert response["predictions"]
