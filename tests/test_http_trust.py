"""What the HTTP surfaces do with input nobody should send (issue 13, findings 11, 12 and 13).

- The front door's Lambda handler (``skdeploy/frontdoor/handler.py``) answers every malformed
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
import http.client
import io
import json
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from skdeploy.frontdoor import handler
from tests.conftest import LocalEndpoint
from tests.support import load_inference
from tests.test_frontdoor import LambdaContext, api_event, closed_port_url, set_environment

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


def http_call(
    endpoint: LocalEndpoint,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One request on a new connection: status, headers (lower-case names), body."""
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
        assert isinstance(rejection, inference.Rejection), (payload, content_type)
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
