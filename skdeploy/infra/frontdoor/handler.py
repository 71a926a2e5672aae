"""The front door's Lambda function: ``POST /predict`` on an API Gateway HTTP API → InvokeEndpoint.

This file ships alone, as the only file of the function's zip, to the Python 3.12 Lambda runtime.
It therefore imports nothing but the standard library and boto3/botocore (which that runtime
provides), and never ``skdeploy``: the few facts it shares with :mod:`skdeploy.core.constants` are
written again here, and ``tests/test_frontdoor.py`` asserts that both say the same, the names of
the variables the Pulumi program sets included. The program never imports this file (it would
import boto3): it ships it by path.

It stays one file, over the project's 400-line guide, on purpose: the function's zip holds this
file alone (``skdeploy/infra/api.py`` ships it as ``handler.py``), so it can be read, tested and
shipped as exactly what runs in Lambda; its functions are each short.

Request (API Gateway HTTP API, payload format version 2.0)
    ``body`` is the payload, base64-encoded when ``isBase64Encoded`` is true (API Gateway does so
    for binary types such as ``application/x-npy``). ``content-type`` (default
    ``application/json``, as the container assumes) and ``accept`` (when sent) go to the model
    unchanged; header names arrive in lower case. The model's own formats and errors are those of
    ``inference/inference.py``.

Response
    200 with the model's body, its ``content-type`` and ``x-invoked-production-variant``; a binary
    answer (anything but JSON and text) is returned base64-encoded. Every response carries
    ``x-request-id``, the Lambda request id that the log line also carries. Errors are JSON:

    ====  =====================================================================================
    400   a malformed event (before invoking): not an object, headers that are not a map of
          strings, a ``content-type`` or ``accept`` that is not printable ASCII, a
          ``requestContext`` or ``isBase64Encoded`` of the wrong type, no body, a body that is
          not a string, not valid base64, or not valid Unicode (a lone surrogate); or the
          model's own 400
    4xx   any 4xx of the model (``ModelError`` with ``OriginalStatusCode`` 400-499): its status
          and its JSON body (``OriginalMessage``), passed through; a non-JSON message is wrapped
          as ``{"error": ...}``
    413   a body over the payload limit (before invoking), or the service refusing its size
    429   throttled by SageMaker (``ThrottlingException`` and the like, or HTTP 429)
    500   the function itself is misconfigured (no ``ENDPOINT_NAME``, a bad ``MAX_PAYLOAD_BYTES``),
          or failed in a way nothing above foresaw (the log names the exception's class only)
    502   the endpoint failed: a model 5xx, ``ModelNotReadyException``, ``ServiceUnavailable``,
          ``InternalFailure``, an unknown endpoint (``ValidationError``), access denied, no
          connection, a timeout, or an answer too large for Lambda's response limit
    ====  =====================================================================================

    A 502 says ``{"error": "<short reason>"}`` and nothing more: the service's message names the
    account, the log group and the model's own error page, which are for the log, not the caller.

Log
    One JSON line per request on stdout (CloudWatch Logs): ``requestId``, ``apiRequestId``,
    ``endpoint``, ``status``, ``latencyMs``, ``bytesIn``, ``bytesOut``, and for errors ``error``
    (the service's error code or the exception class) and ``modelStatus``. Never a body: request
    and model messages can carry the caller's data.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import time
from dataclasses import dataclass
from typing import Any, Final

import boto3
import botocore.config
import botocore.exceptions

# --- Configuration (the Lambda function's environment) ------------------------------------------
#: The SageMaker endpoint to invoke. Required.
ENV_ENDPOINT_NAME: Final = "ENDPOINT_NAME"
#: Largest request body in bytes, after base64 decoding. Optional: defaults to
#: :data:`MAX_PAYLOAD_BYTES`; a serverless endpoint should get its smaller limit
#: (``skdeploy.core.constants.MAX_SERVERLESS_PAYLOAD_BYTES``).
ENV_MAX_PAYLOAD_BYTES: Final = "MAX_PAYLOAD_BYTES"
#: For tests and local use only: send InvokeEndpoint to this URL (``skdeploy serve``'s, e.g.
#: ``http://127.0.0.1:8080``) instead of the regional SageMaker Runtime endpoint. Never set it
#: in a deployed function.
ENV_RUNTIME_ENDPOINT_URL: Final = "SAGEMAKER_RUNTIME_ENDPOINT_URL"

# --- Facts shared with skdeploy.core.constants (tests/test_frontdoor.py asserts they are equal) ---
#: InvokeEndpoint's body limit for instance endpoints:
#: ``skdeploy.core.constants.MAX_PAYLOAD_BYTES``.
MAX_PAYLOAD_BYTES: Final = 6 * 1024 * 1024
#: Seconds the model has to answer: ``skdeploy.core.constants.INVOCATION_TIMEOUT_SECONDS``.
INVOCATION_TIMEOUT_SECONDS: Final = 60
#: ``skdeploy.core.constants.CONTENT_JSON``; also what the container assumes without a Content-Type.
CONTENT_JSON: Final = "application/json"

#: Lambda's limit on a synchronous response (the serialised API Gateway response object).
LAMBDA_RESPONSE_LIMIT_BYTES: Final = 6 * 1024 * 1024

#: A short connect timeout and a single retry, so that an unreachable endpoint fails in seconds;
#: the read timeout leaves the model its full invocation time, plus a margin for the service.
CLIENT_CONFIG: Final = botocore.config.Config(
    connect_timeout=3,
    read_timeout=INVOCATION_TIMEOUT_SECONDS + 5,
    retries={"mode": "standard", "total_max_attempts": 2},
)

#: Error codes that mean "too many requests" (botocore's standard retry mode knows these).
THROTTLING_CODES: Final = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "SlowDown",
    }
)

#: Short reasons for a 502: what the caller may know, and no more.
REASON_MODEL_FAILED: Final = "the model failed to answer"
REASON_NOT_READY: Final = "the endpoint is not ready"
REASON_UNAVAILABLE: Final = "the endpoint is unavailable"
REASON_UNREACHABLE: Final = "the endpoint could not be reached"
REASON_TIMEOUT: Final = "the endpoint did not answer in time"
REASON_TOO_LARGE_ANSWER: Final = "the answer is too large for this API"

_client: Any = None


class Misconfigured(Exception):
    """The function's environment is wrong: an operator's error, answered with a 500."""


def runtime_client() -> Any:
    """The ``sagemaker-runtime`` client, created on first use and kept for warm invocations."""
    global _client
    if _client is None:
        _client = boto3.client(
            "sagemaker-runtime",
            # botocore reads AWS_DEFAULT_REGION but not AWS_REGION, which Lambda always sets.
            region_name=os.environ.get("AWS_REGION") or None,
            endpoint_url=os.environ.get(ENV_RUNTIME_ENDPOINT_URL) or None,
            config=CLIENT_CONFIG,
        )
    return _client


def reset_client() -> None:
    """Forget the cached client, so the next request builds one from the current environment."""
    global _client
    _client = None


def payload_limit() -> int:
    """The request body limit: ``MAX_PAYLOAD_BYTES`` from the environment, else the default."""
    value = os.environ.get(ENV_MAX_PAYLOAD_BYTES, "").strip()
    if not value:
        return MAX_PAYLOAD_BYTES
    try:
        limit = int(value)
    except ValueError:
        raise Misconfigured(f"{ENV_MAX_PAYLOAD_BYTES}={value!r} is not an integer") from None
    if limit <= 0:
        raise Misconfigured(f"{ENV_MAX_PAYLOAD_BYTES}={value!r} must be positive")
    return limit


def endpoint_name() -> str:
    """The endpoint to invoke (raises :class:`Misconfigured` when unset)."""
    name = os.environ.get(ENV_ENDPOINT_NAME, "").strip()
    if not name:
        raise Misconfigured(f"{ENV_ENDPOINT_NAME} is not set")
    return name


@dataclass
class Outcome:
    """The response to send, and what the log line says about it.

    ``error`` is the service's error code or the exception's class, ``detail`` the service's or
    botocore's message (for the log only; never a model's message, which may echo the request).
    """

    status: int
    body: bytes
    content_type: str
    error: str | None = None
    detail: str | None = None
    model_status: int | None = None
    variant: str | None = None
    bytes_in: int = 0


#: Characters of a service or botocore message kept in the log line.
LOG_DETAIL_CHARS: Final = 300


def _error(
    status: int,
    reason: str,
    code: str,
    *,
    detail: str | None = None,
    model_status: int | None = None,
) -> Outcome:
    """An error answer: ``{"error": reason}`` for the caller, code and detail for the log."""
    body = json.dumps({"error": reason}).encode("utf-8")
    return Outcome(
        status,
        body,
        CONTENT_JSON,
        error=code,
        detail=detail[:LOG_DETAIL_CHARS] if detail else None,
        model_status=model_status,
    )


#: Request headers passed on to InvokeEndpoint; they must be printable ASCII (HTTP's own rule
#: for what a client can send, and what botocore can put in a header without raising).
FORWARDED_HEADERS: Final = ("content-type", "accept")


@dataclass
class Request:
    """A well-formed request: the body as bytes and the headers the model gets."""

    body: bytes
    content_type: str
    accept: str | None


def _malformed(reason: str, code: str = "InvalidEvent", detail: str | None = None) -> Outcome:
    return _error(400, reason, code, detail=detail)


def _printable_ascii(value: str) -> bool:
    return all(" " <= char <= "~" or char == "\t" for char in value)


def read_request(event: Any) -> Request | Outcome:
    """The request in an API Gateway event, or the 400 that says what is wrong with it.

    API Gateway sends a dict with string headers, a string body and a boolean flag; anything
    else (a test console, a direct ``lambda invoke``, another trigger) is answered, not raised.
    """
    if not isinstance(event, dict):
        return _malformed(
            "the request is not an API Gateway HTTP API event", detail=type(event).__name__
        )
    headers = event.get("headers")
    if headers is None:
        headers = {}
    if not isinstance(headers, dict) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in headers.items()
    ):
        return _malformed("the request headers are malformed", "InvalidHeaders")
    lower = {key.lower(): value for key, value in headers.items()}
    for name in FORWARDED_HEADERS:
        if not _printable_ascii(lower.get(name, "")):
            return _malformed(f"the {name} header is not printable ASCII", "InvalidHeaders")
    context = event.get("requestContext")
    if context is not None and not isinstance(context, dict):
        return _malformed("requestContext must be an object")
    encoded = event.get("isBase64Encoded")
    if encoded is not None and not isinstance(encoded, bool):
        return _malformed("isBase64Encoded must be true or false")
    body = read_body(event.get("body"), bool(encoded))
    if isinstance(body, Outcome):
        return body
    return Request(body, lower.get("content-type") or CONTENT_JSON, lower.get("accept") or None)


def read_body(body: Any, base64_encoded: bool) -> bytes | Outcome:
    """The request body as bytes, or the 400 for a missing or undecodable one."""
    if body is None or body == "":
        return _error(400, "the request has no body", "MissingBody")
    if not isinstance(body, str):
        return _error(400, "the request body is not text", "InvalidBody")
    if base64_encoded:
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):  # ValueError: a character outside ASCII
            return _error(400, "the request body is not valid base64", "InvalidBase64")
    try:
        return body.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: no bytes can carry it
        return _error(400, "the request body is not valid Unicode text", "InvalidBody")


def _model_error(exc: botocore.exceptions.ClientError) -> Outcome:
    """A ``ModelError``: the model's 4xx passes through; anything else is the endpoint failing."""
    original = exc.response.get("OriginalStatusCode")
    try:
        model_status = int(original) if original is not None else None
    except (TypeError, ValueError):
        model_status = None
    if model_status is None or not 400 <= model_status <= 499:
        return _error(502, REASON_MODEL_FAILED, "ModelError", model_status=model_status)
    message = str(exc.response.get("OriginalMessage") or "")
    try:
        json.loads(message)
        text = message
    except ValueError:
        text = json.dumps({"error": message or f"the model refused the request ({model_status})"})
    body = text.encode("utf-8")
    return Outcome(model_status, body, CONTENT_JSON, error="ModelError", model_status=model_status)


