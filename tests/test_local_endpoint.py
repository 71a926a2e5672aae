"""``skdeploy serve``: the stack's endpoint on 127.0.0.1, answering like the real one.

Everything here is real: the command runs as a subprocess, the model is the committed one (or a
deliberately broken copy), it is served by sagemaker-containers under gunicorn in the 1.2-1
runtime, and requests go over HTTP, through plain ``http.client`` or an unchanged boto3
``sagemaker-runtime`` client whose exceptions are botocore's own parsing of the answers.
"""

from __future__ import annotations

import argparse
import ast
import http.client
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest

from skdeploy.core.artifact import build_for_settings
from skdeploy.core.constants import (
    CONTAINER_CODE_DIR,
    DEFAULT_VARIANT,
    ENV_BASE_DIR,
    ENV_SUBMIT_DIRECTORY,
    LOG_GROUP_PREFIX,
    MAX_PAYLOAD_BYTES,
    MAX_SERVERLESS_PAYLOAD_BYTES,
    RESERVED_MODULE_PREFIX,
    container_environment,
)
from skdeploy.core.settings import load_stack_settings
from skdeploy.tooling import cli, local
from tests.conftest import (
    TEST_ENDPOINT_NAME,
    TEST_STACK,
    LocalEndpoint,
    make_project,
    make_variant_project,
    running_serve,
    serve_command,
)
from tests.support import REPO, shift_predictions

pytestmark = pytest.mark.skipif(
    sys.platform == "win32", reason="skdeploy serve needs Linux or macOS (gunicorn)"
)

SAMPLES = json.loads((REPO / "model" / "samples.json").read_text())
#: A broken model must fail well inside this many seconds (SageMaker takes ~20 minutes).
BROKEN_MODEL_DEADLINE = 30.0


