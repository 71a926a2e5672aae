"""``skdeploy smoke``: each check passes on a good endpoint and fails on the fault it guards.

The data plane is real HTTP on 127.0.0.1 through real boto3 ``sagemaker-runtime`` clients: the
shared ``local_endpoint`` fixture (``skdeploy serve``, the container's own serving stack) for the
end-to-end pass, and :class:`ModelServer` for the faults that a correct model cannot show. It is
a stdlib ``http.server`` that speaks SageMaker's InvokeEndpoint protocol (JSON in,
``{"predictions": [...]}`` out, a 424 ``ModelError`` carrying ``OriginalStatusCode`` for input the
model refuses) and answers with the committed model's own ``predict``. Its ``offset`` adds a
constant to every answer, standing in for a different (wrong) model: a legitimate test double
for the wrong-prediction and worse-metrics cases, which a correct model cannot produce.

The control plane is moto for the ordinary flow, and botocore's ``Stubber`` for exact answers
moto cannot give (a ``Failed`` endpoint, ``Updating`` then ``InService``, a rolled-back update).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import joblib
import numpy as np
import pytest
from botocore.stub import Stubber
from moto import mock_aws
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

from skdeploy.core.constants import (
    CONTENT_JSON,
    DEFAULT_VARIANT,
    OUTPUT_ENDPOINT_CONFIG_NAME,
    OUTPUT_ENDPOINT_NAME,
    OUTPUT_REGION,
    SAMPLES_FILE,
)
from skdeploy.core.settings import load_stack_settings
from skdeploy.tooling import cli, demo, smoke
from skdeploy.tooling.cli import build_parser, main
from tests.conftest import LocalEndpoint, make_variant_project
from tests.support import REPO

STACK = "dev"
SETTINGS = load_stack_settings(REPO, STACK)
SAMPLES_PATH = SETTINGS.model_dir / SAMPLES_FILE
SAMPLES = smoke.load_samples(SAMPLES_PATH)
ECR = "683313688378.dkr.ecr.us-east-1.amazonaws.com"
DUMMY_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def _load_model() -> Any:
    """The committed model (pickled by the container's scikit-learn; ours only warns)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return joblib.load(SETTINGS.model_dir / SETTINGS.model_files[0])


MODEL = _load_model()


# --- A local InvokeEndpoint server ----------------------------------------------------------------


@dataclass
class ModelServer:
    """How the stand-in endpoint behaves, and what it received."""

    endpoint_name: str
    offset: float = 0.0
    bad_input: str = "refuse"  # "refuse" (424 from a 400), "accept" (200), "crash" (424 from a 500)
    bodies: list[bytes] = field(default_factory=list)
    url: str = ""
    #: Extra offset of the answers of a variant named by TargetVariant, and the names received.
    variant_offsets: dict[str, float] = field(default_factory=dict)
    target_variants: list[str | None] = field(default_factory=list)
    #: The variant named in x-Amzn-Invoked-Production-Variant: None leaves the header out,
    #: "" names the variant asked for.
    invoked_variant: str | None = None

    def answer(
        self, path: str, body: bytes, variant: str | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        """Status, headers and body for one request, as SageMaker's runtime would send them."""
        match = re.fullmatch(r"/endpoints/([^/]+)/invocations", path)
        if match is None or match.group(1) != self.endpoint_name:
            return _service_error(400, "ValidationError", f"Endpoint {path} not found.")
        self.bodies.append(body)
        self.target_variants.append(variant)
        if _asks_probabilities(body):  # as inference.py answers for a regressor
            return _model_error(400, '{"error": "LinearRegression has no predict_proba"}')
        rows = _valid_rows(body)
        if rows is None:
            if self.bad_input == "refuse":
                return _model_error(400, '{"error": "expected 1 feature per sample"}')
            if self.bad_input == "crash":
                return _model_error(500, "<html>Internal Server Error</html>")
            rows = [[float(row[0])] for row in json.loads(body)["instances"]]
        offset = self.offset + self.variant_offsets.get(variant or "", 0.0)
        predictions = MODEL.predict(np.asarray(rows, dtype=np.float64)) + offset
        out = json.dumps({"predictions": predictions.tolist()}).encode()
        headers = {"Content-Type": CONTENT_JSON}
        if self.invoked_variant is not None:
            headers["x-Amzn-Invoked-Production-Variant"] = self.invoked_variant or variant or ""
        return 200, headers, out


def _asks_probabilities(body: bytes) -> bool:
    try:
        decoded = json.loads(body)
    except ValueError:
        return False
    return isinstance(decoded, dict) and decoded.get("probabilities") is True


def _valid_rows(body: bytes) -> list[list[float]] | None:
    """The rows of a JSON body the model accepts: numbers, ``n_features_in_`` per row."""
    try:
        rows = json.loads(body)["instances"]
    except (ValueError, KeyError, TypeError):
        return None
    width = MODEL.n_features_in_
    ok = isinstance(rows, list) and all(
        isinstance(row, list)
        and len(row) == width
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in row)
        for row in rows
    )
    return rows if ok else None


def _service_error(status: int, code: str, message: str) -> tuple[int, dict[str, str], bytes]:
    body = json.dumps({"message": message}).encode()
    return status, {"x-amzn-ErrorType": code, "Content-Type": CONTENT_JSON}, body


def _model_error(original: int, message: str) -> tuple[int, dict[str, str], bytes]:
    """SageMaker's answer when the container answered ``original``: 424 ModelError."""
    body = json.dumps(
        {
            "ErrorCode": "CLIENT_ERROR_FROM_MODEL" if original < 500 else "SERVER_ERROR_FROM_MODEL",
            "Message": f"Received error ({original}) from primary with message {message!r}.",
            "OriginalStatusCode": original,
            "OriginalMessage": message,
            "LogStreamArn": "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/x",
        }
    ).encode()
    return 424, {"x-amzn-ErrorType": "ModelError", "Content-Type": CONTENT_JSON}, body


@pytest.fixture
def model_server() -> Iterator[ModelServer]:
    """A stand-in endpoint on 127.0.0.1 named like the dev stack's endpoint."""
    server_state = ModelServer(endpoint_name=SETTINGS.endpoint_name)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            variant = self.headers.get("X-Amzn-SageMaker-Target-Variant")
            status, headers, out = server_state.answer(self.path, body, variant)
            self.send_response(status)
            for name, value in {**headers, "Content-Length": str(len(out))}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: pytest shows stderr of failing tests only, and this is noise there."""

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    server_state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        yield server_state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def local_args(url: str, *extra: str) -> list[str]:
    """``skdeploy smoke`` against a local endpoint of the dev stack."""
    return ["smoke", "--stack", STACK, "--project-dir", str(REPO), "--endpoint-url", url, *extra]


def runtime_client(url: str) -> Any:
    """A real boto3 sagemaker-runtime client pointed at a local endpoint."""
    return boto3.client(
        "sagemaker-runtime",
        region_name=SETTINGS.region,
        endpoint_url=url,
        config=smoke.RUNTIME_CONFIG,
        **DUMMY_CREDENTIALS,
    )


def statuses(stdout: str) -> dict[str, str]:
    """``{check: status}`` from the ``--json`` report."""
    return {c["name"]: c["status"] for c in json.loads(stdout)["checks"]}


def without_aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No credentials from the environment, files, containers or instance metadata."""
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --- Against a local endpoint: the whole command ------------------------------------------------


def test_smoke_passes_against_an_endpoint_serving_the_model(
    model_server: ModelServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every data-plane check passes, and describe is skipped (not passed) for a local URL."""
    code = main(local_args(model_server.url, "--calls", "3"))
    out = capsys.readouterr().out
    assert code == 0, out
    assert re.search(r"PASS\s+predictions\s+40/40 as expected", out)
    assert re.search(r"SKIP\s+in-service\s+local endpoint", out)
    assert re.search(r"SKIP\s+endpoint-config", out)
    assert out.rstrip().endswith("PASSED")


def test_json_report_lists_every_check_latency_and_metrics(
    model_server: ModelServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--json`` prints the documented report, and only JSON, on stdout."""
    code = main(local_args(model_server.url, "--calls", "5", "--json"))
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    assert [c["name"] for c in report["checks"]] == list(smoke.CHECKS)
    assert {c["status"] for c in report["checks"]} == {"PASS", "SKIP"}
    assert report["passed"] is True
    latency = report["latency_ms"]
    assert latency["calls"] == 5
    assert 0 < latency["p50"] <= latency["p95"] <= latency["max"]
    assert set(report["metrics"]) == {"rmse", "mae", "r2"}
    assert report["metrics"]["rmse"]["recorded"] == SAMPLES.metrics["rmse"]
    assert report["metrics"]["rmse"]["measured"] == pytest.approx(SAMPLES.metrics["rmse"])


def test_a_wrong_prediction_fails_the_smoke_test(
    model_server: ModelServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """An endpoint answering 1.0 off the expected predictions exits 1 naming the sample."""
    model_server.offset = 1.0
    code = main(local_args(model_server.url, "--calls", "0"))
    out = capsys.readouterr().out
    assert code == 1
    assert re.search(r"FAIL\s+predictions\s+40/40 wrong", out)
    assert f"#0 {SAMPLES.instances[0]}" in out
    assert "FAILED: predictions" in out


def test_worse_metrics_fail_even_when_predictions_are_within_tolerance(
    model_server: ModelServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Answers shifted by 0.9 x tolerance, towards the error, pass one by one but fail metrics."""
    mean_residual = float(np.mean(np.array(SAMPLES.predictions) - np.array(SAMPLES.targets)))
    assert abs(mean_residual) > 1.0, "the shift below needs residuals that lean one way"
    model_server.offset = math.copysign(0.9 * SAMPLES.tolerance, mean_residual)
    code = main(local_args(model_server.url, "--calls", "0", "--json"))
    checks = statuses(capsys.readouterr().out)
    assert code == 1
    assert checks["predictions"] == "PASS"
    assert checks["metrics"] == "FAIL"


def test_a_bad_request_that_is_served_fails_the_smoke_test(
    model_server: ModelServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """An endpoint that answers 200 to a sample with an extra feature exits 1."""
    model_server.bad_input = "accept"
    code = main(local_args(model_server.url, "--calls", "0"))
    out = capsys.readouterr().out
    assert code == 1
    assert re.search(r"FAIL\s+bad-request\s+a sample with 2 features instead of 1: accepted", out)


def test_a_bad_request_that_crashes_the_model_fails_the_smoke_test(
    model_server: ModelServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 5xx from the model for bad input is a failure: it must refuse with a 4xx."""
    model_server.bad_input = "crash"
    code = main(local_args(model_server.url, "--calls", "0", "--json"))
    report = json.loads(capsys.readouterr().out)
    bad = next(c for c in report["checks"] if c["name"] == "bad-request")
    assert code == 1
    assert bad["status"] == "FAIL"
    assert "answered 500 instead of a 4xx" in bad["detail"]


def test_a_dead_endpoint_url_cannot_run_and_says_so_quickly(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A closed port exits 2 within 10 s with a one-line reason on stderr."""
    started = time.monotonic()
    code = main(local_args(f"http://127.0.0.1:{closed_port()}", "--calls", "0"))
    elapsed = time.monotonic() - started
    err = capsys.readouterr().err
    assert code == 2
    assert elapsed < 10
    reason = [line for line in err.splitlines() if "cannot run" in line]
    assert len(reason) == 1
    assert "cannot reach endpoint" in reason[0]


def test_an_unknown_endpoint_name_cannot_run(
    model_server: ModelServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """The service refusing the endpoint name (400 ValidationError) is exit 2, not a verdict."""
    code = main(local_args(model_server.url, "--endpoint-name", "no-such-endpoint"))
    err = capsys.readouterr().err
    assert code == 2
    assert "ValidationError" in err


def test_a_local_endpoint_needs_no_configured_credentials(
    model_server: ModelServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """With no AWS credentials anywhere, a local endpoint is still invoked (dummy credentials)."""
    without_aws_credentials(monkeypatch, tmp_path)
    assert main(local_args(model_server.url, "--calls", "1")) == 0
    assert model_server.bodies, "the endpoint was never invoked"


def test_latency_is_measured_over_single_row_calls(model_server: ModelServer) -> None:
    """``--calls N`` sends N requests of one row each and reports p50 <= p95 <= max."""
    check, stats = smoke.check_latency(
        runtime_client(model_server.url), model_server.endpoint_name, SAMPLES, 7
    )
    assert check.status == "PASS"
    assert stats["calls"] == 7
    assert stats["p50"] <= stats["p95"] <= stats["max"]
    assert [len(json.loads(b)["instances"]) for b in model_server.bodies] == [1] * 7


def test_samples_are_sent_in_batches_within_the_payload_limit(model_server: ModelServer) -> None:
    """With a 120-byte limit every request body fits, and every sample is still checked."""
    check, answers = smoke.check_predictions(
        runtime_client(model_server.url), model_server.endpoint_name, SAMPLES, max_bytes=120
    )
    assert check.status == "PASS", check.detail
    assert answers is not None
    assert len(answers) == len(SAMPLES.instances)
    assert len(model_server.bodies) > 1
    assert all(len(body) <= 120 for body in model_server.bodies)
    sent = [row for body in model_server.bodies for row in json.loads(body)["instances"]]
    assert sent == SAMPLES.instances


def test_a_sample_larger_than_the_payload_limit_cannot_run() -> None:
    """A single row that cannot fit any request is refused before anything is sent."""
    with pytest.raises(smoke.CannotRun, match="sample 1 alone is over the 40-byte"):
        smoke.batches([[1.0], [1.0] * 20], max_bytes=40)


def test_smoke_passes_against_the_live_local_endpoint(
    local_endpoint: LocalEndpoint, capsys: pytest.CaptureFixture[str]
) -> None:
    """``skdeploy serve`` (the real container stack) passes every data-plane check."""
    code = main(
        [
            "smoke",
            "--project-dir",
            str(REPO),
            "--endpoint-url",
            local_endpoint.url,
            "--endpoint-name",
            local_endpoint.endpoint_name,
            "--region",
            local_endpoint.region,
            "--calls",
            "5",
            "--json",
        ]
    )
    report = json.loads(capsys.readouterr().out)
    assert code == 0, report
    assert statuses(json.dumps(report)) == {
        "in-service": "SKIP",
        "endpoint-config": "SKIP",
        "predictions": "PASS",
        "probabilities": "SKIP",  # a regressor: the model refuses them with a 400
        "metrics": "PASS",
        "bad-request": "PASS",
        "latency": "PASS",
    }
    probabilities = next(c for c in report["checks"] if c["name"] == "probabilities")
    assert "predict_proba" in probabilities["detail"]
    bad = next(c for c in report["checks"] if c["name"] == "bad-request")
    assert "refused with 400" in bad["detail"]


# --- The control plane: moto for the ordinary flow ----------------------------------------------


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials for moto, so no real account can ever be touched."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def create_endpoint(sagemaker: Any, name: str) -> str:
    """Model, endpoint configuration and endpoint as the stack declares them; the config name."""
    sagemaker.create_model(
        ModelName=f"{name}-model",
        ExecutionRoleArn="arn:aws:iam::123456789012:role/skdeploy-execution",
        PrimaryContainer={
            "Image": f"{ECR}/sagemaker-scikit-learn:1.2-1-cpu-py3",
            "ModelDataUrl": "s3://skdeploy-artifacts/models/0123/model.tar.gz",
        },
    )
    config_name = f"{name}-config-1a2b3c"
    sagemaker.create_endpoint_config(
        EndpointConfigName=config_name,
        ProductionVariants=[
            {
                "VariantName": DEFAULT_VARIANT,
                "ModelName": f"{name}-model",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.t2.medium",
            }
        ],
    )
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=config_name)
    return config_name


def smoke_args(*argv: str) -> argparse.Namespace:
    """Arguments exactly as the command line parses them."""
    return build_parser().parse_args(["smoke", "--project-dir", str(REPO), *argv])


def write_outputs(path: Path, **outputs: str) -> Path:
    """Stack outputs as ``pulumi stack output --json`` prints them."""
    path.write_text(json.dumps(outputs, indent=2))
    return path


@pytest.mark.usefixtures("aws_credentials")
def test_smoke_passes_for_an_in_service_endpoint_serving_the_stack_config(
    model_server: ModelServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """moto's endpoint is InService with the stack's config: describe and config checks pass."""
    with mock_aws():
        sagemaker = boto3.client("sagemaker", region_name="us-east-1", config=smoke.CONTROL_CONFIG)
        config_name = create_endpoint(sagemaker, model_server.endpoint_name)
        outputs = write_outputs(
            tmp_path / "outputs.json",
            **{
                OUTPUT_ENDPOINT_NAME: model_server.endpoint_name,
                OUTPUT_ENDPOINT_CONFIG_NAME: config_name,
                OUTPUT_REGION: "us-east-1",
            },
        )
        clients = smoke.Clients(runtime=runtime_client(model_server.url), sagemaker=sagemaker)
        code = smoke.execute(
            smoke_args("--outputs", str(outputs), "--calls", "2", "--json"), clients=clients
        )
    checks = statuses(capsys.readouterr().out)
    assert code == 0
    # A regressor serves no probabilities: that check is the one skip.
    assert checks == {**dict.fromkeys(smoke.CHECKS, "PASS"), "probabilities": "SKIP"}


def two_variant_project(tmp_path: Path, shift: float = 50.0) -> Path:
    """A project whose dev stack splits traffic between the model and a copy of it (model2).

    model2's samples expect answers ``shift`` higher: a stand-in answering the challenger that
    much higher passes only against the challenger's own samples.
    """
    project = make_variant_project(tmp_path / "project", modelDir="model2")
    samples = json.loads((project / "model2" / SAMPLES_FILE).read_text())
    for key in ("predictions", "targets"):
        samples[key] = [value + shift for value in samples[key]]
    (project / "model2" / SAMPLES_FILE).write_text(json.dumps(samples))
    return project


def variant_args(project: Path, endpoint_name: str, *extra: str) -> argparse.Namespace:
    """``skdeploy smoke`` of the project's dev stack, against ``endpoint_name``."""
    return build_parser().parse_args(
        [
            "smoke",
            "--project-dir",
            str(project),
            "--stack",
            STACK,
            "--endpoint-name",
            endpoint_name,
            *extra,
        ]
    )


def test_each_production_variant_is_checked_against_its_own_samples(
    model_server: ModelServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With variants, smoke targets each production variant in turn; one bad variant fails it."""
    project = two_variant_project(tmp_path)
    model_server.variant_offsets["challenger"] = 50.0  # what model2's samples expect
    model_server.invoked_variant = ""  # answer as the variant asked for, as SageMaker does
    clients = smoke.Clients(runtime=runtime_client(model_server.url), sagemaker=None)
    args = variant_args(project, model_server.endpoint_name, "--calls", "1", "--json")
    assert smoke.execute(args, clients=clients) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] is True
    assert report["endpoint_name"] == model_server.endpoint_name
    assert list(report["variants"]) == ["champion", "challenger"]  # never the shadow
    assert set(model_server.target_variants) == {"champion", "challenger"}

    model_server.variant_offsets["challenger"] = 150.0
    assert smoke.execute(args, clients=clients) == cli.EXIT_FAILED
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] is False
    assert report["variants"]["champion"]["passed"] is True
    assert report["variants"]["challenger"]["passed"] is False


def test_an_answer_from_another_variant_cannot_run(
    model_server: ModelServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """If the endpoint says another variant answered, smoke stops (exit 2) instead of judging."""
    project = two_variant_project(tmp_path)
    model_server.invoked_variant = "champion"
    clients = smoke.Clients(runtime=runtime_client(model_server.url), sagemaker=None)
    args = variant_args(project, model_server.endpoint_name, "--variant", "challenger")
    assert smoke.execute(args, clients=clients) == cli.EXIT_CANNOT_RUN
    assert "asked for variant challenger, answered by variant champion" in capsys.readouterr().err


def test_a_local_endpoint_is_smoked_as_the_one_variant_it_serves(
    model_server: ModelServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Against a local URL only serve's default variant (the first) is checked; a shadow may be."""
    project = two_variant_project(tmp_path)
    argv = ["smoke", "--project-dir", str(project), "--stack", STACK]
    local = [*argv, "--endpoint-url", model_server.url, "--calls", "0", "--json"]
    local += ["--endpoint-name", model_server.endpoint_name]
    assert main(local) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["variant"] == "champion"
    assert set(model_server.target_variants) == {"champion"}
    model_server.target_variants.clear()
    model_server.variant_offsets["quiet"] = 50.0  # the shadow runs model2, as its samples say
    assert main([*local, "--variant", "quiet"]) == 0
    assert json.loads(capsys.readouterr().out)["variant"] == "quiet"
    assert set(model_server.target_variants) == {"quiet"}


def test_the_demo_smokes_a_local_endpoint_by_calling_functions_not_the_parser(
    model_server: ModelServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """demo's smoke step reports as `smoke --endpoint-url` does, without parsing an argv."""

    def no_parsing(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the demo re-entered the command line")

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", no_parsing)
    assert demo.smoke_local(SETTINGS, model_server.url) == 0
    out = capsys.readouterr().out
    assert f"(local {model_server.url}; from stack settings of {STACK})" in out
    assert out.rstrip().endswith("PASSED")
    model_server.offset = 100.0
    assert demo.smoke_local(SETTINGS, model_server.url) == cli.EXIT_FAILED
    assert "FAILED: predictions" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("variant", "message"),
    [
        ("nobody", "has no variant 'nobody'; it serves champion, challenger, quiet"),
        ("quiet", "quiet is the shadow variant"),
    ],
)
def test_smoke_of_an_unknown_or_shadow_variant_cannot_run(
    model_server: ModelServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    variant: str,
    message: str,
) -> None:
    """--variant names a production variant of the stack, or smoke exits 2 saying which exist."""
    project = two_variant_project(tmp_path)
    clients = smoke.Clients(runtime=runtime_client(model_server.url), sagemaker=None)
    args = variant_args(project, model_server.endpoint_name, "--variant", variant)
    assert smoke.execute(args, clients=clients) == cli.EXIT_CANNOT_RUN
    assert message in capsys.readouterr().err
    assert model_server.bodies == []


def test_one_variant_is_targeted_with_its_own_samples(
    model_server: ModelServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--variant challenger sends TargetVariant challenger only, and reads model2/samples.json."""
    project = two_variant_project(tmp_path)  # the challenger's samples say 50 more
    model_server.variant_offsets["challenger"] = 50.0
    clients = smoke.Clients(runtime=runtime_client(model_server.url), sagemaker=None)
    args = variant_args(
        project, model_server.endpoint_name, "--variant", "challenger", "--calls", "0"
    )
    assert smoke.execute(args, clients=clients) == 0
    out = capsys.readouterr().out
    assert f"smoke test of endpoint {model_server.endpoint_name}, variant challenger" in out
    assert re.search(r"PASS\s+predictions\s+40/40 as expected", out)
    assert set(model_server.target_variants) == {"challenger"}


@pytest.mark.usefixtures("aws_credentials")
def test_without_stack_outputs_the_config_check_is_skipped_not_passed(
    model_server: ModelServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--endpoint-name`` gives no expected config: endpoint-config is SKIP, the rest passes."""
    with mock_aws():
        sagemaker = boto3.client("sagemaker", region_name="us-east-1")
        create_endpoint(sagemaker, model_server.endpoint_name)
        clients = smoke.Clients(runtime=runtime_client(model_server.url), sagemaker=sagemaker)
        args = smoke_args("--endpoint-name", model_server.endpoint_name, "--calls", "0", "--json")
        code = smoke.execute(args, clients=clients)
    checks = statuses(capsys.readouterr().out)
    assert code == 0
    assert checks["in-service"] == "PASS"
    assert checks["endpoint-config"] == "SKIP"


@pytest.mark.usefixtures("aws_credentials")
def test_an_endpoint_that_does_not_exist_cannot_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """DescribeEndpoint refusing an unknown name is exit 2 with the service's reason."""
    outputs = write_outputs(tmp_path / "o.json", **{OUTPUT_ENDPOINT_NAME: "skdeploy-gone"})
    with mock_aws():
        sagemaker = boto3.client("sagemaker", region_name="us-east-1")
        clients = smoke.Clients(runtime=None, sagemaker=sagemaker)
        code = smoke.execute(smoke_args("--outputs", str(outputs)), clients=clients)
    err = capsys.readouterr().err
    assert code == 2
    assert "DescribeEndpoint skdeploy-gone" in err


# --- The control plane: exact answers through botocore's Stubber --------------------------------

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def description(name: str, status: str, config: str, reason: str | None = None) -> dict[str, Any]:
    """A DescribeEndpoint answer (Stubber validates it against the service model)."""
    answer: dict[str, Any] = {
        "EndpointName": name,
        "EndpointArn": f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{name}",
        "EndpointConfigName": config,
        "EndpointStatus": status,
        "CreationTime": NOW,
        "LastModifiedTime": NOW,
    }
    if reason is not None:
        answer["FailureReason"] = reason
    return answer


@pytest.fixture
def stubbed_sagemaker() -> Iterator[tuple[Any, Stubber]]:
    """A real boto3 sagemaker client whose answers come from a Stubber, all of them consumed."""
    client = boto3.client("sagemaker", region_name="us-east-1", **DUMMY_CREDENTIALS)
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def test_a_failed_endpoint_fails_with_its_failure_reason(
    stubbed_sagemaker: tuple[Any, Stubber], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Failed endpoint exits 1, prints FailureReason, and invokes nothing."""
    client, stubber = stubbed_sagemaker
    reason = "The primary container for production variant AllTraffic did not pass the ping check."
    stubber.add_response(
        "describe_endpoint",
        description("skdeploy-dev", "Failed", "skdeploy-dev-config-1", reason),
        {"EndpointName": "skdeploy-dev"},
    )
    outputs = write_outputs(tmp_path / "o.json", **{OUTPUT_ENDPOINT_NAME: "skdeploy-dev"})
    clients = smoke.Clients(runtime=None, sagemaker=client)
    code = smoke.execute(smoke_args("--outputs", str(outputs)), clients=clients)
    out = capsys.readouterr().out
    assert code == 1
    assert re.search(r"FAIL\s+in-service\s+endpoint is Failed: The primary container", out)
    assert re.search(r"SKIP\s+predictions\s+endpoint is not InService", out)


def test_waiting_for_in_service_prints_a_status_line_per_poll(
    stubbed_sagemaker: tuple[Any, Stubber],
    model_server: ModelServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Updating, Updating, InService: three progress lines on stderr, then the checks run."""
    client, stubber = stubbed_sagemaker
    name, config = model_server.endpoint_name, "skdeploy-dev-config-2"
    for status in ("Updating", "Updating", "InService"):
        stubber.add_response(
            "describe_endpoint", description(name, status, config), {"EndpointName": name}
        )
    outputs = write_outputs(
        tmp_path / "o.json", **{OUTPUT_ENDPOINT_NAME: name, OUTPUT_ENDPOINT_CONFIG_NAME: config}
    )
    clients = smoke.Clients(runtime=runtime_client(model_server.url), sagemaker=client)
    code = smoke.execute(
        smoke_args("--outputs", str(outputs), "--calls", "0"), clients=clients, poll_seconds=0.0
    )
    captured = capsys.readouterr()
    polls = [line for line in captured.err.splitlines() if f"endpoint {name}:" in line]
    assert code == 0, captured.out
    assert [line.split(": ")[2].split(" ")[0] for line in polls] == [
        "Updating",
        "Updating",
        "InService",
    ]


def test_a_rolled_back_update_fails_naming_both_configs(
    stubbed_sagemaker: tuple[Any, Stubber],
    model_server: ModelServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """InService on the old config while the stack says the new one: exit 1, both names shown."""
    client, stubber = stubbed_sagemaker
    name = model_server.endpoint_name
    old, new = "skdeploy-dev-config-old", "skdeploy-dev-config-new"
    reason = "Failed to update endpoint: health check failed for the new configuration."
    stubber.add_response(
        "describe_endpoint", description(name, "InService", old, reason), {"EndpointName": name}
    )
    outputs = write_outputs(
        tmp_path / "o.json", **{OUTPUT_ENDPOINT_NAME: name, OUTPUT_ENDPOINT_CONFIG_NAME: new}
    )
    clients = smoke.Clients(runtime=runtime_client(model_server.url), sagemaker=client)
    code = smoke.execute(smoke_args("--outputs", str(outputs), "--calls", "0"), clients=clients)
    out = capsys.readouterr().out
    config_line = next(line for line in out.splitlines() if "endpoint-config" in line)
    assert code == 1
    assert "FAIL" in config_line
    assert old in config_line
    assert new in config_line
    assert reason in config_line


def test_an_endpoint_that_never_becomes_in_service_times_out(
    stubbed_sagemaker: tuple[Any, Stubber],
) -> None:
    """Creating at every poll until the timeout is a failure that names the last status."""
    client, stubber = stubbed_sagemaker
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    for _ in range(5):  # t = 0, 15, 30, 45, 60
        stubber.add_response(
            "describe_endpoint",
            description("e", "Creating", "c"),
            {"EndpointName": "e"},
        )
    check, seen = smoke.check_in_service(
        client,
        "e",
        timeout=60,
        poll_seconds=15,
        report=lambda _: None,
        clock=lambda: now[0],
        sleep=sleep,
    )
    assert check.status == "FAIL"
    assert check.detail == "still Creating after 60 s (--timeout)"
    assert seen is None


# --- Where the endpoint comes from --------------------------------------------------------------


def test_without_pulumi_or_any_endpoint_source_smoke_cannot_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No pulumi on PATH and no --outputs/--endpoint-name/--endpoint-url: exit 2 naming them."""
    monkeypatch.setenv("PATH", str(tmp_path))
    code = main(["smoke", "--stack", STACK, "--project-dir", str(REPO)])
    err = capsys.readouterr().err
    assert code == 2
    for option in ("--outputs", "--endpoint-name", "--endpoint-url"):
        assert option in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "are not JSON"),
        ("[]", "must be a JSON object"),
        (json.dumps({OUTPUT_ENDPOINT_CONFIG_NAME: "c"}), f"have no {OUTPUT_ENDPOINT_NAME}"),
    ],
)
def test_unusable_stack_outputs_cannot_run(
    content: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An outputs file that is not what `pulumi stack output --json` prints is exit 2."""
    path = tmp_path / "outputs.json"
    path.write_text(content)
    code = main(["smoke", "--project-dir", str(REPO), "--outputs", str(path)])
    assert code == 2
    assert message in capsys.readouterr().err


def test_stack_outputs_name_the_endpoint_its_config_and_region(tmp_path: Path) -> None:
    """The parser reads endpointName, endpointConfigName and region; --region overrides."""
    path = write_outputs(
        tmp_path / "o.json",
        **{
            OUTPUT_ENDPOINT_NAME: "skdeploy-prod",
            OUTPUT_ENDPOINT_CONFIG_NAME: "skdeploy-prod-config-9f8e",
            OUTPUT_REGION: "eu-west-1",
        },
    )
    target = smoke.resolve_target(smoke_args("--outputs", str(path)), lambda: SETTINGS)
    assert target == smoke.Target(
        "skdeploy-prod", "eu-west-1", f"stack outputs {path}", None, "skdeploy-prod-config-9f8e"
    )
    overridden = smoke.resolve_target(
        smoke_args("--outputs", str(path), "--region", "us-west-2"), lambda: SETTINGS
    )
    assert overridden.region == "us-west-2"


def test_a_local_url_takes_the_endpoint_name_from_the_stack_settings() -> None:
    """``--endpoint-url`` alone: name and region come from stacks/Pulumi.dev.yaml."""
    target = smoke.resolve_target(
        smoke_args("--stack", "dev", "--endpoint-url", "http://127.0.0.1:8080/"), lambda: SETTINGS
    )
    assert (target.endpoint_name, target.region) == ("skdeploy-dev", "us-east-1")
    assert target.endpoint_url == "http://127.0.0.1:8080"
    assert target.local


def test_aws_without_credentials_cannot_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A real endpoint with no credentials configured is exit 2 with a one-line reason."""
    without_aws_credentials(monkeypatch, tmp_path)
    code = main(
        [
            "smoke",
            "--project-dir",
            str(REPO),
            "--endpoint-name",
            "skdeploy-dev",
            "--region",
            "us-east-1",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1
    assert "no AWS credentials" in err[0]


# --- Samples and the small pieces ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"predictions": [1]}, "'instances' must be a non-empty list"),
        ({"instances": [[1]], "predictions": [1, 2]}, "one expected answer per instance"),
        ({"instances": [[1]], "predictions": [1], "tolerance": -1}, "'tolerance' must be"),
        ({"instances": [[1]], "predictions": [1], "targets": [1, 2]}, "one true value"),
        ({"instances": [[1]], "predictions": [1], "metrics": {"rmse": "x"}}, "'metrics' must"),
    ],
)
def test_unusable_samples_cannot_run(data: dict[str, Any], message: str, tmp_path: Path) -> None:
    """A samples file missing what the checks need is refused with the reason."""
    path = tmp_path / SAMPLES_FILE
    path.write_text(json.dumps(data))
    with pytest.raises(smoke.CannotRun, match=re.escape(message)):
        smoke.load_samples(path)


def test_regression_metrics_match_scikit_learn() -> None:
    """RMSE, MAE and R² computed without numpy equal scikit-learn's on random data."""
    rng = np.random.default_rng(7)
    targets = rng.uniform(-50, 50, size=200).tolist()
    predictions = (np.array(targets) + rng.normal(0, 5, size=200)).tolist()
    ours = smoke.regression_metrics(targets, predictions)
    assert ours["rmse"] == pytest.approx(math.sqrt(mean_squared_error(targets, predictions)))
    assert ours["mae"] == pytest.approx(mean_absolute_error(targets, predictions))
    assert ours["r2"] == pytest.approx(r2_score(targets, predictions))


@pytest.mark.parametrize(
    ("name", "measured", "recorded", "worse"),
    [
        ("rmse", 100.0 + 100e-6 + 0.5e-6, 100.0, False),  # inside 1e-6 relative + 1e-6 absolute
        ("rmse", 100.0 + 100e-6 + 2e-6, 100.0, True),
        ("mae", 10.0, 11.0, False),
        ("r2", 0.981405 - 1.5e-6, 0.981405, False),
        ("r2", 0.981405 - 3e-6, 0.981405, True),
        ("r2", 0.99, 0.98, False),
    ],
)
def test_metrics_are_worse_only_beyond_the_documented_slack(
    name: str, measured: float, recorded: float, worse: bool
) -> None:
    """Lower RMSE/MAE and higher R² are better; round-off within the slack is not worse."""
    assert smoke.is_worse(name, measured, recorded) is worse


@pytest.mark.parametrize(
    ("actual", "expected", "error"),
    [
        (5.004, 5.0, pytest.approx(0.004)),
        ("cat", "cat", 0.0),
        ("cat", "dog", None),
        ([1.0, 2.5], [1.0, 2.0], 0.5),
        ([1.0], [1.0, 2.0], None),
        (float("nan"), 1.0, None),
        (True, 1, None),
    ],
)
def test_prediction_error_is_absolute_and_labels_must_be_equal(
    actual: object, expected: object, error: object
) -> None:
    """Numbers compare by absolute difference; labels, shapes and NaN cannot be within tolerance."""
    assert smoke.prediction_error(actual, expected) == error


@pytest.mark.parametrize(
    ("values", "percent", "expected"),
    [([1.0, 2.0, 3.0, 4.0], 50, 2.0), ([1.0, 2.0, 3.0, 4.0], 95, 4.0), ([7.0], 95, 7.0)],
)
def test_percentiles_use_the_nearest_rank(
    values: list[float], percent: float, expected: float
) -> None:
    """p50 of 1..4 is 2 and p95 is 4: a reported latency was really observed."""
    assert smoke.percentile(values, percent) == expected


def test_a_bad_request_for_records_adds_an_unknown_feature() -> None:
    """Samples keyed by feature name get an extra, unknown name."""
    payload, what = smoke.bad_request({"age": 3})
    assert payload == {"instances": [{"age": 3, "skdeploy_smoke_unknown_feature": 0.0}]}
    assert "skdeploy_smoke_unknown_feature" in what


def test_a_stale_aws_profile_is_a_cannot_run_not_a_failed_check(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unknown AWS_PROFILE exits 2 with one line, not a traceback and exit 1."""
    monkeypatch.setenv("AWS_PROFILE", "skdeploy-no-such-profile")
    code = cli.main(["smoke", "--endpoint-name", "skdeploy-dev", "--region", "us-east-1"])
    assert code == cli.EXIT_CANNOT_RUN
    assert "skdeploy-no-such-profile" in capsys.readouterr().err