def classify_client_error(exc: botocore.exceptions.ClientError) -> Outcome:
    """Map an error answer of SageMaker Runtime to the front door's status and short reason."""
    error = exc.response.get("Error", {})
    code = str(error.get("Code") or "")
    message = str(error.get("Message") or "")
    http_status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    if code == "ModelError":
        return _model_error(exc)
    if code == "ModelNotReadyException":  # modelled as HTTP 429, but it is not throttling
        return _error(502, REASON_NOT_READY, code, detail=message)
    if code in THROTTLING_CODES or http_status == 429:
        return _error(429, "too many requests; retry later", code or "HTTP429", detail=message)
    if http_status == 413 or (code == "ValidationError" and "oversize" in message.lower()):
        reason = "the request body is too large for the endpoint"
        return _error(413, reason, code or "HTTP413", detail=message)
    return _error(502, REASON_UNAVAILABLE, code or f"HTTP{http_status}", detail=message)


#: botocore exceptions that mean no answer came in time.
_TIMEOUTS: Final = (botocore.exceptions.ReadTimeoutError, botocore.exceptions.ConnectTimeoutError)
#: botocore exceptions that mean no connection (DNS, refused, reset).
_NO_CONNECTION: Final = (
    botocore.exceptions.EndpointConnectionError,
    botocore.exceptions.ConnectionError,
)