def request(
    endpoint: LocalEndpoint,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One plain HTTP request: status, headers (lower-case names), body."""
    connection = http.client.HTTPConnection("127.0.0.1", endpoint.port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return (
            response.status,
            {k.lower(): v for k, v in response.getheaders()},
            response.read(),
        )
    finally:
        connection.close()


def assert_predictions(predictions: list[float], instances: list[list[float]]) -> None:
    """Predictions equal the recorded ones for these instances, within the recorded tolerance."""
    expected = {
        tuple(i): p for i, p in zip(SAMPLES["instances"], SAMPLES["predictions"], strict=True)
    }
    assert len(predictions) == len(instances)
    for got, instance in zip(predictions, instances, strict=True):
        assert got == pytest.approx(expected[tuple(instance)], abs=SAMPLES["tolerance"])


def assert_still_healthy(endpoint: LocalEndpoint) -> None:
    """The endpoint keeps answering /ping with 200 after an error."""
    assert request(endpoint, "GET", "/ping")[0] == 200


def invoke_json(client: Any, endpoint_name: str, instances: list[list[float]]) -> Any:
    """invoke_endpoint with ``{"instances": ...}`` JSON, asking for JSON back."""
    return client.invoke_endpoint(
        EndpointName=endpoint_name,
        Body=json.dumps({"instances": instances}).encode(),
        ContentType="application/json",
        Accept="application/json",
    )


# --- Unit level: no server ----------------------------------------------------------------------


def _tar(members: list[tarfile.TarInfo]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for member in members:
            data = b"x" * member.size if member.isfile() else None
            tar.addfile(member, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def _file(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = 1
    return info


def _link(name: str, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = "/etc/passwd"
    return info


@pytest.mark.parametrize(
    "members",
    [
        pytest.param([_file("../escape.joblib")], id="parent-dir"),
        pytest.param([_file("/tmp/absolute.joblib")], id="absolute"),
        pytest.param([_file("code/../../escape.py")], id="nested-parent-dir"),
        pytest.param([_link("model.joblib", tarfile.SYMTYPE)], id="symlink"),
        pytest.param([_link("model.joblib", tarfile.LNKTYPE)], id="hardlink"),
        pytest.param([_file("model.joblib"), _file("model.joblib")], id="written-twice"),
    ],
)
def test_extraction_refuses_members_that_escape_or_are_not_files(
    tmp_path: Path, members: list[tarfile.TarInfo]
) -> None:
    """An archive member outside the model directory, a link, or a duplicate is refused."""
    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(_tar(members))
    with pytest.raises(local.UnsafeArchiveError):
        local.extract_artifact(archive, tmp_path / "opt" / "ml" / "model")
    assert not (tmp_path / "escape.joblib").exists()
    assert not (tmp_path / "opt" / "escape.py").exists()


def test_extraction_lays_out_the_artifact_like_the_container(tmp_path: Path) -> None:
    """The built artifact extracts to model files at the root and code/ beside them."""
    settings = load_stack_settings(make_project(tmp_path / "project"), "dev")
    built = build_for_settings(settings)
    target = tmp_path / "opt" / "ml" / "model"
    extracted = local.extract_artifact(built.path, target)
    assert sorted(extracted) == sorted(built.members)
    for name in built.members:
        assert (target / name).read_bytes() == (settings.project_dir / _source(name)).read_bytes()


def _source(member: str) -> str:
    return (
        f"inference/{member.split('/', 1)[1]}" if member.startswith("code/") else f"model/{member}"
    )


def test_server_environment_is_the_model_resources_mapped_to_the_local_base_dir(
    tmp_path: Path,
) -> None:
    """The runtime gets the Model's variables, /opt/ml mapped to the temporary base directory."""
    settings = load_stack_settings(make_project(tmp_path / "project"), "dev")
    base = tmp_path / "opt" / "ml"
    env = local.server_environment(
        settings,
        local.ServeOptions(),
        base_dir=base,
        port=1234,
        parent={"PATH": "/usr/bin", "PYTHONPATH": "/elsewhere", "VIRTUAL_ENV": "/venv"},
    )
    declared = container_environment(settings.region)
    for key, value in declared.items():
        if key != ENV_SUBMIT_DIRECTORY:
            assert env[key] == value
    assert env[ENV_SUBMIT_DIRECTORY] == str(base) + CONTAINER_CODE_DIR[len("/opt/ml") :]
    assert env[ENV_BASE_DIR] == str(base)
    assert env["PATH"] == "/usr/bin"
    assert "PYTHONPATH" not in env
    assert "VIRTUAL_ENV" not in env
    described = json.loads(env[local.CONFIG_ENV])
    assert described["endpoint_name"] == TEST_ENDPOINT_NAME
    assert described["log_group"] == LOG_GROUP_PREFIX + TEST_ENDPOINT_NAME
    assert described["max_payload_bytes"] == MAX_PAYLOAD_BYTES


def test_serverless_options_use_the_serverless_payload_limit() -> None:
    """--serverless lowers the body limit to 4 MB; --max-payload-bytes overrides either."""
    assert local.ServeOptions().payload_limit == MAX_PAYLOAD_BYTES
    assert local.ServeOptions(serverless=True).payload_limit == MAX_SERVERLESS_PAYLOAD_BYTES
    assert local.ServeOptions(serverless=True, max_payload_bytes=10).payload_limit == 10


def serve_args(**changes: Any) -> argparse.Namespace:
    """What `skdeploy serve` parses from a command line without flags, with ``changes``."""
    defaults = dict(
        host="127.0.0.1",
        port=0,
        workers=None,
        startup_timeout=60.0,
        serverless=False,
        max_payload_bytes=None,
        ready_file=None,
    )
    return argparse.Namespace(**{**defaults, **changes})


def test_serve_takes_the_payload_limit_of_a_serverless_stack() -> None:
    """dev is serverless, so serve applies 4 MB there without --serverless; staging does not."""
    dev, staging = (load_stack_settings(REPO, stack) for stack in ("dev", "staging"))
    assert dev.serverless is not None
    assert staging.serverless is None
    assert local.options_from_args(serve_args(), dev).serverless
    assert not local.options_from_args(serve_args(), staging).serverless
    assert local.options_from_args(serve_args(serverless=True), staging).serverless


def test_a_ready_file_that_cannot_be_written_is_refused_before_anything_starts(
    tmp_path: Path,
) -> None:
    """--ready-file under a file is exit 2 with every problem, not a failure once healthy."""
    settings = load_stack_settings(REPO, "staging")
    in_the_way = tmp_path / "a-file"
    in_the_way.write_text("")
    blocked = in_the_way / "logs" / "ready.json"
    with pytest.raises(local.ServeError) as raised:
        local.options_from_args(serve_args(ready_file=blocked, port=70000), settings)
    assert raised.value.exit_code == cli.EXIT_CANNOT_RUN
    assert f"--ready-file {blocked}: {in_the_way} is not a directory" in str(raised.value)
    assert "--port 70000" in str(raised.value)
    dangling = tmp_path / "gone"
    dangling.symlink_to(tmp_path / "nothing-here")
    for bad, message in (
        (tmp_path, f"--ready-file {tmp_path} is a directory"),
        (dangling / "ready.json", f"{dangling} is not a directory"),
    ):
        with pytest.raises(local.ServeError, match=re.escape(message)):
            local.options_from_args(serve_args(ready_file=bad), settings)
    # A folder that does not exist yet is fine: writing the file creates it.
    for ready in (tmp_path / "ready.json", tmp_path / "new" / "folder" / "ready.json"):
        assert local.options_from_args(serve_args(ready_file=ready), settings).ready_file == ready


def _constants(path: Path) -> dict[str, object]:
    return {
        node.targets[0].id: node.value.value
        for node in ast.parse(path.read_text()).body
        if isinstance(node, ast.Assign)
        and isinstance(node.targets[0], ast.Name)
        and isinstance(node.value, ast.Constant)
    }


def test_runtime_side_files_spell_the_names_local_uses() -> None:
    """The files the runtime runs (which cannot import skdeploy) spell the names local uses."""
    layer_1 = local.SERVE_APP.with_name("_skdeploy_serve_runtime.py")
    assert _constants(layer_1)["CONFIG_ENV"] == local.CONFIG_ENV
    assert _constants(local.SERVE_APP)["LOAD_REPORTS_ENV"] == local.LOAD_REPORTS_ENV
    hooks = _constants(local.GUNICORN_CONF)
    assert hooks["_CONFIG_ENV"] == local.CONFIG_ENV
    assert hooks["_TEMP_PREFIX"] == local.TEMP_PREFIX


@pytest.mark.parametrize("path", sorted(local.SERVE_APP.parent.glob("*.py")), ids=lambda p: p.name)
def test_runtime_side_files_keep_to_the_container_python(runtime_python: Path, path: Path) -> None:
    """Files run by the runtime compile under its Python 3.9 and never import skdeploy."""
    compiled = subprocess.run(
        [str(runtime_python), "-m", "py_compile", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert compiled.returncode == 0, compiled.stderr
    tree = ast.parse(path.read_text())
    imported = {
        (node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
    } | {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    assert "skdeploy" not in imported


# --- Command-line refusals (exit 2, before any work) --------------------------------------------


def test_a_framework_without_local_runtime_is_refused_with_its_reason(
    tmp_path: Path, deploy_only_framework: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A deploy-only framework exits 2 and says why it cannot be served locally."""
    config = {"skdeploy:frameworkVersion": deploy_only_framework}
    project = make_project(tmp_path / "project", config=config)
    code = cli.main(["serve", "--stack", TEST_STACK, "--project-dir", str(project), "--port", "0"])
    assert code == 2
    assert "cannot be served locally: a made-up reason" in capsys.readouterr().err


def test_a_port_in_use_is_refused(tmp_path: Path) -> None:
    """Serving on a port another process listens on exits 2 naming the port."""
    project = make_project(tmp_path / "project")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        command = [*serve_command(project)[:-1], str(port)]
        result = subprocess.run(
            command, cwd=REPO, capture_output=True, text=True, timeout=60, check=False
        )
    assert result.returncode == 2
    assert f"127.0.0.1:{port}" in result.stderr


# --- Predictions ---------------------------------------------------------------------------------


def test_boto3_predictions_match_the_recorded_samples(local_endpoint: LocalEndpoint) -> None:
    """invoke_endpoint through an unchanged boto3 client returns the recorded predictions."""
    response = invoke_json(local_endpoint.client(), TEST_ENDPOINT_NAME, SAMPLES["instances"])
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert response["ContentType"] == "application/json"
    assert response["InvokedProductionVariant"] == DEFAULT_VARIANT
    assert_predictions(json.loads(response["Body"].read())["predictions"], SAMPLES["instances"])


@pytest.mark.parametrize(
    ("content_type", "encode"),
    [
        ("application/json", lambda rows: json.dumps(rows).encode()),
        ("text/csv", lambda rows: "\n".join(",".join(map(str, r)) for r in rows).encode()),
    ],
    ids=["json", "csv"],
)
def test_plain_http_invocations_match_the_recorded_samples(
    local_endpoint: LocalEndpoint, content_type: str, encode: Any
) -> None:
    """POST /invocations, as the container receives it, returns the recorded predictions."""
    status, headers, body = request(
        local_endpoint,
        "POST",
        "/invocations",
        encode(SAMPLES["instances"]),
        {"Content-Type": content_type, "Accept": "application/json"},
    )
    assert status == 200, body
    assert headers["content-type"].startswith("application/json")
    assert_predictions(json.loads(body)["predictions"], SAMPLES["instances"])


def test_ping_answers_200_with_an_empty_body(local_endpoint: LocalEndpoint) -> None:
    """GET /ping is the container's health check: 200, nothing in the body."""
    status, _, body = request(local_endpoint, "GET", "/ping")
    assert (status, body) == (200, b"")


def test_requests_are_logged_with_method_path_status_and_time(
    local_endpoint: LocalEndpoint,
) -> None:
    """Each request leaves one line: method, path, status and milliseconds."""
    request(local_endpoint, "GET", "/not-served")
    pattern = re.compile(r"^GET /not-served 404 \d+ms$", re.MULTILINE)
    deadline = time.monotonic() + 5
    while not pattern.search(local_endpoint.stdout.read_text()):
        assert time.monotonic() < deadline, local_endpoint.stdout.read_text()[-2000:]
        time.sleep(0.05)
    assert f"listening on {local_endpoint.url} (endpoint {TEST_ENDPOINT_NAME})" in (
        local_endpoint.stdout.read_text()
    )


def test_200_concurrent_invocations_over_8_threads_all_succeed(
    local_endpoint: LocalEndpoint,
) -> None:
    """200 boto3 invocations from 8 threads all succeed with the right predictions."""
    instances = SAMPLES["instances"]
    clients = [local_endpoint.client() for _ in range(8)]
    errors: list[BaseException] = []
    done = []
    lock = threading.Lock()

    def worker(index: int) -> None:
        for n in range(index, 200, 8):
            rows = [instances[n % len(instances)]]
            try:
                response = invoke_json(clients[index], TEST_ENDPOINT_NAME, rows)
                assert_predictions(json.loads(response["Body"].read())["predictions"], rows)
            except BaseException as exc:  # collected, then reported all at once
                with lock:
                    errors.append(exc)
            else:
                with lock:
                    done.append(n)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(worker, range(8)))
    assert errors == []
    assert sorted(done) == list(range(200))


# --- Errors, in the service's shapes -------------------------------------------------------------


def test_an_unknown_endpoint_name_is_a_validation_error(local_endpoint: LocalEndpoint) -> None:
    """Another endpoint name raises ValidationError 'Endpoint X of account Y not found.'."""
    client = local_endpoint.client()
    with pytest.raises(client.exceptions.ValidationError) as raised:
        invoke_json(client, "no-such-endpoint", SAMPLES["instances"][:1])
    error = raised.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert re.fullmatch(
        r"Endpoint no-such-endpoint of account \d{12} not found\.", error["Error"]["Message"]
    )
    assert_still_healthy(local_endpoint)


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"months,salary", "text/csv", 400),
        (b'{"instances": [[1.0, 2.0]]}', "application/json", 400),
        (b"<row>1</row>", "application/xml", 415),
    ],
    ids=["csv-header", "wrong-feature-count", "unsupported-type"],
)
def test_a_request_the_model_refuses_is_a_model_error_with_its_status(
    local_endpoint: LocalEndpoint, body: bytes, content_type: str, status: int
) -> None:
    """A 4xx from the container reaches boto3 as ModelError (424) carrying the original answer."""
    client = local_endpoint.client()
    with pytest.raises(client.exceptions.ModelError) as raised:
        client.invoke_endpoint(EndpointName=TEST_ENDPOINT_NAME, Body=body, ContentType=content_type)
    error = raised.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert error["OriginalStatusCode"] == status
    assert "error" in json.loads(error["OriginalMessage"])
    assert error["LogStreamArn"].endswith(f":log-group:{LOG_GROUP_PREFIX}{TEST_ENDPOINT_NAME}")
    assert error["Error"]["Message"].startswith(f"Received client error ({status}) from primary")
    assert_still_healthy(local_endpoint)


def test_a_body_over_6_mib_is_refused_with_413(local_endpoint: LocalEndpoint) -> None:
    """A body one byte over 6 MiB is refused by the service (413) before reaching the model."""
    client = local_endpoint.client()
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        client.invoke_endpoint(
            EndpointName=TEST_ENDPOINT_NAME,
            Body=b" " * (MAX_PAYLOAD_BYTES + 1),
            ContentType="text/csv",
        )
    error = raised.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert error["Error"]["Code"] == "413"
    assert str(MAX_PAYLOAD_BYTES) in error["Error"]["Message"]
    assert_still_healthy(local_endpoint)


def test_a_body_of_exactly_6_mib_reaches_the_model(local_endpoint: LocalEndpoint) -> None:
    """A body at the limit passes the size check: the model answers it (here, refuses blanks)."""
    client = local_endpoint.client()
    with pytest.raises(client.exceptions.ModelError) as raised:
        client.invoke_endpoint(
            EndpointName=TEST_ENDPOINT_NAME, Body=b" " * MAX_PAYLOAD_BYTES, ContentType="text/csv"
        )
    assert raised.value.response["OriginalStatusCode"] == 400
    assert_still_healthy(local_endpoint)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/"),
        ("GET", "/health"),
        ("POST", "/predict"),
        ("GET", f"/endpoints/{TEST_ENDPOINT_NAME}/invocations"),
        ("POST", f"/endpoints/{TEST_ENDPOINT_NAME}/invocations/extra"),
    ],
)
def test_paths_nginx_does_not_forward_are_404(
    local_endpoint: LocalEndpoint, method: str, path: str
) -> None:
    """Anything but /ping, /invocations, /execution-parameters and the runtime route is 404 {}."""
    status, _, body = request(local_endpoint, method, path, b"[]" if method == "POST" else None)
    assert (status, body) == (404, b"{}")


