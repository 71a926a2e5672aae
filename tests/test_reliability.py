"""Reliability: fuzzed requests, sustained load, and faults, each with a tested outcome.

The handlers are fuzzed twice: in-process with hypothesis for volume (arbitrary bodies, content
types and Accept values through input_fn → predict_fn → output_fn, given the body the way the
container gives it), and over real HTTP against ``skdeploy serve`` for a smaller, fixed-seed
batch. Either way a request may only end in a 2xx, or a 4xx with a JSON error: never an escaped
exception (a 500 HTML page behind a real endpoint), a 5xx, or a hang.

Faults, and the outcome each test pins down (model file corrupt: tests/test_local_endpoint.py):

- model file missing: serve exits 2 in seconds, naming the model directory;
- model_fn raising: serve exits 1 in seconds with the traceback, before listening;
- a predict longer than ``SAGEMAKER_MODEL_SERVER_TIMEOUT``: gunicorn kills the worker, the
  client's connection closes without a response, a new worker answers ``/ping`` and predicts;
- a client that disconnects mid-body: nothing is answered to it, the worker survives;
- the disk filling up while the artifact is written (a real EFBIG from RLIMIT_FSIZE): OSError,
  no partial file, and the next build succeeds.
"""

from __future__ import annotations

import errno
import http.client
import io
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn.linear_model import LinearRegression, LogisticRegression

from skdeploy.core.artifact import build_artifact
from skdeploy.core.constants import ENV_TIMEOUT
from tests.conftest import (
    TEST_ENDPOINT_NAME,
    LocalEndpoint,
    make_project,
    running_serve,
    serve_command,
)
from tests.support import REPO, load_inference, load_wire, wire_limits

pytestmark = pytest.mark.skipif(
    sys.platform == "win32", reason="skdeploy serve and RLIMIT_FSIZE need Linux or macOS"
)

SAMPLES = json.loads((REPO / "model" / "samples.json").read_text())
JSON, CSV, NPY = "application/json", "text/csv", "application/x-npy"
#: What sagemaker-containers hands input_fn as text (``Request.content``); the rest is bytes.
UTF8_TYPES = (JSON, CSV)
#: A fault must be reported well inside this many seconds (SageMaker takes ~20 minutes).
FAST_FAILURE_SECONDS = 30.0


inference = load_inference("inference_under_fuzz")
wire = load_wire()


@cache
def models() -> dict[str, Any]:
    """A regressor on three unnamed features, and a classifier fitted on named columns."""
    import pandas as pd

    x = np.array([[0.0, 1.0, 2.0], [1.0, 0.0, 1.0], [2.0, 2.0, 0.0], [3.0, 1.0, 1.0]])
    return {
        "regressor": LinearRegression().fit(x, [1.0, 4.0, 2.0, 7.0]),
        "classifier": LogisticRegression().fit(
            pd.DataFrame(x, columns=["alpha", "beta", "gamma"]), ["no", "yes", "no", "yes"]
        ),
    }


# --- What clients send --------------------------------------------------------------------------

#: Codec names a charset parameter may carry: text codecs, aliases, and codecs that are not
#: text encodings at all (``codecs.lookup`` finds them, ``bytes.decode`` refuses them).
CHARSETS = (
    "utf-8",
    "UTF-8",
    "utf-16",
    "utf-32",
    "latin-1",
    "ascii",
    "cp1252",
    "utf-7",
    "idna",
    "punycode",
    "unicode_escape",
    "undefined",
    "rot13",
    "base64",
    "hex",
    "zlib",
    "bz2",
    "uu",
    "no-such-charset",
    "",
)
MEDIA_TYPES = (
    JSON,
    CSV,
    NPY,
    "Text/CSV",
    "APPLICATION/JSON",
    "text/plain",
    "application/xml",
    "*/*",
)
ACCEPTS = (
    JSON,
    CSV,
    NPY,
    "*/*",
    "text/*",
    "application/*",
    "text/html",
    "application/json;q=0, */*",
    "text/csv;q=0.5, application/x-npy",
    "*/*;q=0",
    "application/json;q=nan",
    "application/json;q=x",
    ",,,",
)
#: Printable ASCII: what an HTTP client can put in a header without the client refusing it.
HEADER_TEXT = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)


