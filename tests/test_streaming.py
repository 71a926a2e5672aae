"""InvokeEndpointWithResponseStream against ``skdeploy serve``: refused, saying why.

The SageMaker scikit-learn container answers each request whole and never streams, so the local
server answers the stream route with the service's ValidationError naming the reason, not
nginx's bare 404. Requests go through an unchanged boto3 ``sagemaker-runtime`` client.
"""

from __future__ import annotations

import json
import re
import sys

import botocore.exceptions
import pytest

from tests.conftest import TEST_ENDPOINT_NAME, LocalEndpoint

pytestmark = pytest.mark.skipif(
    sys.platform == "win32", reason="skdeploy serve needs Linux or macOS (gunicorn)"
)

BODY = json.dumps({"instances": [[1.0]]}).encode()


def _stream(endpoint: LocalEndpoint, name: str) -> botocore.exceptions.ClientError:
    """The ClientError boto3 raises for one streaming request to ``name``."""
    client = endpoint.client()
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        client.invoke_endpoint_with_response_stream(
            EndpointName=name, Body=BODY, ContentType="application/json"
        )
    return raised.value


def test_a_streaming_request_is_a_validation_error_saying_the_container_does_not_stream(
    local_endpoint: LocalEndpoint,
) -> None:
    """boto3 raises ValidationError (400) whose message says the container cannot stream."""
    error = _stream(local_endpoint, TEST_ENDPOINT_NAME).response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Error"]["Code"] == "ValidationError"
    message = error["Error"]["Message"]
    assert re.match(
        rf"Endpoint {TEST_ENDPOINT_NAME} of account \d{{12}} does not support response "
        r"streaming: the SageMaker scikit-learn container",
        message,
    )
    assert "InvokeEndpoint" in message


def test_a_streaming_request_to_another_endpoint_is_not_found(
    local_endpoint: LocalEndpoint,
) -> None:
    """The endpoint name is checked first, as for InvokeEndpoint."""
    error = _stream(local_endpoint, "no-such-endpoint").response
    assert error["Error"]["Code"] == "ValidationError"
    assert re.fullmatch(
        r"Endpoint no-such-endpoint of account \d{12} not found\.", error["Error"]["Message"]
    )


def test_the_endpoint_still_predicts_after_a_refused_stream(
    local_endpoint: LocalEndpoint,
) -> None:
    """A refused stream leaves the connection and the server serving predictions."""
    _stream(local_endpoint, TEST_ENDPOINT_NAME)
    answer = local_endpoint.client().invoke_endpoint(
        EndpointName=TEST_ENDPOINT_NAME,
        Body=BODY,
        ContentType="application/json",
        Accept="application/json",
    )
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
