"""What the HTTP surfaces do with input nobody should send (issue 13, findings 11, 12 and 13).

- The front door's Lambda handler (``skdeploy/infra/frontdoor/handler.py``) answers every malformed
  event with a 400 JSON error in its usual shape, and never raises.
- ``inference.py`` refuses a charset it does not know with 415, over real HTTP, and says in the
  README which charsets each content type takes.
- ``skdeploy serve``'s container routes refuse a body over the payload limit before reading it,
  serve ``GET /execution-parameters`` as the scikit-learn container does for batch transform, and
  answer unknown paths and wrong methods with JSON, never HTML.

The HTTP tests talk to the session's ``local_endpoint`` (the real ``skdeploy serve`` on 127.0.0.1)
with ``http.client`` or, where a client would send the whole body first, a raw socket.
"""

from __future__ import annotations

import base64
import io
import json
import socket
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from skdeploy.core.constants import MAX_PAYLOAD_BYTES
from skdeploy.infra.frontdoor import handler
from tests.conftest import LocalEndpoint
from tests.support import load_inference, load_wire
from tests.test_frontdoor import LambdaContext, api_event, closed_port_url, set_environment
from tests.test_local_endpoint import request as http_call

pytestmark = pytest.mark.skipif(
    sys.platform == "win32", reason="skdeploy serve needs Linux or macOS (gunicorn)"
)

JSON = "application/json"
CSV = "text/csv"


# --- Finding 11: the front door and malformed events ---------------------------------------------


@pytest.fixture
def no_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    """The handler with a Stubber holding no answers: any invocation would fail the test."""
    set_environment(monkeypatch, "skdeploy-malformed", closed_port_url())
    with Stubber(handler.runtime_client()) as stubber:
        yield stubber
    handler.reset_client()


def _event(**fields: Any) -> dict[str, Any]:
    """A well-formed JSON request event with some fields replaced."""
    event = api_event(json.dumps({"instances": [[51.0]]}))
    event.update(fields)
    return event


def _headers(**headers: Any) -> dict[str, Any]:
    return {"content-type": JSON, "accept": JSON, **headers}


MALFORMED_EVENTS = [
    pytest.param(None, id="event-none"),
    pytest.param([], id="event-empty-list"),
    pytest.param([{"body": "[[51]]"}], id="event-list"),
    pytest.param("POST /predict", id="event-string"),
    pytest.param(42, id="event-number"),
    pytest.param(True, id="event-bool"),
    pytest.param(b'{"body": "[[51]]"}', id="event-bytes"),
    pytest.param({}, id="event-empty-dict"),
    pytest.param(_event(body=51), id="body-number"),
    pytest.param(_event(body=["[[51]]"]), id="body-list"),
    pytest.param(_event(body={"instances": [[51]]}), id="body-dict"),
    pytest.param(_event(body=b"[[51]]"), id="body-bytes"),
    pytest.param(_event(body="[[51.0]]\ud800"), id="body-lone-surrogate"),
    pytest.param(_event(body="\udcff"), id="body-only-surrogate"),
    pytest.param(_event(headers=["content-type", JSON]), id="headers-list"),
    pytest.param(_event(headers="content-type: application/json"), id="headers-string"),
    pytest.param(_event(headers=7), id="headers-number"),
    pytest.param(_event(headers=_headers(**{"content-type": 5})), id="header-value-number"),
    pytest.param(_event(headers=_headers(**{"content-type": [JSON]})), id="header-value-list"),
    pytest.param(_event(headers=_headers(**{"content-type": None})), id="header-value-none"),
    pytest.param(
        _event(headers=_headers(**{"content-type": "text/csv\ud800"})), id="header-surrogate"
    ),
    pytest.param(
        _event(headers=_headers(**{"content-type": "text/csv\r\nx-evil: 1"})), id="header-crlf"
    ),
    pytest.param(_event(headers=_headers(accept="application/json\x00")), id="header-nul"),
    pytest.param(_event(headers=_headers(accept="text/csv\u00e9")), id="header-non-ascii"),
    pytest.param(_event(headers={5: JSON}), id="header-name-number"),
    pytest.param(_event(isBase64Encoded="true"), id="base64-flag-string-true"),
    pytest.param(_event(isBase64Encoded="false"), id="base64-flag-string-false"),
    pytest.param(_event(isBase64Encoded=1), id="base64-flag-number"),
    pytest.param(_event(isBase64Encoded=[True]), id="base64-flag-list"),
    pytest.param(_event(body="not base64!", isBase64Encoded=True), id="base64-invalid"),
    pytest.param(_event(body="W1s1MV1", isBase64Encoded=True), id="base64-bad-padding"),
    pytest.param(_event(body="W1s1MV1d\u00e9", isBase64Encoded=True), id="base64-non-ascii"),
    pytest.param(_event(body="W1s1MV1d\ud800", isBase64Encoded=True), id="base64-surrogate"),
    pytest.param(_event(requestContext=["api-request-1"]), id="request-context-list"),
    pytest.param(_event(requestContext="api-request-1"), id="request-context-string"),
]