def _param(name: str, values: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return values.map(lambda value: f"; {name}={value}")


content_types = st.one_of(
    st.none(),
    st.sampled_from(MEDIA_TYPES),
    st.tuples(
        st.sampled_from(MEDIA_TYPES),
        st.lists(
            st.one_of(
                _param("charset", st.sampled_from(CHARSETS)),
                _param("probabilities", st.sampled_from(["true", "FALSE", "yes", ""])),
                _param("boundary", HEADER_TEXT.filter(lambda s: ";" not in s)),
            ),
            max_size=3,
        ),
    ).map(lambda parts: parts[0] + "".join(parts[1])),
    HEADER_TEXT,
)
accepts = st.one_of(st.none(), st.sampled_from(ACCEPTS), HEADER_TEXT)

numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.integers(min_value=10**308, max_value=10**320),  # too large for a float64
)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=8)),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.sampled_from(["alpha", "beta", "gamma", "instances", "x"]), children),
    ),
    max_leaves=30,
)
rows = st.lists(st.lists(st.one_of(numbers, st.none()), min_size=0, max_size=5), max_size=6)
records = st.lists(
    st.dictionaries(
        st.sampled_from(["alpha", "beta", "gamma", "delta"]),
        st.one_of(numbers, st.none(), st.text(max_size=4), st.lists(numbers, max_size=2)),
    ),
    max_size=4,
)
json_documents = st.one_of(
    json_values,
    rows,
    records,
    st.fixed_dictionaries(
        {"instances": st.one_of(rows, records)},
        optional={"probabilities": st.one_of(st.booleans(), st.integers(), st.text(max_size=3))},
    ),
)
csv_cells = st.one_of(
    numbers.map(str), st.sampled_from(["", " ", "nan", "inf", "-", "1e", "0x1F", '"1"', "a"])
)
csv_bodies = st.lists(st.lists(csv_cells, max_size=5), max_size=6).flatmap(
    lambda table: st.sampled_from(["\n", "\r\n", ";"]).map(
        lambda newline: newline.join(",".join(row) for row in table)
    )
)
npy_arrays = hnp.arrays(
    dtype=st.one_of(
        hnp.floating_dtypes(),
        hnp.integer_dtypes(),
        hnp.unsigned_integer_dtypes(),
        hnp.boolean_dtypes(),
        hnp.complex_number_dtypes(),
        hnp.unicode_string_dtypes(max_len=3),
        hnp.datetime64_dtypes(),
    ),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
)


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _damaged(data: bytes, where: int, byte: int, cut: int) -> bytes:
    """``data`` with one byte replaced and the tail cut: a corrupt header or a short body."""
    if not data:
        return data
    index = where % len(data)
    damaged = data[:index] + bytes([byte]) + data[index + 1 :]
    return damaged[: max(0, len(damaged) - cut)]


bodies = st.one_of(
    st.binary(max_size=512),
    st.text(max_size=200).map(lambda text: text.encode("utf-8", "surrogatepass")),
    json_documents.map(lambda document: json.dumps(document).encode()),
    csv_bodies.map(str.encode),
    npy_arrays.map(_npy),
    st.tuples(
        npy_arrays.map(_npy),
        st.integers(0, 200),
        st.integers(0, 255),
        st.integers(0, 16),
    ).map(lambda args: _damaged(*args)),
    st.integers(1, 100_000).map(lambda depth: b"[" * depth + b"]" * depth),
)


