"""The front door's Lambda function (``skdeploy/infra/frontdoor/handler.py``), run for real.

The handler is called as the Lambda runtime calls it, with API Gateway HTTP API events (payload
format 2.0), and invokes the ``local_endpoint`` fixture (``skdeploy serve`` on 127.0.0.1, the
committed model behind sagemaker-containers, answering the SageMaker Runtime API as AWS does)
through its own unchanged boto3 client, pointed there by ``SAGEMAKER_RUNTIME_ENDPOINT_URL``.

Answers the local endpoint cannot give (throttling, ``ModelNotReadyException``, a failing
service) come from botocore's ``Stubber`` on the handler's cached client: botocore parses a
stubbed error exactly like a service answer, so the handler's mapping is what is tested.
"""

from __future__ import annotations

import ast
import base64
import io
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from botocore.stub import Stubber

from skdeploy.core import constants
from skdeploy.infra.frontdoor import handler
from tests.conftest import LocalEndpoint, make_project, running_serve
from tests.support import REPO

pytestmark = pytest.mark.skipif(
    sys.platform == "win32", reason="skdeploy serve needs Linux or macOS (gunicorn)"
)

HANDLER_FILE = REPO / "skdeploy" / "infra" / "frontdoor" / "handler.py"
SAMPLES = json.loads((REPO / "model" / "samples.json").read_text())
TOLERANCE = float(SAMPLES["tolerance"])
#: Third-party imports the Lambda Python 3.12 runtime provides; anything else breaks the zip.
LAMBDA_PROVIDED = {"boto3", "botocore"}
#: The account _skdeploy_serve_app names in its error messages: it must never reach a caller.
ACCOUNT = "123456789012"


@dataclass(frozen=True)
class LambdaContext:
    """The attributes of the Lambda runtime's context object that the handler reads."""

    aws_request_id: str = "lambda-request-1"
    function_name: str = "skdeploy-frontdoor"


def api_event(
    body: str | None,
    *,
    content_type: str | None = constants.CONTENT_JSON,
    accept: str | None = constants.CONTENT_JSON,
    base64_encoded: bool = False,
) -> dict[str, Any]:
    """An API Gateway HTTP API event (payload format 2.0) for ``POST /predict``."""
    headers = {"host": "abc123.execute-api.us-east-1.amazonaws.com", "user-agent": "pytest"}
    if content_type is not None:
        headers["content-type"] = content_type
    if accept is not None:
        headers["accept"] = accept
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "POST /predict",
        "rawPath": "/predict",
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "apiId": "abc123",
            "http": {"method": "POST", "path": "/predict", "protocol": "HTTP/1.1"},
            "requestId": "api-request-1",
            "routeKey": "POST /predict",
            "stage": "$default",
        },
        "isBase64Encoded": base64_encoded,
    }
    if body is not None:
        event["body"] = body
    return event


def json_event(payload: object) -> dict[str, Any]:
    """A JSON request."""
    return api_event(json.dumps(payload))


def call(event: dict[str, Any]) -> dict[str, Any]:
    """Run the handler as Lambda does."""
    return handler.handler(event, LambdaContext())


def body_of(response: dict[str, Any]) -> bytes:
    """The HTTP body API Gateway would send for this response."""
    if response["isBase64Encoded"]:
        return base64.b64decode(response["body"])
    return str(response["body"]).encode("utf-8")


def npy(array: np.ndarray) -> bytes:
    """``array`` as ``.npy`` bytes."""
    out = io.BytesIO()
    np.save(out, array, allow_pickle=False)
    return out.getvalue()