@pytest.mark.parametrize("event", MALFORMED_EVENTS)
def test_a_malformed_event_is_a_400_json_error_without_invoking(
    no_endpoint: Stubber, event: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Whatever the event is, the handler answers 400 {"error": ...} and logs one line."""
    response = handler.handler(event, LambdaContext())
    no_endpoint.assert_no_pending_responses()
    assert response["statusCode"] == 400, response
    assert response["headers"]["content-type"] == JSON
    assert response["headers"]["x-request-id"] == LambdaContext.aws_request_id
    assert response["isBase64Encoded"] is False
    document = json.loads(response["body"])
    assert set(document) == {"error"}
    assert isinstance(document["error"], str)
    assert document["error"]
    json.dumps(response)  # what the Lambda runtime does with it: must not raise either
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["status"] == 400
    assert record["requestId"] == LambdaContext.aws_request_id


def test_a_well_formed_event_still_reaches_the_endpoint(no_endpoint: Stubber) -> None:
    """The checks refuse only malformed events: a plain one is invoked as before."""
    no_endpoint.add_response(
        "invoke_endpoint",
        answer(b'{"predictions": [1.0]}'),
        {"EndpointName": "skdeploy-malformed", "Body": b"[[51]]", "ContentType": CSV},
    )
    event = api_event("[[51]]", content_type=CSV, accept=None)
    event["headers"]["x-extra"] = "caf\u00e9"  # a header the endpoint never sees is not checked
    event["requestContext"] = None
    response = handler.handler(event, LambdaContext())
    no_endpoint.assert_no_pending_responses()
    assert response["statusCode"] == 200, response


def test_a_base64_body_and_a_missing_flag_are_still_read(no_endpoint: Stubber) -> None:
    """isBase64Encoded true decodes; absent or null means text, as before."""
    for flag in (True, None):
        body = b"[[51]]"
        event = api_event(
            base64.b64encode(body).decode() if flag else body.decode(), base64_encoded=bool(flag)
        )
        if flag is None:
            event["isBase64Encoded"] = None
        no_endpoint.add_response(
            "invoke_endpoint",
            answer(b'{"predictions": [1.0]}'),
            {
                "EndpointName": "skdeploy-malformed",
                "Body": body,
                "ContentType": JSON,
                "Accept": JSON,
            },
        )
        assert handler.handler(event, LambdaContext())["statusCode"] == 200
    no_endpoint.assert_no_pending_responses()


def answer(body: bytes) -> dict[str, Any]:
    """An InvokeEndpoint answer as botocore parses it."""
    return {"Body": StreamingBody(io.BytesIO(body), len(body)), "ContentType": JSON}


# --- HTTP helpers --------------------------------------------------------------------------------


def raw_exchange(endpoint: LocalEndpoint, head: bytes, body: Iterator[bytes]) -> bytes:
    """Send a request head, then body pieces until the server answers; return what it answered.

    The server must answer while the client is still sending (or holding back) the body: the
    socket's timeout fails the test if it waits for a body that never comes.
    """
    with socket.create_connection(("127.0.0.1", endpoint.port), timeout=20) as sock:
        sock.sendall(head)
        for piece in body:
            try:
                sock.sendall(piece)
            except OSError:  # the server answered and closed: read what it said
                break
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
        head_part, _, rest = answer.partition(b"\r\n\r\n")
        length = 0
        for line in head_part.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        return head_part + b"\r\n\r\n" + rest


def parse_answer(answer: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


def assert_json_error(headers: dict[str, str], body: bytes) -> dict[str, Any]:
    assert headers["content-type"].split(";")[0].strip() == JSON, (headers, body[:200])
    document = json.loads(body)
    assert set(document) == {"error"}, document
    return dict(document)


# --- Finding 12: charsets over HTTP --------------------------------------------------------------

ROW = "51"

#: (Content-Type, body, status): what the README promises for charsets.
CHARSET_TABLE = [
    pytest.param(CSV, ROW.encode(), 200, id="csv-plain"),
    pytest.param("text/csv; charset=utf-8", ROW.encode(), 200, id="csv-utf8"),
    pytest.param("text/csv;charset=UTF-8", ROW.encode(), 200, id="csv-utf8-upper-no-space"),
    pytest.param('text/csv; CHARSET="utf-8"', ROW.encode(), 200, id="csv-utf8-quoted-name-upper"),
    pytest.param("TEXT/CSV ; Charset = Utf8", ROW.encode(), 200, id="csv-utf8-alias-spaces"),
    pytest.param("text/csv; charset=us-ascii", ROW.encode(), 200, id="csv-us-ascii"),
    pytest.param("text/csv; charset=ISO-8859-1", ROW.encode(), 200, id="csv-latin1"),
    pytest.param("text/csv; charset=windows-1252", ROW.encode(), 200, id="csv-cp1252"),
    pytest.param("text/csv; charset=utf-16", ROW.encode("utf-16"), 200, id="csv-utf16"),
    pytest.param("text/csv; charset=bogus", ROW.encode(), 415, id="csv-bogus"),
    pytest.param('text/csv; charset=""', ROW.encode(), 415, id="csv-empty-quoted"),
    pytest.param("text/csv; charset=", ROW.encode(), 415, id="csv-empty"),
    pytest.param("text/csv; charset", ROW.encode(), 415, id="csv-no-value"),
    pytest.param("text/csv; charset='utf-8'", ROW.encode(), 415, id="csv-single-quoted"),
    pytest.param(
        "text/csv; charset=utf-8; charset=latin-1", ROW.encode(), 415, id="csv-repeated-differ"
    ),
    pytest.param("text/csv; charset=utf-8; CHARSET=utf-8", ROW.encode(), 415, id="csv-repeated"),
    pytest.param("text/csv; charset=idna", ROW.encode(), 415, id="csv-idna-not-a-charset"),
    pytest.param("text/csv; charset=unicode_escape", ROW.encode(), 415, id="csv-python-codec"),
    pytest.param("text/csv; charset=rot13", ROW.encode(), 415, id="csv-rot13"),
    pytest.param("text/csv; charset=base64", b"NTE=", 415, id="csv-base64"),
    pytest.param("text/csv; charset=utf-7", ROW.encode(), 415, id="csv-utf7"),
    pytest.param("text/csv; charset=utf-8", "51\u00e9".encode("latin-1"), 400, id="csv-bad-bytes"),
    pytest.param("application/json; charset=utf-8", b"[[51]]", 200, id="json-utf8"),
    pytest.param("application/json; charset=UTF8", b"[[51]]", 200, id="json-utf8-alias"),
    pytest.param("application/json; charset=latin-1", b"[[51]]", 415, id="json-latin1"),
    pytest.param(
        "application/json; charset=utf-16", "[[51]]".encode("utf-16"), 415, id="json-utf16"
    ),
    pytest.param("application/json; charset=bogus", b"[[51]]", 415, id="json-bogus"),
    pytest.param("application/x-npy; charset=bogus", b"\x93NUMPY", 415, id="npy-charset"),
]


@pytest.mark.parametrize(("content_type", "body", "status"), CHARSET_TABLE)
def test_charsets_over_http(
    local_endpoint: LocalEndpoint, content_type: str, body: bytes, status: int
) -> None:
    """POST /invocations: known charsets predict, unknown ones are 415, all errors are JSON."""
    got, headers, data = http_call(
        local_endpoint,
        "POST",
        "/invocations",
        body,
        {"Content-Type": content_type, "Accept": JSON},
    )
    assert got == status, data[:300]
    if status == 200:
        assert len(json.loads(data)["predictions"]) == 1
    else:
        message = assert_json_error(headers, data)["error"]
        if status == 415:
            assert "charset" in message


@pytest.mark.parametrize(
    ("content_type", "body", "status"),
    [row for row in CHARSET_TABLE if row.values[2] == 415],
)
def test_an_unknown_charset_is_415_also_for_a_text_body(
    content_type: str, body: bytes, status: int
) -> None:
    """input_fn refuses the charset itself, whether the body arrives as bytes or as text."""
    inference = load_inference("inference_charset_text")
    for payload in (body, body.decode("latin-1")):
        rejection = inference.input_fn(payload, content_type)
        assert isinstance(rejection, load_wire().Rejection), (payload, content_type)
        assert rejection.status == status


def test_the_charset_of_a_content_type_is_read_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 18: a repeated Content-Type does no codec work after its first request."""
    import codecs

    inference = load_inference("inference_charset_cache")
    calls: list[str] = []
    real = codecs.lookup
    monkeypatch.setattr(codecs, "lookup", lambda name: calls.append(name) or real(name))
    for _ in range(5):
        assert inference.input_fn(b"51", "text/csv; charset=utf-8").data.shape == (1, 1)
        assert inference.input_fn(b"51", "text/csv; charset=bogus").status == 415
    assert len(calls) <= 2, calls


# --- Finding 13: the container routes ------------------------------------------------------------


def test_a_body_over_the_limit_by_content_length_is_refused_before_it_is_read(
    local_endpoint: LocalEndpoint,
) -> None:
    """50 MB announced: 413 JSON at once, while the client still holds the body back."""
    size = 50 * 1000 * 1000
    head = (
        f"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/csv\r\n"
        f"Content-Length: {size}\r\n\r\n"
    ).encode()
    # Only 64 KiB of the 50 MB is ever sent: a server that read the body would wait for the rest.
    status, headers, body = parse_answer(raw_exchange(local_endpoint, head, iter([b"5" * 65536])))
    assert status == 413
    assert str(MAX_PAYLOAD_BYTES) in assert_json_error(headers, body)["error"]
    assert http_call(local_endpoint, "GET", "/ping")[0] == 200


def test_a_whole_oversize_body_sent_first_still_gets_the_413(
    local_endpoint: LocalEndpoint,
) -> None:
    """A client that sends everything before reading (http.client) still reads the 413."""
    status, headers, body = http_call(
        local_endpoint, "POST", "/invocations", b"5\n" * (MAX_PAYLOAD_BYTES // 2 + 1), {}
    )
    assert status == 413
    assert_json_error(headers, body)


def _chunks(total: int, piece: int = 1 << 16) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        data = b"5\n" * (piece // 2)
        sent += len(data)
        yield b"%x\r\n%s\r\n" % (len(data), data)
    yield b"0\r\n\r\n"


def test_an_oversize_chunked_body_is_refused_once_past_the_limit(
    local_endpoint: LocalEndpoint,
) -> None:
    """No Content-Length: reading stops past the limit and the answer is 413 JSON."""
    head = (
        b"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/csv\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )

    def body() -> Iterator[bytes]:
        # The limit and a little more, then the client stalls: an endless stream, as far as the
        # server can tell. It must answer without waiting for the end.
        pieces = _chunks(MAX_PAYLOAD_BYTES + (1 << 17))
        for piece in pieces:
            if piece == b"0\r\n\r\n":
                return
            yield piece

    status, headers, data = parse_answer(raw_exchange(local_endpoint, head, body()))
    assert status == 413
    assert str(MAX_PAYLOAD_BYTES) in assert_json_error(headers, data)["error"]
    assert http_call(local_endpoint, "GET", "/ping")[0] == 200


def test_a_chunked_body_within_the_limit_is_predicted(local_endpoint: LocalEndpoint) -> None:
    """Chunked transfer under the limit still reaches the model."""
    head = (
        b"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/csv\r\n"
        b"Accept: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    status, _, data = parse_answer(
        raw_exchange(
            local_endpoint, head, iter([b"3\r\n51\n\r\n", b"4\r\n149\n\r\n", b"0\r\n\r\n"])
        )
    )
    assert status == 200, data
    assert len(json.loads(data)["predictions"]) == 2


def test_execution_parameters_answer_as_the_container_does_for_batch_transform(
    local_endpoint: LocalEndpoint,
) -> None:
    """GET /execution-parameters: JSON with the three fields batch transform reads."""
    status, headers, body = http_call(local_endpoint, "GET", "/execution-parameters")
    assert status == 200, body
    assert headers["content-type"].split(";")[0] == JSON
    assert json.loads(body) == {
        # skdeploy serve runs one gunicorn worker unless told otherwise.
        "MaxConcurrentTransforms": 1,
        "BatchStrategy": "MULTI_RECORD",
        "MaxPayloadInMB": 6,
    }


def test_execution_parameters_follow_the_workers_and_the_payload_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """MaxConcurrentTransforms is the container's worker count; MaxPayloadInMB the 6 MiB limit."""
    inference = load_inference("inference_execution_parameters")
    assert load_wire().MAX_PAYLOAD_IN_MB * 1024 * 1024 == MAX_PAYLOAD_BYTES
    monkeypatch.setenv("SAGEMAKER_MODEL_SERVER_WORKERS", "3")
    assert (
        json.loads(inference.execution_parameters_fn().get_data())["MaxConcurrentTransforms"] == 3
    )
    for unusable in ("", "zero", "0", "-2"):
        monkeypatch.setenv("SAGEMAKER_MODEL_SERVER_WORKERS", unusable)
        document = json.loads(inference.execution_parameters_fn().get_data())
        assert document["MaxConcurrentTransforms"] >= 1


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/invocations", 405),
        ("PUT", "/invocations", 405),
        ("POST", "/ping", 405),
        ("DELETE", "/ping", 405),
        ("POST", "/execution-parameters", 405),
        ("GET", "/invocations/extra", 404),
        ("POST", "/invocationsX", 404),
        ("GET", "/pingx", 404),
        ("GET", "/ping/", 404),
        ("GET", "/execution-parameters/more", 404),
    ],
)
def test_unknown_paths_and_wrong_methods_are_json_errors(
    local_endpoint: LocalEndpoint, method: str, path: str, status: int
) -> None:
    """Paths nginx forwards that the container does not serve, and wrong methods: JSON, no HTML."""
    got, headers, body = http_call(
        local_endpoint, method, path, b"51" if method in ("POST", "PUT") else None
    )
    assert got == status, body[:300]
    assert b"<html" not in body.lower()
    assert b"<!doctype" not in body.lower()
    assert_json_error(headers, body)
    if status == 405:
        assert headers.get("allow")