def container_arguments(
    body: bytes, content_type: str | None, accept: str | None
) -> tuple[str | bytes, str, str]:
    """What sagemaker-containers 2.8.6 passes the handlers for this request.

    A missing Content-Type is JSON; JSON and CSV bodies arrive as text decoded with utf-8 and
    ``errors="replace"`` (werkzeug's ``get_data(as_text=True)``), anything else as bytes; a
    missing Accept or ``*/*`` becomes ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT`` (JSON).
    """
    content_type = content_type or JSON
    payload: str | bytes = body.decode("utf-8", "replace") if content_type in UTF8_TYPES else body
    accept = JSON if not accept or accept == "*/*" else accept
    return payload, content_type, accept


def assert_answer(status: int, mimetype: str, data: bytes) -> None:
    """A 2xx in a type the handlers produce, or a 4xx whose body is ``{"error": "..."}``."""
    assert 200 <= status < 300 or 400 <= status < 500, (status, data[:300])
    if status >= 400:
        assert mimetype == JSON, (status, mimetype, data[:300])
        document = json.loads(data)
        assert list(document) == ["error"], document
        assert isinstance(document["error"], str)
        assert document["error"]
    else:
        assert mimetype in (JSON, CSV, NPY), mimetype


# --- Fuzzing in-process -------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # 1e308 x coefficients
@settings(
    max_examples=300,
    deadline=timedelta(seconds=2),
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    model=st.sampled_from(["regressor", "classifier"]),
    body=bodies,
    content_type=content_types,
    accept=accepts,
)
@example(model="regressor", body=b"[[1e400, 1, 2]]", content_type=JSON, accept=JSON)
@example(model="regressor", body=b"[[" + b"9" * 400 + b", 1, 2]]", content_type=JSON, accept=JSON)
@example(model="regressor", body=b"[" * 100_000 + b"]" * 100_000, content_type=JSON, accept=JSON)
@example(model="regressor", body=b"1,2,3", content_type="text/csv; charset=rot13", accept=JSON)
@example(model="regressor", body=b"1,2,3", content_type="text/csv; charset=undefined", accept=CSV)
@example(
    model="classifier",
    body=b'[{"alpha": 1, "beta": 2, "gamma": 1' + b"0" * 400 + b"}]",
    content_type=JSON,
    accept=JSON,
)
def test_fuzzed_requests_get_a_2xx_or_a_json_4xx_in_process(
    model: str, body: bytes, content_type: str | None, accept: str | None
) -> None:
    """Any body, Content-Type and Accept ends in a 2xx or a JSON 4xx; no handler raises."""
    payload, as_content_type, as_accept = container_arguments(body, content_type, accept)
    response = inference.output_fn(
        inference.predict_fn(inference.input_fn(payload, as_content_type), models()[model]),
        as_accept,
    )
    assert_answer(response.status_code, response.mimetype, response.get_data())


#: What bulk JSON bodies are made of, plus the characters that break them.
BULK_ALPHABET = "0123456789" * 3 + '[[]], , ,.-+eE \n\t\r"{}:naNIfinitytrueflsul\x00\u00a0'
#: Number spellings np.loadtxt reads and JSON forbids (the bulk reader's documented leniency):
#: a leading + or a bare dot, a trailing dot, leading zeros, and whitespace JSON does not know.
LENIENT = re.compile(r"(^|[^0-9eE])[+.]|\.($|[^0-9])|(^|[^0-9.eE])0[0-9]|[\x0b\x0c\u00a0]")


def numeric_rows_text(rows: list[list[float]], compact: bool) -> str:
    return json.dumps(rows, separators=(",", ":") if compact else (", ", ": "))


bulk_bodies = st.one_of(
    st.text(alphabet=BULK_ALPHABET, max_size=300),
    st.lists(
        st.lists(st.floats(allow_nan=False, width=32), min_size=1, max_size=4),
        min_size=1,
        max_size=6,
    ).flatmap(
        lambda rows: st.tuples(st.just(rows), st.booleans()).map(lambda t: numeric_rows_text(*t))
    ),
)