def classify_botocore_error(exc: botocore.exceptions.BotoCoreError) -> Outcome:
    """No answer from SageMaker Runtime at all: a timeout, no connection, or no credentials."""
    code, detail = type(exc).__name__, str(exc)
    if isinstance(exc, _TIMEOUTS):
        return _error(502, REASON_TIMEOUT, code, detail=detail)
    if isinstance(exc, _NO_CONNECTION):
        return _error(502, REASON_UNREACHABLE, code, detail=detail)
    return _error(502, REASON_UNAVAILABLE, code, detail=detail)


def invoke(event: Any, name: str) -> Outcome:
    """Check the request, invoke the endpoint, and map what comes back."""
    request = read_request(event)
    if isinstance(request, Outcome):
        return request
    limit = payload_limit()
    if len(request.body) > limit:
        outcome = _error(413, f"the request body is larger than {limit} bytes", "PayloadTooLarge")
    else:
        outcome = _invoke_endpoint(name, request)
    outcome.bytes_in = len(request.body)
    return outcome


def _invoke_endpoint(name: str, request: Request) -> Outcome:
    arguments = {"EndpointName": name, "Body": request.body, "ContentType": request.content_type}
    if request.accept:
        arguments["Accept"] = request.accept
    try:
        response = runtime_client().invoke_endpoint(**arguments)
        answer = response["Body"].read()
    except botocore.exceptions.ClientError as exc:
        return classify_client_error(exc)
    except botocore.exceptions.BotoCoreError as exc:
        return classify_botocore_error(exc)
    return Outcome(
        200,
        answer,
        str(response.get("ContentType") or "application/octet-stream"),
        variant=response.get("InvokedProductionVariant"),
    )


