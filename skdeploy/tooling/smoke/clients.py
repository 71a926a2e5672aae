"""How the endpoint is reached: boto3 clients with short timeouts, one invocation as an
:class:`Answer`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

import boto3
import botocore.config
import botocore.exceptions

from skdeploy.core.constants import CONTENT_JSON, INVOCATION_TIMEOUT_SECONDS
from skdeploy.core.samples import CannotRun
from skdeploy.tooling.smoke.target import Target

#: Credentials for a local endpoint when none are configured: it checks no signature, but
#: botocore signs every request and refuses to send one without credentials.
LOCAL_CREDENTIALS: Final = {
    "aws_access_key_id": "skdeploy-local",
    "aws_secret_access_key": "local",  # nosec B105 - dummy credentials for a local endpoint
}
#: Short connect timeout and one retry, so that a dead endpoint fails in seconds, not minutes;
#: the read timeout leaves the model its full invocation time.
RUNTIME_CONFIG: Final = botocore.config.Config(
    connect_timeout=3,
    read_timeout=INVOCATION_TIMEOUT_SECONDS + 5,
    retries={"mode": "standard", "total_max_attempts": 2},
)
CONTROL_CONFIG: Final = botocore.config.Config(
    connect_timeout=3, read_timeout=30, retries={"mode": "standard", "total_max_attempts": 3}
)


@dataclass(frozen=True)
class Clients:
    """boto3 clients: the data plane always, the control plane unless the endpoint is local."""

    runtime: Any
    sagemaker: Any | None


class TargetedRuntime:
    """A SageMaker Runtime client whose every ``invoke_endpoint`` names one production variant.

    ``TargetVariant`` makes SageMaker send the request to that variant instead of splitting
    traffic by weight, so each variant can be checked against its own model's samples.
    """

    def __init__(self, runtime: Any, variant: str) -> None:
        self.runtime = runtime
        self.variant = variant

    def invoke_endpoint_async(self, **kwargs: Any) -> Any:
        """InvokeEndpointAsync takes no TargetVariant: SageMaker routes it by the weights."""
        return self.runtime.invoke_endpoint_async(**kwargs)

    def invoke_endpoint(self, **kwargs: Any) -> Any:
        response = self.runtime.invoke_endpoint(TargetVariant=self.variant, **kwargs)
        invoked = response.get("InvokedProductionVariant")
        if invoked is not None and invoked != self.variant:
            raise CannotRun(
                f"asked for variant {self.variant}, answered by variant {invoked}: the answers "
                "would not be that variant's"
            )
        return response


def make_clients(target: Target) -> Clients:
    """Real boto3 clients for ``target`` (:class:`CannotRun` without credentials, or when
    botocore cannot even set up: an unknown ``AWS_PROFILE``, an invalid region)."""
    from botocore.exceptions import BotoCoreError

    try:
        return _make_clients(target)
    except BotoCoreError as exc:
        raise CannotRun(f"cannot set up the AWS clients: {exc}") from None


def _make_clients(target: Target) -> Clients:
    if target.local:
        # A local endpoint checks no signature: the shell's profile (maybe stale) is not needed.
        session = boto3.session.Session(region_name=target.region, **LOCAL_CREDENTIALS)
        runtime = session.client(
            "sagemaker-runtime", endpoint_url=target.endpoint_url, config=RUNTIME_CONFIG
        )
        return Clients(runtime=runtime, sagemaker=None)
    session = boto3.session.Session(region_name=target.region)
    if session.get_credentials() is None:
        raise CannotRun(
            "no AWS credentials found (set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY,"
            " or test a local endpoint with --endpoint-url)"
        )
    return Clients(
        runtime=session.client("sagemaker-runtime", config=RUNTIME_CONFIG),
        sagemaker=session.client("sagemaker", config=CONTROL_CONFIG),
    )


@dataclass(frozen=True)
class Answer:
    """What one invocation got back: the model's status code and body, or the service's error.

    ``status`` is the model's own status code (200, or ``OriginalStatusCode`` of a
    ``ModelError``) when ``from_model``; otherwise the service's HTTP status.
    """

    status: int
    body: str
    from_model: bool = True


def invoke(runtime: Any, endpoint_name: str, payload: object) -> Answer:
    """POST ``payload`` as JSON; errors the caller can do nothing about raise :class:`CannotRun`.

    Connection failures, missing or refused credentials and unknown endpoints (a 4xx from the
    service itself) cannot be a verdict on the model. A model's own error is an :class:`Answer`,
    and so is a throttled or failing service (429, 5xx): the endpoint is not serving.
    """
    body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
    try:
        response = runtime.invoke_endpoint(
            EndpointName=endpoint_name, Body=body, ContentType=CONTENT_JSON, Accept=CONTENT_JSON
        )
        return Answer(200, response["Body"].read().decode("utf-8", errors="replace"))
    except botocore.exceptions.ClientError as exc:
        error = exc.response.get("Error", {})
        code = error.get("Code", "?")
        http_status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        if code == "ModelError":
            original = exc.response.get("OriginalStatusCode")
            message = exc.response.get("OriginalMessage") or error.get("Message", "")
            return Answer(int(original) if original else http_status, str(message))
        if 400 <= http_status < 500 and http_status != 429:
            raise CannotRun(
                f"invoking {endpoint_name} was refused: {code}: {error.get('Message', '')}"
            ) from None
        return Answer(http_status, f"{code}: {error.get('Message', '')}", from_model=False)
    except botocore.exceptions.BotoCoreError as exc:
        raise CannotRun(f"cannot reach endpoint {endpoint_name}: {exc}") from None


def parse_predictions(answer: Answer, rows: int) -> list[Any] | str:
    """The ``predictions`` list of a 200 answer, or why the answer is not one."""
    if answer.status != 200:
        source = "model" if answer.from_model else "service"
        return f"the {source} answered {answer.status}: {shorten(answer.body)}"
    try:
        decoded = json.loads(answer.body)
    except ValueError:
        return f"the answer is not JSON: {shorten(answer.body)}"
    predictions = decoded.get("predictions") if isinstance(decoded, dict) else None
    if not isinstance(predictions, list) or len(predictions) != rows:
        return f'the answer is not {{"predictions": [{rows} values]}}: {shorten(answer.body)}'
    return predictions


def shorten(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