def mutated(text: str, data: st.DataObject) -> str:
    """``text`` with a few characters inserted, deleted or replaced."""
    for _ in range(data.draw(st.integers(0, 3))):
        at = data.draw(st.integers(0, len(text)))
        new = data.draw(st.text(alphabet=BULK_ALPHABET, max_size=2))
        cut = data.draw(st.integers(0, 2))
        text = text[:at] + new + text[at + cut :]
    return text


@settings(
    max_examples=400,
    deadline=timedelta(seconds=2),
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    body=bulk_bodies,
    wrapped=st.booleans(),
    data=st.data(),
    values_per_line=st.sampled_from([1, 4, 4096]),
)
@example(body="[[1, 2], [3, 4]]", wrapped=False, data=None, values_per_line=4)
@example(body="[[1, 2], [3, 4]]", wrapped=True, data=None, values_per_line=4)
@example(body="[[1, 2], [3], [4, 5, 6]]", wrapped=False, data=None, values_per_line=4096)
@example(
    body="[[nan, 1], [2, 3]]", wrapped=False, data=None, values_per_line=4
)  # JSON has no lower-case nan
@example(
    body="[[1, 2]x[3, 4]]", wrapped=False, data=None, values_per_line=4
)  # no comma between the rows
@example(
    body="[[1, 2\n3, 4]]", wrapped=False, data=None, values_per_line=4
)  # a line break splits a row
def test_the_bulk_json_reader_never_raises_and_agrees_with_json_loads(
    body: str, wrapped: bool, data: st.DataObject | None, values_per_line: int
) -> None:
    """Forced onto any body, the bulk reader answers like json.loads, or gives way to it.

    It may only accept more than json.loads where a number is spelled the lenient way it
    documents (``+1``, ``.5``, ``5.``, ``007``).
    """
    text = f'{{"instances": {body}}}' if wrapped else body
    if data is not None:
        text = mutated(text, data)
    with wire_limits(BULK_JSON_CHARS=0, VALUES_PER_LINE=values_per_line):
        bulk = wire.bulk_json_rows(text)
        forced = inference.input_fn(text, JSON)
    general = inference.input_fn(text, JSON)
    event("bulk reader: " + ("gave way" if bulk is None else "read the body"))
    if bulk is None:
        assert type(forced) is type(general)
        return
    assert isinstance(forced, wire.Batch)
    if isinstance(general, wire.Batch):
        assert forced.data.tobytes() == general.data.tobytes(), text
        assert forced.data.shape == general.data.shape
    else:
        assert LENIENT.search(text), (text, general.message)


# --- Over HTTP ----------------------------------------------------------------------------------