def is_text(content_type: str) -> bool:
    """Whether an answer of this type goes back as text rather than base64."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    return (
        media_type.startswith("text/")
        or media_type in (CONTENT_JSON, "application/csv")
        or media_type.endswith("+json")
    )


def api_response(outcome: Outcome, request_id: str) -> dict[str, Any]:
    """The payload-format-2.0 response object API Gateway turns into the HTTP response."""
    headers = {"content-type": outcome.content_type, "x-request-id": request_id}
    if outcome.variant:
        headers["x-invoked-production-variant"] = outcome.variant
    if is_text(outcome.content_type):
        try:
            return {
                "statusCode": outcome.status,
                "headers": headers,
                "body": outcome.body.decode("utf-8"),
                "isBase64Encoded": False,
            }
        except UnicodeDecodeError:
            pass
    return {
        "statusCode": outcome.status,
        "headers": headers,
        "body": base64.b64encode(outcome.body).decode("ascii"),
        "isBase64Encoded": True,
    }


def handler(event: Any, context: Any) -> dict[str, Any]:
    """Lambda entry point for ``POST /predict``; always answers, and logs one line."""
    started = time.perf_counter()
    request_id = str(getattr(context, "aws_request_id", "") or "")
    name = os.environ.get(ENV_ENDPOINT_NAME, "")
    try:
        name = endpoint_name()
        outcome = invoke(event, name)
    except Misconfigured as exc:
        outcome = _error(500, "the service is misconfigured", "Misconfigured", detail=str(exc))
    except Exception as exc:  # a fault of this function: still an answer, and a log line
        # Only the class goes to the log: the message of an unforeseen error may quote the body.
        outcome = _error(500, "the front door failed", type(exc).__name__)
    response = api_response(outcome, request_id)
    if len(json.dumps(response)) > LAMBDA_RESPONSE_LIMIT_BYTES:
        too_large = _error(502, REASON_TOO_LARGE_ANSWER, "ResponseTooLarge")
        too_large.bytes_in, too_large.variant = outcome.bytes_in, outcome.variant
        outcome = too_large
        response = api_response(outcome, request_id)
    log_request(outcome, request_id, event, name, time.perf_counter() - started)
    return response


def _api_request_id(event: Any) -> str | None:
    """API Gateway's request id, when the event carries one."""
    context = event.get("requestContext") if isinstance(event, dict) else None
    value = context.get("requestId") if isinstance(context, dict) else None
    return value if isinstance(value, str) else None


def log_request(outcome: Outcome, request_id: str, event: Any, name: str, seconds: float) -> None:
    """One JSON line on stdout, which Lambda sends to CloudWatch Logs; no bodies."""
    record: dict[str, Any] = {
        "requestId": request_id,
        "apiRequestId": _api_request_id(event),
        "endpoint": name,
        "status": outcome.status,
        "latencyMs": round(seconds * 1000.0, 1),
        "bytesIn": outcome.bytes_in,
        "bytesOut": len(outcome.body),
    }
    optional = {
        "error": outcome.error,
        "detail": outcome.detail,
        "modelStatus": outcome.model_status,
        "variant": outcome.variant,
    }
    record.update({key: value for key, value in optional.items() if value is not None})
    print(json.dumps(record, separators=(",", ":")), flush=True)
