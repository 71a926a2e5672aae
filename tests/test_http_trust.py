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
import io
import json
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from skdeploy.frontdoor import handler
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