def http_request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> tuple[int, str, bytes]:
    """One request on a new connection: status, Content-Type, body."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type") or "", response.read()
    finally:
        connection.close()


def assert_healthy(port: int) -> None:
    """``/ping`` answers 200."""
    assert http_request(port, "GET", "/ping")[0] == 200


@settings(
    max_examples=200,
    deadline=timedelta(seconds=10),
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(body=bodies, content_type=content_types, accept=accepts)
@example(body=b"[" * 100_000 + b"]" * 100_000, content_type=JSON, accept=JSON)
@example(body=b"51", content_type="text/csv; charset=rot13", accept=JSON)
def test_fuzzed_requests_get_a_2xx_or_a_json_4xx_over_http(
    local_endpoint: LocalEndpoint, body: bytes, content_type: str | None, accept: str | None
) -> None:
    """The same fuzz, fixed seed, sent to POST /invocations of skdeploy serve: no 5xx, no hang."""
    headers = {}
    if content_type is not None:
        headers["Content-Type"] = content_type
    if accept is not None:
        headers["Accept"] = accept
    status, mimetype, data = http_request(
        local_endpoint.port, "POST", "/invocations", body, headers
    )
    assert_answer(status, mimetype.split(";")[0].strip(), data)


def test_the_endpoint_is_healthy_after_the_http_fuzz(local_endpoint: LocalEndpoint) -> None:
    """/ping still answers 200 and a good request still predicts after the fuzzed requests."""
    assert_healthy(local_endpoint.port)
    status, _, data = http_request(
        local_endpoint.port,
        "POST",
        "/invocations",
        json.dumps(SAMPLES["instances"][:3]).encode(),
        {"Content-Type": JSON, "Accept": JSON},
    )
    assert status == 200
    predictions = json.loads(data)["predictions"]
    assert predictions == pytest.approx(SAMPLES["predictions"][:3], abs=SAMPLES["tolerance"])


# --- Load ---------------------------------------------------------------------------------------

LOAD_REQUESTS = 5000
LOAD_CONCURRENCY = 16
LOAD_DEADLINE_SECONDS = 120.0


def load_mix() -> list[tuple[str, bytes, dict[str, str], int]]:
    """Good and bad requests with the status each must get: (name, body, headers, status)."""
    instances = SAMPLES["instances"]
    npy = _npy(np.array(instances[:5], dtype=np.float64))
    return [
        ("json-rows", json.dumps(instances).encode(), {"Content-Type": JSON}, 200),
        ("csv-one-row", b"51\n", {"Content-Type": CSV, "Accept": CSV}, 200),
        ("npy", npy, {"Content-Type": NPY, "Accept": NPY}, 200),
        (
            "csv-charset",
            b"51\n149\n",
            {"Content-Type": "text/csv; charset=utf-8", "Accept": "*/*"},
            200,
        ),
        ("malformed-json", b"[[51", {"Content-Type": JSON}, 400),
        ("wrong-width", b"1,2,3\n", {"Content-Type": CSV}, 400),
        ("unsupported-type", b"51", {"Content-Type": "application/xml"}, 415),
        ("unsupported-accept", b"51", {"Content-Type": CSV, "Accept": "text/html"}, 406),
        ("pickled-npy", b"\x93NUMPY\x01\x00garbage", {"Content-Type": NPY}, 400),
    ]


def run_load(
    port: int,
    mix: list[tuple[str, bytes, dict[str, str], int]],
    check: Callable[[int, int, bytes], str | None],
) -> tuple[int, list[str]]:
    """Send LOAD_REQUESTS from LOAD_CONCURRENCY keep-alive connections; return (sent, problems)."""
    lock = threading.Lock()
    counter = iter(range(LOAD_REQUESTS))
    sent = [0]
    problems: list[str] = []
    deadline = time.monotonic() + LOAD_DEADLINE_SECONDS

    def worker() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            while time.monotonic() < deadline:
                with lock:
                    index = next(counter, None)
                if index is None:
                    return
                kind = index % len(mix)
                _, body, headers, _ = mix[kind]
                try:
                    connection.request("POST", "/invocations", body=body, headers=headers)
                    response = connection.getresponse()
                    data = response.read()
                except (OSError, http.client.HTTPException) as exc:
                    problem: str | None = f"{mix[kind][0]}: {type(exc).__name__}: {exc}"
                    connection.close()
                    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                else:
                    problem = check(kind, response.status, data)
                with lock:
                    sent[0] += 1
                    if problem is not None:
                        problems.append(problem)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(LOAD_CONCURRENCY)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sent[0], problems


def test_5000_mixed_requests_at_concurrency_16_get_exactly_their_answers(
    local_endpoint: LocalEndpoint,
) -> None:
    """5,000 good and bad requests from 16 connections: each gets its own answer, within 120 s."""
    mix = load_mix()
    expected: list[tuple[int, bytes]] = []
    for name, body, headers, status in mix:  # one at a time first: the reference answers
        got, _, data = http_request(local_endpoint.port, "POST", "/invocations", body, headers)
        assert got == status, (name, got, data[:200])
        expected.append((got, data))

    def check(kind: int, status: int, data: bytes) -> str | None:
        if (status, data) != expected[kind]:
            return f"{mix[kind][0]}: {status} {data[:120]!r}, expected {expected[kind][0]}"
        return None

    started = time.monotonic()
    sent, problems = run_load(local_endpoint.port, mix, check)
    elapsed = time.monotonic() - started
    assert sent == LOAD_REQUESTS, f"only {sent} requests within {LOAD_DEADLINE_SECONDS:.0f} s"
    assert elapsed < LOAD_DEADLINE_SECONDS
    assert problems == [], f"{len(problems)} unexpected answers, e.g. {problems[:5]}"
    assert_healthy(local_endpoint.port)


# --- Faults: the model ---------------------------------------------------------------------------


def test_a_missing_model_file_stops_serve_at_once_naming_the_directory(
    tmp_path: Path, runtime_python: Path
) -> None:
    """With no model.joblib, serve exits 2 within seconds and says which directory has none."""
    project = make_project(tmp_path / "project")
    (project / "model" / "model.joblib").unlink()
    started = time.monotonic()
    result = subprocess.run(
        serve_command(project),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=FAST_FAILURE_SECONDS + 30,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert time.monotonic() - started < FAST_FAILURE_SECONDS
    assert f"no *.joblib file in {project / 'model'}" in result.stderr
    assert "listening on" not in result.stdout


def test_model_fn_raising_stops_serve_with_its_traceback(
    tmp_path: Path, runtime_python: Path
) -> None:
    """A model_fn that raises makes serve exit 1 within seconds, its traceback and message shown."""
    project = make_project(tmp_path / "project")
    (project / "inference" / "inference.py").write_text(
        "def model_fn(model_dir):\n"
        "    raise RuntimeError('model_fn refused to load ' + model_dir)\n"
    )
    started = time.monotonic()
    result = subprocess.run(
        serve_command(project),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=FAST_FAILURE_SECONDS + 30,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert time.monotonic() - started < FAST_FAILURE_SECONDS
    assert "Traceback (most recent call last)" in result.stderr
    assert "RuntimeError: model_fn refused to load" in result.stderr
    assert "in model_fn" in result.stderr
    assert "the model failed to load" in result.stderr
    assert "listening on" not in result.stdout


# --- Faults: the server ---------------------------------------------------------------------------

#: gunicorn's --timeout for the slow-predict test: low, yet above the first request's lazy model
#: load (imports scikit-learn) on a busy machine, which gunicorn would otherwise also kill.
SLOW_TIMEOUT_SECONDS = 8
#: A first feature of this value makes the handler below busy for longer than the timeout.
SLOW_MARKER = 999

SLOW_PREDICT = f'''

_predict_fn = predict_fn


def predict_fn(data, model):
    """Busy (CPU-bound, as a slow model is) for two minutes when the first value is the marker."""
    if isinstance(data, wire.Batch) and data.data[0, 0] == {SLOW_MARKER}:
        import time

        end = time.monotonic() + 120
        while time.monotonic() < end:
            pass
    return _predict_fn(data, model)
'''


def wait_until_healthy(port: int, seconds: float) -> float:
    """Poll ``/ping`` until it answers 200; return the seconds it took (fail after ``seconds``)."""
    started = time.monotonic()
    last = "no answer"
    while time.monotonic() - started < seconds:
        try:
            status = http_request(port, "GET", "/ping", timeout=5)[0]
        except OSError as exc:
            last = f"{type(exc).__name__}: {exc}"
        else:
            if status == 200:
                return time.monotonic() - started
            last = f"status {status}"
        time.sleep(0.2)
    pytest.fail(f"/ping did not recover within {seconds:.0f} s ({last})")


def test_a_predict_slower_than_the_timeout_is_cut_off_and_the_endpoint_recovers(
    tmp_path: Path, runtime_python: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """gunicorn kills a worker stuck past the timeout: no answer to that client, then 200s again."""
    monkeypatch.setenv(ENV_TIMEOUT, str(SLOW_TIMEOUT_SECONDS))
    project = make_project(tmp_path / "project")
    with (project / "inference" / "inference.py").open("a") as handlers:
        handlers.write(SLOW_PREDICT)
    with running_serve(project, tmp_path / "logs") as endpoint:
        good = http_request(endpoint.port, "POST", "/invocations", b"51", {"Content-Type": CSV})
        assert good[0] == 200
        started = time.monotonic()
        with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
            http_request(
                endpoint.port,
                "POST",
                "/invocations",
                f"{SLOW_MARKER}".encode(),
                {"Content-Type": CSV},
                timeout=90,
            )
        cut_off = time.monotonic() - started
        assert SLOW_TIMEOUT_SECONDS - 1 <= cut_off < 60
        wait_until_healthy(endpoint.port, 60)
        assert (
            http_request(endpoint.port, "POST", "/invocations", b"51", {"Content-Type": CSV})
            == good
        )
        assert "WORKER TIMEOUT" in endpoint.stderr.read_text()


def gunicorn_processes(server_pid: int) -> set[int]:
    """gunicorn's master and its workers (the master's children), from /proc."""
    children = {server_pid}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == server_pid:
                children.add(int(entry.name))
    return children


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
@pytest.mark.parametrize(
    "path",
    ["/invocations", f"/endpoints/{TEST_ENDPOINT_NAME}/invocations"],
    ids=["container", "runtime-api"],
)
def test_clients_that_disconnect_mid_body_leave_the_endpoint_healthy(
    local_endpoint: LocalEndpoint, path: str
) -> None:
    """20 clients announcing 100 kB, sending 3 bytes, then closing: same workers, still 200s."""
    before = gunicorn_processes(local_endpoint.server_pid)
    assert len(before) >= 2
    for _ in range(20):
        with socket.create_connection(("127.0.0.1", local_endpoint.port), timeout=10) as client:
            client.sendall(
                f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/csv\r\n"
                "Content-Length: 100000\r\n\r\n51\n".encode()
            )
    assert_healthy(local_endpoint.port)
    status, _, data = http_request(
        local_endpoint.port, "POST", "/invocations", b"51\n", {"Content-Type": CSV}
    )
    assert status == 200
    assert json.loads(data)["predictions"] == pytest.approx(
        [SAMPLES["predictions"][0]], abs=SAMPLES["tolerance"]
    )
    assert gunicorn_processes(local_endpoint.server_pid) == before


# --- Faults: the disk ---------------------------------------------------------------------------

#: Runs in a child process, whose files may not grow past LIMIT bytes (RLIMIT_FSIZE): writing
#: past it fails with EFBIG, as a full disk fails with ENOSPC, after part of the file is written.
FULL_DISK_SCRIPT = """
import resource, signal, sys
from pathlib import Path
from skdeploy.core.artifact import build_artifact

