"""SageMaker Runtime's InvokeEndpointAsync for ``skdeploy serve``, with S3 as a local folder.

Runs in the runtime virtualenv beside ``_skdeploy_serve_app.py`` (same rules: the runtime's
Python syntax, no skdeploy import). ``s3://bucket/key`` is the file ``<s3_dir>/bucket/key``,
``s3_dir`` being ``skdeploy serve --s3-dir``. The request is answered as the service answers it
(202, ``InferenceId`` in the body, ``OutputLocation`` and ``FailureLocation`` headers), with one
deliberate difference: there is no queue, so the input is read, the container called and the
result written before the answer, and the output exists when the call returns.
"""

import json
import os
import re
import uuid

from _skdeploy_serve_container import container_app
from _skdeploy_serve_runtime import (
    call_container,
    container_environ,
    endpoint_config,
    service_error,
    unknown_endpoint,
)

#: InvokeEndpointAsync's route (botocore: /endpoints/{EndpointName}/async-invocations).
ASYNC_ROUTE = re.compile(r"^/endpoints/([^/]+)/async-invocations$")
#: The request headers InvokeEndpointAsync takes, as WSGI names them.
_INPUT_LOCATION = "HTTP_X_AMZN_SAGEMAKER_INPUTLOCATION"
_INFERENCE_ID = "HTTP_X_AMZN_SAGEMAKER_INFERENCE_ID"
_CONTENT_TYPE = "HTTP_X_AMZN_SAGEMAKER_CONTENT_TYPE"
_ACCEPT = "HTTP_X_AMZN_SAGEMAKER_ACCEPT"
_FILENAME = "HTTP_X_AMZN_SAGEMAKER_FILENAME"
_EXTENSION = "HTTP_X_AMZN_SAGEMAKER_S3OUTPUTPATHEXTENSION"


class _Refused(Exception):
    """A request the service would refuse: its message becomes a ValidationError."""


def invoke_endpoint_async(environ, start_response, endpoint_name):
    """InvokeEndpointAsync: read InputLocation, call the container, write the result."""
    config = endpoint_config()
    request_id = str(uuid.uuid4())
    if endpoint_name != config["endpoint_name"]:
        return unknown_endpoint(start_response, request_id, config, endpoint_name)
    inference_id = environ.get(_INFERENCE_ID) or str(uuid.uuid4())
    try:
        body = _read_input(config, environ)
        output, failure = _result_locations(config, environ, inference_id)
    except _Refused as exc:
        return service_error(
            start_response, request_id, "400 Bad Request", "ValidationError", {"message": str(exc)}
        )
    status, _headers, payload = call_container(container_app, _container_request(environ, body))
    failed = int(status.split(" ", 1)[0]) >= 400
    _write(config["s3_dir"], failure if failed else output, payload)
    document = json.dumps({"InferenceId": inference_id}).encode("utf-8")
    start_response(
        "202 Accepted",
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(document))),
            ("x-amzn-RequestId", request_id),
            ("X-Amzn-SageMaker-OutputLocation", output),
            ("X-Amzn-SageMaker-FailureLocation", failure),
        ],
    )
    return [document]


def _read_input(config, environ):
    """The bytes at InputLocation, from the local S3 folder."""
    asynchronous = config.get("async")
    if asynchronous is None:
        raise _Refused(
            f"Endpoint {config['endpoint_name']} of account {config['account']} is not "
            "configured for asynchronous inference (the stack has no 'async' setting)."
        )
    if not config.get("s3_dir"):
        raise _Refused(
            "skdeploy serve reads InputLocation from a local folder: start it with "
            "--s3-dir DIR (s3://bucket/key is DIR/bucket/key)."
        )
    location = environ.get(_INPUT_LOCATION)
    if not location:
        raise _Refused("InputLocation is required for InvokeEndpointAsync.")
    path = _local_path(config["s3_dir"], location)
    allowed = asynchronous["input_path"].rstrip("/") + "/"
    if not location.startswith(allowed):
        raise _Refused(
            f"InputLocation {location} is not under the stack's async.inputPath {allowed}: "
            "the endpoint's execution role may read requests only there."
        )
    if not os.path.isfile(path):
        raise _Refused(f"InputLocation {location} not found (looked for {path}).")
    with open(path, "rb") as source:
        return source.read()


def _result_locations(config, environ, inference_id):
    """Where the output and a failure go: ``<path>[/<extension>]/<id>.out``, ``<id>-error.out``."""
    asynchronous = config["async"]
    output_dir = asynchronous["output_path"].rstrip("/")
    extension = (environ.get(_EXTENSION) or "").strip("/")
    if extension:
        output_dir = f"{output_dir}/{extension}"
    output = f"{output_dir}/{environ.get(_FILENAME) or inference_id + '.out'}"
    failure_dir = (asynchronous.get("failure_path") or asynchronous["output_path"]).rstrip("/")
    failure = f"{failure_dir}/{inference_id}-error.out"
    for location in (output, failure):
        _local_path(config["s3_dir"], location)  # refuses a name that escapes the folder
    return output, failure


def _local_path(s3_dir, location):
    """``s3://bucket/key`` as ``<s3_dir>/bucket/key``; refused when it is not one or escapes."""
    if not location.startswith("s3://"):
        raise _Refused(f"{location} is not an s3:// URI (the local server reads S3 from a folder).")
    parts = location[len("s3://") :].split("/")
    if len(parts) < 2 or not parts[0] or not parts[-1] or ".." in parts or "." in parts:
        raise _Refused(f"{location} does not name an object as s3://bucket/key.")
    root = os.path.realpath(s3_dir)
    path = os.path.realpath(os.path.join(root, *parts))
    if os.path.commonpath([root, path]) != root:
        raise _Refused(f"{location} leads outside the local S3 folder.")
    return path


def _container_request(environ, body):
    """The container's request: the async headers become Content-Type and Accept."""
    inner = dict(environ)
    for header, name in ((_CONTENT_TYPE, "CONTENT_TYPE"), (_ACCEPT, "HTTP_ACCEPT")):
        inner.pop(name, None)
        if environ.get(header):
            inner[name] = environ[header]
    return container_environ(inner, body)


def _write(s3_dir, location, payload):
    """Write the result where the service would put it, as one complete file."""
    path = _local_path(s3_dir, location)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    partial = path + ".partial"
    with open(partial, "wb") as out:
        out.write(payload)
    os.replace(partial, path)
