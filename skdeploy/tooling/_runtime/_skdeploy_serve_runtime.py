"""Layer 1 of ``skdeploy serve``: SageMaker Runtime's InvokeEndpoint, and the emulated endpoint.

Runs in the runtime virtualenv beside ``_skdeploy_serve_app.py`` (see its docstring), which imports
it by
this unique name, so that no module in the user's code directory can replace it. Same rules
as there: the runtime's Python syntax, no skdeploy import.
"""

import functools
import io
import json
import logging
import os
import re
import uuid

from _skdeploy_serve_container import container_app

logger = logging.getLogger("skdeploy.serve")

#: The one environment variable skdeploy.tooling.local fills with this endpoint's description
#: (JSON).
CONFIG_ENV = "SKDEPLOY_LOCAL_ENDPOINT"
#: InvokeEndpoint's route in SageMaker Runtime (botocore: /endpoints/{EndpointName}/invocations).
RUNTIME_ROUTE = re.compile(r"^/endpoints/([^/]+)/invocations$")
#: InvokeEndpointWithResponseStream's route (botocore:
#: /endpoints/{EndpointName}/invocations-response-stream).
STREAM_ROUTE = re.compile(r"^/endpoints/([^/]+)/invocations-response-stream$")
#: Why the stream route is refused: the scikit-learn container answers in one piece.
NO_STREAMING = (
    "Endpoint {name} of account {account} does not support response streaming: the SageMaker "
    "scikit-learn container returns each response whole and cannot stream it. "
    "Call InvokeEndpoint instead."
)

#: Request headers SageMaker Runtime forwards to the container; it strips every other header.
FORWARDED_HEADERS = (
    "CONTENT_TYPE",
    "HTTP_ACCEPT",
    "HTTP_X_AMZN_SAGEMAKER_CUSTOM_ATTRIBUTES",
    "HTTP_X_AMZN_SAGEMAKER_INFERENCE_ID",
    "HTTP_X_AMZN_SAGEMAKER_TARGET_MODEL",
)
CUSTOM_ATTRIBUTES = "X-Amzn-SageMaker-Custom-Attributes"
#: Botocore's Message shape is at most 2048 characters.
MAX_MESSAGE = 2048
_CHUNK = 1 << 16


@functools.lru_cache(maxsize=1)
def endpoint_config():
    """The emulated endpoint: name, region, account, variant, log group and payload limit.

    Read once per process: skdeploy.tooling.local sets it before gunicorn starts. Callers must not
    change the dict.
    """
    return json.loads(os.environ[CONFIG_ENV])


def payload_limit():
    """The endpoint's request body limit in bytes: the one limit for every route."""
    return int(endpoint_config()["max_payload_bytes"])


def invoke_endpoint(environ, start_response, endpoint_name):
    """InvokeEndpoint: check the name and the size, call the container, translate its answer."""
    config = endpoint_config()
    request_id = str(uuid.uuid4())
    if endpoint_name != config["endpoint_name"]:
        return unknown_endpoint(start_response, request_id, config, endpoint_name)
    target = environ.get("HTTP_X_AMZN_SAGEMAKER_TARGET_VARIANT")
    if target is not None and target != config["variant"]:
        return service_error(
            start_response,
            request_id,
            "400 Bad Request",
            "ValidationError",
            {
                "message": f"Target variant {target} not found on endpoint {endpoint_name} "
                f"(this local endpoint serves variant {config['variant']})."
            },
        )
    body = read_body(environ, payload_limit())
    if body is None:
        return _oversize(start_response, request_id, config)
    status, headers, payload = call_container(container_app, container_environ(environ, body))
    code = int(status.split(" ", 1)[0])
    if code >= 400:
        return _model_error(start_response, request_id, config, code, payload)
    content_type = header(headers, "Content-Type") or "application/octet-stream"
    response_headers = [
        ("Content-Type", content_type),
        ("x-Amzn-Invoked-Production-Variant", config["variant"]),
        ("x-amzn-RequestId", request_id),
    ]
    custom = header(headers, CUSTOM_ATTRIBUTES)
    if custom is not None:
        response_headers.append((CUSTOM_ATTRIBUTES, custom))
    response_headers.append(("Content-Length", str(len(payload))))
    start_response("200 OK", response_headers)
    return [payload]