model_dir, inference_dir, build_dir, limit = sys.argv[1:]
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # else the kernel kills the process
resource.setrlimit(resource.RLIMIT_FSIZE, (int(limit), int(limit)))
try:
    build_artifact(Path(model_dir), Path(inference_dir), ["model.joblib"], Path(build_dir))
except OSError as exc:
    print(exc.errno)
    sys.exit(3)
"""


def test_a_disk_that_fills_up_mid_build_leaves_no_partial_artifact(tmp_path: Path) -> None:
    """Writing past RLIMIT_FSIZE fails the build with EFBIG, leaves no file, and a retry works."""
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "model.joblib").write_bytes(os.urandom(3_000_000))  # does not compress
    build_dir = tmp_path / "build"
    limit = 1_000_000
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            FULL_DISK_SCRIPT,
            str(model_dir),
            str(REPO / "inference"),
            str(build_dir),
            str(limit),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert result.returncode == 3, result.stderr
    assert int(result.stdout.strip()) == errno.EFBIG
    left = [p for p in build_dir.rglob("*") if p.is_file() and p.name != "file-digests.json"]
    assert left == []  # the digest index is metadata of the inputs, not a partial artifact
    built = build_artifact(model_dir, REPO / "inference", ["model.joblib"], build_dir)
    assert built.bytes > limit
    assert built.path.is_file()