def set_environment(monkeypatch: pytest.MonkeyPatch, endpoint_name: str, url: str) -> None:
    """The function's environment, dummy credentials, and no cached client."""
    monkeypatch.setenv(handler.ENV_ENDPOINT_NAME, endpoint_name)
    monkeypatch.setenv(handler.ENV_RUNTIME_ENDPOINT_URL, url)
    monkeypatch.delenv(handler.ENV_MAX_PAYLOAD_BYTES, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    handler.reset_client()


@pytest.fixture
def front_door(
    local_endpoint: LocalEndpoint, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LocalEndpoint]:
    """The handler configured for the local endpoint, with a fresh client."""
    set_environment(monkeypatch, local_endpoint.endpoint_name, local_endpoint.url)
    yield local_endpoint
    handler.reset_client()


def closed_port_url() -> str:
    """A loopback URL nothing listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def stubbed(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    """A Stubber on the handler's own cached client (its URL is never contacted)."""
    set_environment(monkeypatch, "skdeploy-stubbed", closed_port_url())
    with Stubber(handler.runtime_client()) as stubber:
        yield stubber
    handler.reset_client()


def count_invocations(client: Any) -> list[dict[str, Any]]:
    """A list that receives the parameters of every InvokeEndpoint the client makes."""
    calls: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        calls.append(params)

    client.meta.events.register("before-call.sagemaker-runtime.InvokeEndpoint", record)
    return calls


def direct_model_error(endpoint: LocalEndpoint, body: bytes, content_type: str) -> Any:
    """The ModelError a plain boto3 client gets from the endpoint for this request."""
    client = endpoint.client()
    with pytest.raises(client.exceptions.ModelError) as raised:
        client.invoke_endpoint(
            EndpointName=endpoint.endpoint_name,
            Body=body,
            ContentType=content_type,
            Accept=constants.CONTENT_JSON,
        )
    return raised.value.response


def padded_request(size: int) -> str:
    """A valid one-sample JSON request padded with spaces to exactly ``size`` bytes."""
    request = json.dumps({"instances": [[51.0]]})
    return request + " " * (size - len(request))


def assert_short_502(response: dict[str, Any], reason: str) -> None:
    """A 502 whose body is the short reason and nothing else."""
    assert response["statusCode"] == 502
    assert response["headers"]["content-type"] == constants.CONTENT_JSON
    assert json.loads(body_of(response)) == {"error": reason}


# --- Shared facts -------------------------------------------------------------------------------


def test_the_variables_the_program_sets_are_the_ones_read_here() -> None:
    """The function's environment variable names are those of constants (infra/api.py sets them)."""
    assert handler.ENV_ENDPOINT_NAME == constants.ENV_FRONTDOOR_ENDPOINT_NAME
    assert handler.ENV_MAX_PAYLOAD_BYTES == constants.ENV_FRONTDOOR_MAX_PAYLOAD_BYTES


def test_the_payload_limit_is_the_one_in_constants() -> None:
    """The handler's default body limit is constants.MAX_PAYLOAD_BYTES."""
    assert handler.MAX_PAYLOAD_BYTES == constants.MAX_PAYLOAD_BYTES


def test_the_default_content_type_is_the_one_in_constants() -> None:
    """The handler's JSON content type is constants.CONTENT_JSON."""
    assert handler.CONTENT_JSON == constants.CONTENT_JSON


def test_the_client_waits_longer_than_the_model_may_take() -> None:
    """The read timeout exceeds the model's invocation limit, and retries are few."""
    assert handler.INVOCATION_TIMEOUT_SECONDS == constants.INVOCATION_TIMEOUT_SECONDS
    config = handler.CLIENT_CONFIG
    assert constants.INVOCATION_TIMEOUT_SECONDS < config.read_timeout <= 90
    assert config.retries["total_max_attempts"] <= 3


def test_the_handler_imports_only_what_the_lambda_runtime_has() -> None:
    """handler.py imports the standard library, boto3 and botocore, and never skdeploy."""
    tree = ast.parse(HANDLER_FILE.read_text())
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "relative imports do not exist in a single-file zip"
            imported.add((node.module or "").split(".")[0])
    outside = imported - set(sys.stdlib_module_names) - LAMBDA_PROVIDED - {"__future__"}
    assert outside == set()


def test_the_handler_file_works_alone(tmp_path: Path) -> None:
    """handler.py copied alone into an empty folder imports and answers, as in its zip."""
    (tmp_path / "handler.py").write_bytes(HANDLER_FILE.read_bytes())
    script = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); import handler; "
        "assert 'skdeploy' not in sys.modules; "
        "print(json.dumps(handler.handler({'headers': {}}, None)))"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env[handler.ENV_ENDPOINT_NAME] = "any"
    result = subprocess.run(
        [sys.executable, "-I", "-c", script, str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    response = json.loads(result.stdout.strip().splitlines()[-1])
    assert response["statusCode"] == 400


def test_the_client_uses_the_region_lambda_sets(monkeypatch: pytest.MonkeyPatch) -> None:
    """AWS_REGION alone is enough (Lambda sets it; botocore only reads AWS_DEFAULT_REGION)."""
    set_environment(monkeypatch, "skdeploy-region", closed_port_url())
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    assert handler.runtime_client().meta.region_name == "eu-west-1"
    handler.reset_client()


# --- Against the local endpoint -----------------------------------------------------------------


def test_json_predictions_match_the_recorded_samples(front_door: LocalEndpoint) -> None:
    """A JSON request is answered 200 with the samples' predictions, type and variant."""
    response = call(json_event({"instances": SAMPLES["instances"]}))
    assert response["statusCode"] == 200, response
    assert response["headers"]["content-type"] == constants.CONTENT_JSON
    assert response["headers"]["x-invoked-production-variant"] == constants.DEFAULT_VARIANT
    assert response["isBase64Encoded"] is False
    predictions = json.loads(body_of(response))["predictions"]
    assert predictions == pytest.approx(SAMPLES["predictions"], abs=TOLERANCE)


def test_a_csv_request_is_answered_in_csv(front_door: LocalEndpoint) -> None:
    """CSV in, CSV out: one line per sample with the recorded prediction."""
    rows = "\n".join(",".join(str(v) for v in row) for row in SAMPLES["instances"])
    response = call(api_event(rows, content_type="text/csv", accept="text/csv"))
    assert response["statusCode"] == 200, response
    assert response["headers"]["content-type"].startswith("text/csv")
    lines = body_of(response).decode().split()
    assert [float(line) for line in lines] == pytest.approx(SAMPLES["predictions"], abs=TOLERANCE)


def test_a_base64_encoded_body_is_decoded_before_invoking(front_door: LocalEndpoint) -> None:
    """A binary .npy body that API Gateway base64-encoded reaches the model decoded."""
    raw = npy(np.asarray(SAMPLES["instances"], dtype=np.float64))
    event = api_event(
        base64.b64encode(raw).decode(), content_type=constants.CONTENT_NPY, base64_encoded=True
    )
    response = call(event)
    assert response["statusCode"] == 200, response
    predictions = json.loads(body_of(response))["predictions"]
    assert predictions == pytest.approx(SAMPLES["predictions"], abs=TOLERANCE)


def test_a_binary_answer_is_returned_base64_encoded(front_door: LocalEndpoint) -> None:
    """An .npy answer goes back base64-encoded, with its content type."""
    response = call(api_event(json.dumps(SAMPLES["instances"]), accept=constants.CONTENT_NPY))
    assert response["statusCode"] == 200, response
    assert response["isBase64Encoded"] is True
    assert response["headers"]["content-type"] == constants.CONTENT_NPY
    predictions = np.load(io.BytesIO(body_of(response)), allow_pickle=False)
    assert predictions.tolist() == pytest.approx(SAMPLES["predictions"], abs=TOLERANCE)


def test_a_malformed_body_is_the_models_400_passed_through(front_door: LocalEndpoint) -> None:
    """Malformed JSON is answered 400 with exactly the model's JSON error."""
    bad = '{"instances": [[51.0]'
    response = call(api_event(bad))
    direct = direct_model_error(front_door, bad.encode(), constants.CONTENT_JSON)
    assert response["statusCode"] == 400 == direct["OriginalStatusCode"]
    assert response["headers"]["content-type"] == constants.CONTENT_JSON
    assert body_of(response).decode() == direct["OriginalMessage"]
    assert json.loads(body_of(response))["error"].startswith("malformed JSON")


def test_an_unsupported_content_type_is_the_models_415_passed_through(
    front_door: LocalEndpoint,
) -> None:
    """An unsupported Content-Type is answered 415 with the model's JSON error."""
    response = call(api_event("51", content_type="application/xml"))
    assert response["statusCode"] == 415, response
    error = json.loads(body_of(response))["error"]
    assert "unsupported Content-Type 'application/xml'" in error


def test_a_missing_content_type_is_sent_as_json(front_door: LocalEndpoint) -> None:
    """Without a content-type header the body goes to the model as JSON."""
    response = call(api_event(json.dumps(SAMPLES["instances"]), content_type=None, accept=None))
    assert response["statusCode"] == 200, response
    predictions = json.loads(body_of(response))["predictions"]
    assert predictions == pytest.approx(SAMPLES["predictions"], abs=TOLERANCE)


def test_a_wrong_endpoint_name_is_a_502_that_names_nothing(
    front_door: LocalEndpoint, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unknown endpoint is 502 with a short reason; the account is only in the log."""
    monkeypatch.setenv(handler.ENV_ENDPOINT_NAME, "no-such-endpoint")
    response = call(json_event({"instances": [[51.0]]}))
    assert_short_502(response, handler.REASON_UNAVAILABLE)
    assert ACCOUNT not in response["body"]
    assert "no-such-endpoint" not in response["body"]
    log = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert log["error"] == "ValidationError"
    assert ACCOUNT in log["detail"]


@pytest.mark.parametrize(
    ("limit", "size"),
    [(None, constants.MAX_PAYLOAD_BYTES + 1), ("100", 101)],
    ids=["default-limit", "limit-from-environment"],
)
def test_a_body_over_the_limit_is_413_without_invoking(
    front_door: LocalEndpoint, monkeypatch: pytest.MonkeyPatch, limit: str | None, size: int
) -> None:
    """A body one byte over the payload limit is refused with 413 and never sent."""
    if limit is not None:
        monkeypatch.setenv(handler.ENV_MAX_PAYLOAD_BYTES, limit)
    calls = count_invocations(handler.runtime_client())
    response = call(api_event(padded_request(size)))
    assert response["statusCode"] == 413, response
    assert "larger than" in json.loads(body_of(response))["error"]
    assert calls == []
    at_limit = call(api_event(padded_request(size - 1)))
    assert at_limit["statusCode"] == 200
    assert len(calls) == 1


def test_an_answer_too_large_for_lambda_is_a_502(front_door: LocalEndpoint) -> None:
    """An answer over Lambda's 6 MB response limit once base64-encoded is a 502, not a crash."""
    rows = np.full((700_000, 1), 51.0)  # 5.6 MB of .npy out, 7.5 MB once base64-encoded
    event = api_event(
        base64.b64encode(npy(rows)).decode(),
        content_type=constants.CONTENT_NPY,
        accept=constants.CONTENT_NPY,
        base64_encoded=True,
    )
    assert_short_502(call(event), handler.REASON_TOO_LARGE_ANSWER)


def test_each_request_logs_one_json_line_without_the_body(
    front_door: LocalEndpoint, capsys: pytest.CaptureFixture[str]
) -> None:
    """One JSON line per request: status, latency, endpoint, request ids; never the body."""
    call(json_event({"instances": [[123.456789]]}))
    call(api_event('{"instances": [[987.654321'))
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["status"] == 200
    assert second["status"] == 400
    for record in (first, second):
        assert record["endpoint"] == front_door.endpoint_name
        assert record["requestId"] == LambdaContext.aws_request_id
        assert record["apiRequestId"] == "api-request-1"
        assert isinstance(record["latencyMs"], float)
        assert record["latencyMs"] >= 0
    assert second["error"] == "ModelError"
    assert second["modelStatus"] == 400
    assert "123.456789" not in lines[0]
    assert "987.654321" not in lines[1]


def test_the_client_is_created_once_and_reused(front_door: LocalEndpoint) -> None:
    """Warm invocations reuse the module's client instead of building a new one."""
    call(json_event({"instances": [[51.0]]}))
    first = handler.runtime_client()
    call(json_event({"instances": [[51.0]]}))
    assert handler.runtime_client() is first


# --- A crashing model, served for real ----------------------------------------------------------

CRASHING_INFERENCE = """\
import glob, os, joblib
def model_fn(model_dir):
    return joblib.load(glob.glob(os.path.join(model_dir, '*.joblib'))[0])
def predict_fn(data, model):
    raise RuntimeError('internal detail: the model store is on fire')
"""


@pytest.fixture(scope="module")
def crashing_endpoint(
    runtime_python: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalEndpoint]:
    """An endpoint whose predict_fn raises: the container answers 500 with an HTML page."""
    work = tmp_path_factory.mktemp("crashing-model")
    project = make_project(work / "project")
    (project / "inference" / "inference.py").write_text(CRASHING_INFERENCE)
    with running_serve(project, work / "logs") as endpoint:
        yield endpoint


def test_a_model_5xx_is_a_502_that_leaks_nothing(
    crashing_endpoint: LocalEndpoint,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A model that crashes (ModelError, OriginalStatusCode 500) is a 502 with a short reason."""
    set_environment(monkeypatch, crashing_endpoint.endpoint_name, crashing_endpoint.url)
    response = call(json_event([[51.0]]))
    handler.reset_client()
    assert_short_502(response, handler.REASON_MODEL_FAILED)
    for leak in ("html", "fire", ACCOUNT, "cloudwatch"):
        assert leak not in response["body"].lower()
    log = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert log["error"] == "ModelError"
    assert log["modelStatus"] == 500


# --- No endpoint at all -------------------------------------------------------------------------


def test_a_dead_endpoint_url_is_a_502_quickly(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing listening on the URL: 502 'could not be reached' after at most two attempts."""
    set_environment(monkeypatch, "skdeploy-dead", closed_port_url())
    attempts: list[object] = []
    handler.runtime_client().meta.events.register(
        "before-send.sagemaker-runtime.InvokeEndpoint", lambda **_: attempts.append(1)
    )
    started = time.monotonic()
    response = call(json_event({"instances": [[51.0]]}))
    elapsed = time.monotonic() - started
    handler.reset_client()
    assert_short_502(response, handler.REASON_UNREACHABLE)
    assert len(attempts) <= 2, f"{len(attempts)} attempts"
    assert elapsed < 10, f"took {elapsed:.1f} s"


def test_a_missing_body_is_400_without_invoking(stubbed: Stubber) -> None:
    """No body (or an empty one) is answered 400 before anything is invoked."""
    for event in (api_event(None), api_event("")):
        response = call(event)
        assert response["statusCode"] == 400
        assert json.loads(body_of(response)) == {"error": "the request has no body"}
    stubbed.assert_no_pending_responses()


def test_a_body_that_is_not_base64_is_400(stubbed: Stubber) -> None:
    """A body flagged as base64 that does not decode is a 400, not a 5xx."""
    response = call(api_event("not base64!", base64_encoded=True))
    assert response["statusCode"] == 400
    assert json.loads(body_of(response)) == {"error": "the request body is not valid base64"}


def test_an_unset_endpoint_name_is_a_500(stubbed: Stubber, monkeypatch: pytest.MonkeyPatch) -> None:
    """A function deployed without ENDPOINT_NAME answers 500 and says so in the log only."""
    monkeypatch.delenv(handler.ENV_ENDPOINT_NAME)
    response = call(json_event({"instances": [[51.0]]}))
    assert response["statusCode"] == 500
    assert handler.ENV_ENDPOINT_NAME not in response["body"]


# --- Service answers the local endpoint cannot give (botocore Stubber) --------------------------


@pytest.mark.parametrize(
    ("code", "http_status", "message", "expected"),
    [
        ("ThrottlingException", 400, "Rate exceeded", 429),
        ("TooManyRequestsException", 429, "", 429),
        ("", 429, "", 429),
        ("ModelNotReadyException", 429, "Model is not ready", 502),
        ("ServiceUnavailable", 503, "Service unavailable", 502),
        ("InternalFailure", 500, "Internal failure", 502),
        ("InternalDependencyException", 530, "Dependency failed", 502),
        ("AccessDeniedException", 400, "not authorized to perform", 502),
        ("ValidationError", 400, "Request 1f2e has oversize body.", 413),
        ("", 413, "HTTP content length exceeded 6291456 bytes.", 413),
    ],
)
def test_service_errors_map_to_the_documented_status(
    stubbed: Stubber, code: str, http_status: int, message: str, expected: int
) -> None:
    """Each SageMaker Runtime error answer maps to 429, 413 or 502 with a JSON error only."""
    stubbed.add_client_error(
        "invoke_endpoint",
        service_error_code=code,
        service_message=message,
        http_status_code=http_status,
    )
    response = call(json_event({"instances": [[51.0]]}))
    stubbed.assert_no_pending_responses()
    assert response["statusCode"] == expected
    assert set(json.loads(body_of(response))) == {"error"}
    if message:
        assert message not in response["body"]


def test_a_model_4xx_that_is_not_json_is_wrapped(stubbed: Stubber) -> None:
    """A model 4xx with a plain-text message keeps its status; the message is wrapped in JSON."""
    stubbed.add_client_error(
        "invoke_endpoint",
        service_error_code="ModelError",
        service_message='Received client error (422) from primary with message "bad rows".',
        http_status_code=424,
        response_meta={},
        modeled_fields={"OriginalStatusCode": 422, "OriginalMessage": "bad rows"},
    )
    response = call(json_event({"instances": [[51.0]]}))
    assert response["statusCode"] == 422
    assert json.loads(body_of(response)) == {"error": "bad rows"}