def refuse_stream(start_response, endpoint_name):
    """InvokeEndpointWithResponseStream: a ValidationError saying why, not nginx's bare 404.

    The container never streams, so the request is not forwarded and its body is not read
    (gunicorn discards it before the next request on the connection).
    """
    config = endpoint_config()
    request_id = str(uuid.uuid4())
    if endpoint_name != config["endpoint_name"]:
        return unknown_endpoint(start_response, request_id, config, endpoint_name)
    message = NO_STREAMING.format(name=endpoint_name, account=config["account"])
    return service_error(
        start_response, request_id, "400 Bad Request", "ValidationError", {"message": message}
    )


def unknown_endpoint(start_response, request_id, config, endpoint_name):
    """The service's answer to a name this account has no endpoint for."""
    return service_error(
        start_response,
        request_id,
        "400 Bad Request",
        "ValidationError",
        {"message": f"Endpoint {endpoint_name} of account {config['account']} not found."},
    )


def read_body(environ, limit):
    """The request body, or None when it is larger than ``limit``.

    A Content-Length over the limit is refused before anything is read, and reading stops as
    soon as a body without one passes the limit. The rest is left unread: gunicorn discards it
    before the next request on the connection, within its keep-alive timeout, so an endless
    body cannot hold a worker.
    """
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH") or ""
    if length.isdigit() and int(length) > limit:
        return None
    chunks = []
    size = 0
    while True:
        chunk = stream.read(_CHUNK)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)


def container_environ(environ, body):
    """The request as the container sees it: ``POST /invocations``, only forwarded headers."""
    inner = {k: v for k, v in environ.items() if not k.startswith("HTTP_") and k != "CONTENT_TYPE"}
    inner.update({k: environ[k] for k in FORWARDED_HEADERS if k in environ})
    inner.update(
        {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/invocations",
            "RAW_URI": "/invocations",
            "QUERY_STRING": "",
            "CONTENT_LENGTH": str(len(body)),
            "HTTP_HOST": environ.get("HTTP_HOST", "localhost"),
            "wsgi.input": io.BytesIO(body),
        }
    )
    return inner


def call_container(wsgi_app, environ):
    """Run a WSGI app in-process and collect (status, headers, body).

    An exception escaping the app is what gunicorn answers with its own 500 page; it is logged
    with its traceback, as gunicorn would.
    """
    captured = {}
    written = []

    def start_response(status, headers, exc_info=None):
        captured["status"] = status
        captured["headers"] = headers
        return written.append

    try:
        result = wsgi_app(environ, start_response)
        try:
            written.extend(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
    except Exception:  # the server answers 500 for anything the app raises
        logger.exception("Error handling request /invocations")
        return (
            "500 Internal Server Error",
            [("Content-Type", "text/html")],
            (
                b"<html><head><title>Internal Server Error</title></head><body><h1><p>"
                b"Internal Server Error</p></h1></body></html>"
            ),
        )
    return captured["status"], captured["headers"], b"".join(written)


def header(headers, name):
    for key, value in headers:
        if key.lower() == name.lower():
            return value
    return None


def service_error(start_response, request_id, status, error_type, document):
    """A rest-json error: botocore reads the code from x-amzn-ErrorType, fields from the body."""
    body = json.dumps(document).encode("utf-8")
    headers = [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(body))),
        ("x-amzn-RequestId", request_id),
    ]
    if error_type:
        headers.append(("x-amzn-ErrorType", error_type))
    start_response(status, headers)
    return [body]


def _oversize(start_response, request_id, config):
    """The service's answer to a body over the limit, in the style the endpoint kind uses."""
    if config["oversize_style"] == "validation":
        return service_error(
            start_response,
            request_id,
            "400 Bad Request",
            "ValidationError",
            {"message": f"Request {request_id} has oversize body."},
        )
    return service_error(
        start_response,
        request_id,
        "413 Request Entity Too Large",
        None,
        {"message": f"HTTP content length exceeded {config['max_payload_bytes']} bytes."},
    )


def _model_error(start_response, request_id, config, code, payload):
    """A container 4xx/5xx as the service reports it: 424 ModelError with the original answer."""
    original = payload.decode("utf-8", "replace")
    kind = "client" if code < 500 else "server"
    log_group = config["log_group"]
    region = config["region"]
    account = config["account"]
    message = (
        f'Received {kind} error ({code}) from primary with message "{original}". See '
        f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
        f"#logEventViewer:group={log_group} in account {account} for more information."
    )
    document = {
        "message": message[:MAX_MESSAGE],
        "OriginalStatusCode": code,
        "OriginalMessage": original[:MAX_MESSAGE],
        "LogStreamArn": f"arn:aws:logs:{region}:{account}:log-group:{log_group}",
    }
    return service_error(
        start_response, request_id, "424 Failed Dependency", "ModelError", document
    )