# --- Servers of their own ------------------------------------------------------------------------


def test_a_broken_model_fails_fast_with_the_reason(tmp_path: Path, runtime_python: Path) -> None:
    """A corrupt model.joblib makes serve exit 1 within seconds with the reason, never unpickled."""
    project = make_project(tmp_path / "project")
    (project / "model" / "model.joblib").write_bytes(b"this is not a joblib file\n" * 10)
    started = time.monotonic()
    result = subprocess.run(
        serve_command(project),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=BROKEN_MODEL_DEADLINE + 30,
        check=False,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 1, result.stderr
    assert elapsed < BROKEN_MODEL_DEADLINE
    # The inspection gate fails closed: a file it cannot read is never handed to joblib.load.
    assert "cannot be inspected, so it is not loaded" in result.stderr
    assert "not a readable joblib/pickle file" in result.stderr
    assert "listening on" not in result.stdout


def test_transform_fn_with_other_handlers_is_the_containers_user_error(
    tmp_path: Path, runtime_python: Path
) -> None:
    """transform_fn beside input_fn fails at start with the container's UserError."""
    project = make_project(tmp_path / "project")
    (project / "inference" / "inference.py").write_text(
        "import glob, os, joblib\n"
        "def model_fn(model_dir):\n"
        "    return joblib.load(glob.glob(os.path.join(model_dir, '*.joblib'))[0])\n"
        "def input_fn(body, content_type):\n"
        "    return body\n"
        "def transform_fn(model, body, content_type, accept):\n"
        "    return body, accept\n"
    )
    result = subprocess.run(
        serve_command(project), cwd=REPO, capture_output=True, text=True, timeout=90, check=False
    )
    assert result.returncode == 1, result.stderr
    assert "UserError: Cannot use transform_fn implementation with input_fn" in result.stderr


@pytest.fixture(scope="module")
def default_handlers_endpoint(
    runtime_python: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalEndpoint]:
    """An endpoint whose inference.py defines only model_fn: the container's defaults serve."""
    work = tmp_path_factory.mktemp("default-handlers")
    project = make_project(work / "project")
    (project / "inference" / "inference.py").write_text(
        "import glob, os, joblib\n"
        "def model_fn(model_dir):\n"
        "    return joblib.load(glob.glob(os.path.join(model_dir, '*.joblib'))[0])\n"
    )
    with running_serve(project, work / "logs") as endpoint:
        yield endpoint


def test_the_containers_default_handlers_serve_a_model_fn_only_module(
    default_handlers_endpoint: LocalEndpoint,
) -> None:
    """With only model_fn, JSON rows are decoded, predicted and encoded by the defaults."""
    response = default_handlers_endpoint.client().invoke_endpoint(
        EndpointName=TEST_ENDPOINT_NAME,
        Body=json.dumps(SAMPLES["instances"]).encode(),
        ContentType="application/json",
        Accept="application/json",
    )
    assert_predictions(json.loads(response["Body"].read()), SAMPLES["instances"])


def test_the_default_input_fn_answers_a_charset_parameter_with_500(
    default_handlers_endpoint: LocalEndpoint,
) -> None:
    """sagemaker-containers 2.8.6 turns the default input_fn's 415 into a 500, as in the image."""
    client = default_handlers_endpoint.client()
    with pytest.raises(client.exceptions.ModelError) as raised:
        client.invoke_endpoint(
            EndpointName=TEST_ENDPOINT_NAME, Body=b"51", ContentType="text/csv; charset=utf-8"
        )
    assert raised.value.response["OriginalStatusCode"] == 500
    assert raised.value.response["Error"]["Message"].startswith("Received server error (500)")
    assert_still_healthy(default_handlers_endpoint)


def test_a_serverless_endpoint_refuses_a_body_over_4_mb_as_validation_error(
    tmp_path: Path, runtime_python: Path
) -> None:
    """With --serverless, a body over 4 MB is a ValidationError 'has oversize body'."""
    project = make_project(tmp_path / "project")
    with running_serve(project, tmp_path / "logs", "--serverless") as endpoint:
        client = endpoint.client()
        with pytest.raises(client.exceptions.ValidationError) as raised:
            client.invoke_endpoint(
                EndpointName=TEST_ENDPOINT_NAME,
                Body=b" " * (MAX_SERVERLESS_PAYLOAD_BYTES + 1),
                ContentType="text/csv",
            )
        assert raised.value.response["Error"]["Message"].endswith("has oversize body.")
        response = invoke_json(client, TEST_ENDPOINT_NAME, SAMPLES["instances"][:2])
        assert_predictions(
            json.loads(response["Body"].read())["predictions"], SAMPLES["instances"][:2]
        )


def variant_project(tmp_path: Path) -> Path:
    """A project whose stack runs the model twice: the challenger through handlers adding 1000."""
    project = make_variant_project(tmp_path / "project", inferenceDir="handlers2")
    handlers = project / "handlers2"
    shutil.copytree(project / "inference", handlers)
    shift_predictions(handlers, 1000.0)
    return project


def test_serve_narrows_the_stack_to_one_variant_and_names_the_others(tmp_path: Path) -> None:
    """--variant picks a production or shadow variant; none is the first; a wrong name is exit 2."""
    project = variant_project(tmp_path)
    settings = load_stack_settings(project, TEST_STACK)
    first = local.one_variant(settings, None)
    assert (first.model_dir, first.inference_dir) == (project / "model", project / "inference")
    challenger = local.one_variant(settings, "challenger")
    assert challenger.inference_dir == project / "handlers2"
    assert (challenger.variants, challenger.shadow) == ((), None)
    assert local.one_variant(settings, "quiet").model_dir == project / "model2"
    with pytest.raises(local.ServeError) as raised:
        local.one_variant(settings, "nobody")
    assert raised.value.exit_code == cli.EXIT_CANNOT_RUN
    assert "it serves champion, challenger, quiet" in str(raised.value)
    plain = load_stack_settings(REPO, "staging")
    assert local.one_variant(plain, None) is plain


def test_serve_variant_serves_that_variants_own_handlers(
    tmp_path: Path, runtime_python: Path
) -> None:
    """`skdeploy serve --variant challenger` answers through the challenger's handlers (+1000)."""
    project = variant_project(tmp_path)
    instances = SAMPLES["instances"][:3]
    body = json.dumps({"instances": instances}).encode()
    with running_serve(project, tmp_path / "logs", "--variant", "challenger") as endpoint:
        client = endpoint.client()
        response = invoke_json(client, TEST_ENDPOINT_NAME, instances)
        predictions = json.loads(response["Body"].read())["predictions"]
        assert response["InvokedProductionVariant"] == "challenger"
        targeted = client.invoke_endpoint(
            EndpointName=TEST_ENDPOINT_NAME, Body=body, TargetVariant="challenger"
        )
        assert targeted["InvokedProductionVariant"] == "challenger"
        with pytest.raises(client.exceptions.ValidationError, match="serves variant challenger"):
            client.invoke_endpoint(
                EndpointName=TEST_ENDPOINT_NAME, Body=body, TargetVariant="champion"
            )
        ready = json.loads((tmp_path / "logs" / "ready.json").read_text())
    assert_predictions([p - 1000.0 for p in predictions], instances)
    assert ready["variant"] == "challenger"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
def test_a_stop_signal_ends_serve_cleanly(
    tmp_path: Path, runtime_python: Path, signum: signal.Signals
) -> None:
    """SIGTERM or Ctrl-C exits 0, stops gunicorn, frees the port and removes the temp dir."""
    project = make_project(tmp_path / "project")
    with running_serve(project, tmp_path / "logs") as endpoint:
        assert endpoint.base_dir.is_dir()
        assert request(endpoint, "GET", "/ping")[0] == 200
        endpoint.process.send_signal(signum)
        assert endpoint.process.wait(timeout=30) == 0
        assert not endpoint.base_dir.exists()
        assert not (tmp_path / "logs" / "ready.json").exists()
        with pytest.raises(ProcessLookupError):
            _signal_group(endpoint.server_pid)
        with pytest.raises(ConnectionRefusedError):  # nothing listens on the port any more
            request(endpoint, "GET", "/ping")


def _signal_group(pid: int) -> None:
    os.killpg(pid, 0)


def test_gunicorn_stops_and_cleans_up_when_serve_is_killed(
    tmp_path: Path, runtime_python: Path
) -> None:
    """If serve dies without cleaning up (kill -9), gunicorn stops and removes the temp dir."""
    project = make_project(tmp_path / "project")
    with running_serve(project, tmp_path / "logs") as endpoint:
        endpoint.process.kill()
        endpoint.process.wait(timeout=10)
        deadline = time.monotonic() + 20
        while True:
            try:
                _signal_group(endpoint.server_pid)
            except ProcessLookupError:
                break
            assert time.monotonic() < deadline, "gunicorn outlived skdeploy serve"
            time.sleep(0.2)
        assert not endpoint.base_dir.exists()
        with pytest.raises(ConnectionRefusedError):
            request(endpoint, "GET", "/ping")


def test_serve_refuses_a_pickle_that_would_run_a_command(tmp_path: Path) -> None:
    """A model file importing posix.system is refused before anything unpickles it."""
    project = make_project(tmp_path / "project")
    marker = tmp_path / "pwned"
    (project / "model" / "model.joblib").write_bytes(
        b"\x80\x02cposix\nsystem\nX"
        + len(f"touch {marker}").to_bytes(4, "little")
        + f"touch {marker}".encode()
        + b"\x85R."
    )
    result = subprocess.run(
        serve_command(project), cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 1, result.stderr
    assert "posix.system" in result.stderr
    assert not marker.exists()


def test_user_modules_named_like_the_local_servers_files_are_not_mistaken_for_them(
    tmp_path: Path, runtime_python: Path
) -> None:
    """A user's serve_app.py or gunicorn_conf.py is theirs, as in the container: never ours."""
    project = make_project(tmp_path / "project")
    handlers = project / "inference"
    # Our own files there are named with the reserved prefix, which check refuses in handlers.
    runtime_dir = REPO / "skdeploy" / "tooling" / "_runtime"
    ours = sorted(p.stem for p in runtime_dir.glob("*.py") if p.name != "__init__.py")
    assert all(name.startswith(RESERVED_MODULE_PREFIX) for name in ours)
    names = ["serve_app", "gunicorn_conf", "app", "server", "worker"]
    checks = []
    for name in names:
        (handlers / f"{name}.py").write_text("USER_MODULE = True\n")
        checks.append(f"import {name}\nassert getattr({name}, 'USER_MODULE', False), {name}\n")
    inference = handlers / "inference.py"
    inference.write_text("".join(checks) + inference.read_text())
    with running_serve(project, tmp_path / "logs") as endpoint:
        response = invoke_json(endpoint.client(), TEST_ENDPOINT_NAME, SAMPLES["instances"])
        assert_predictions(json.loads(response["Body"].read())["predictions"], SAMPLES["instances"])
