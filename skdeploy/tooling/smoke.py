"""``skdeploy smoke``: prove that a deployed endpoint serves the model that was deployed.

Stock smoke tests return success without invoking anything (the SageMaker Projects template's
``test.py``), and a deploy can look green while SageMaker rolled the update back. This one
checks, each in a small function of its own:

``in-service``
    ``DescribeEndpoint`` until ``InService`` (a status line per poll on stderr), failing on
    ``Failed`` (with its ``FailureReason``) or at ``--timeout``. Skipped for a local
    ``--endpoint-url``: a local endpoint has no control plane.
``endpoint-config``
    ``DescribeEndpoint.EndpointConfigName`` equals the stack output ``endpointConfigName``; a
    difference means the update was rolled back. Skipped, never passed, without stack outputs.
``predictions``
    Every instance of ``samples.json`` through a real ``sagemaker-runtime`` client, in JSON
    batches within the payload limit; each answer within ``tolerance`` (absolute) of the expected
    prediction. Labels and other non-numbers must be equal.
``probabilities``
    Every sample again, asking for class probabilities (``"probabilities": true``), so every
    output the endpoint serves is exercised: the predictions must not change, each row must
    have one probability per class summing to 1, the classes must be those of ``samples.json``
    (when it lists them) and the probabilities within ``tolerance`` of its ``probabilities``
    (when it records them). A model that refuses with a 4xx (a regressor) is a skip; a 5xx (a
    classifier whose ``predict_proba`` fails, as a pickle from another scikit-learn can) fails.
``metrics``
    With ``targets`` in the samples: for a regressor RMSE, MAE and R², for a classifier (labels
    that are not numbers, ``classes`` listed, or ``accuracy`` recorded) accuracy and per-class
    counts, recomputed from the endpoint's answers and no worse than those recorded at training
    time (see :data:`METRICS_RELATIVE_SLACK`).
``bad-request``
    A request the model must refuse (a sample with one extra feature) is answered with a 4xx from
    the model: a 5xx means the handler crashed, a success means it served nonsense.
``latency``
    ``--calls`` single-row requests: p50, p95 and max in milliseconds.

Exit codes (as every ``skdeploy`` command): 0 every check passed or was skipped, 1 a check
failed, 2 the smoke test cannot run (bad arguments or samples, no credentials, an endpoint that
does not exist or cannot be reached); the reason is one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import urlparse

import boto3
import botocore.config
import botocore.exceptions

from skdeploy.core.constants import (
    CONTENT_JSON,
    INVOCATION_TIMEOUT_SECONDS,
    MAX_PAYLOAD_BYTES,
    MAX_SERVERLESS_PAYLOAD_BYTES,
    OUTPUT_ENDPOINT_CONFIG_NAME,
    OUTPUT_ENDPOINT_NAME,
    OUTPUT_REGION,
    SAMPLES_FILE,
)

# Re-exported: the smoke test's samples are the ones every check reads (skdeploy.core.samples).
from skdeploy.core.samples import CannotRun as CannotRun
from skdeploy.core.samples import Samples as Samples
from skdeploy.core.samples import batches as batches
from skdeploy.core.samples import is_number
from skdeploy.core.samples import load_samples as load_samples
from skdeploy.core.settings import EndpointSettings
from skdeploy.tooling.common import (
    EXIT_CANNOT_RUN,
    EXIT_FAILED,
    EXIT_OK,
    add_stack_arguments,
    progress,
    stack_settings,
)

Status = Literal["PASS", "FAIL", "SKIP"]
PASS: Final = "PASS"  # noqa: S105 - a check verdict, not a password
FAIL: Final = "FAIL"
SKIP: Final = "SKIP"

CHECK_IN_SERVICE: Final = "in-service"
CHECK_ENDPOINT_CONFIG: Final = "endpoint-config"
CHECK_PREDICTIONS: Final = "predictions"
CHECK_PROBABILITIES: Final = "probabilities"
CHECK_METRICS: Final = "metrics"
CHECK_BAD_REQUEST: Final = "bad-request"
CHECK_LATENCY: Final = "latency"
#: Every check, in the order it runs and is reported.
CHECKS: Final = (
    CHECK_IN_SERVICE,
    CHECK_ENDPOINT_CONFIG,
    CHECK_PREDICTIONS,
    CHECK_PROBABILITIES,
    CHECK_METRICS,
    CHECK_BAD_REQUEST,
    CHECK_LATENCY,
)

#: Whether an endpoint is serverless is not in the stack outputs, so batches keep to the smaller
#: (serverless) limit, which fits both kinds.
PAYLOAD_LIMIT_BYTES: Final = min(MAX_PAYLOAD_BYTES, MAX_SERVERLESS_PAYLOAD_BYTES)
#: Seconds between two ``DescribeEndpoint`` calls while the endpoint is not yet InService.
POLL_SECONDS: Final = 15.0
#: Default ``--timeout``: endpoint creation takes 5-20 minutes, a failing one longer.
DEFAULT_TIMEOUT_SECONDS: Final = 1800.0
#: Default ``--calls``.
DEFAULT_LATENCY_CALLS: Final = 20
#: A recomputed metric may be worse than the recorded one by this fraction of it, plus
#: :data:`METRICS_ABSOLUTE_SLACK`, before the check fails. The endpoint runs the same model on
#: the same rows, so only float round-off may differ; anything beyond is a different model.
METRICS_RELATIVE_SLACK: Final = 1e-6
#: ``samples.json`` records metrics rounded to 6 decimals.
METRICS_ABSOLUTE_SLACK: Final = 1e-6
#: Metrics recomputed from the endpoint's answers, and which direction is better.
HIGHER_IS_BETTER: Final[Mapping[str, bool]] = {
    "rmse": False,
    "mae": False,
    "r2": True,
    "accuracy": True,
}
#: How far a row of class probabilities may sum from 1 (float32 round-off on many classes).
PROBABILITY_SUM_SLACK: Final = 1e-4

#: Statuses an endpoint passes through on its way to InService (or to Failed).
TRANSITIONAL_STATUSES: Final = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack"})
IN_SERVICE: Final = "InService"

#: Credentials for a local endpoint when none are configured: it checks no signature, but
#: botocore signs every request and refuses to send one without credentials.
#: A local endpoint checks no signature; botocore still wants something to sign with.
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
#: Seconds ``pulumi stack output`` may take (it may read a remote backend).
PULUMI_TIMEOUT_SECONDS: Final = 120


# --- Report -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One check's verdict and what it saw."""

    name: str
    status: Status
    detail: str


@dataclass
class SmokeReport:
    """Everything the smoke test found; rendered as text or as JSON."""

    endpoint_name: str
    region: str
    source: str
    endpoint_url: str | None = None
    variant: str | None = None
    checks: list[Check] = field(default_factory=list)
    latency_ms: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, dict[str, float | None]] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """No check failed (a skipped check is not a failure, and is reported as skipped)."""
        return all(check.status != FAIL for check in self.checks)

    @property
    def exit_code(self) -> int:
        """0 when passed, 1 when a check failed."""
        return EXIT_OK if self.passed else EXIT_FAILED

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` report."""
        return {
            "endpoint_name": self.endpoint_name,
            "region": self.region,
            "endpoint_url": self.endpoint_url,
            "variant": self.variant,
            "source": self.source,
            "checks": [
                {"name": c.name, "status": c.status, "detail": c.detail} for c in self.checks
            ],
            "latency_ms": dict(self.latency_ms),
            "metrics": {name: dict(values) for name, values in self.metrics.items()},
            "passed": self.passed,
        }

    def render(self) -> str:
        """The readable report: one line per check, then the verdict."""
        where = f"local {self.endpoint_url}" if self.endpoint_url else self.region
        variant = f", variant {self.variant}" if self.variant else ""
        lines = [
            f"smoke test of endpoint {self.endpoint_name}{variant} ({where}; from {self.source})"
        ]
        width = max((len(c.name) for c in self.checks), default=0)
        lines += [f"  {c.status}  {c.name:<{width}}  {c.detail}" for c in self.checks]
        failed = [c.name for c in self.checks if c.status == FAIL]
        lines.append("FAILED: " + ", ".join(failed) if failed else "PASSED")
        return "\n".join(lines)


# --- Samples ------------------------------------------------------------------------------------


# --- Where the endpoint is ----------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """The endpoint to test, and what the stack says it should be serving."""

    endpoint_name: str
    region: str
    source: str
    endpoint_url: str | None = None
    expected_config_name: str | None = None

    @property
    def local(self) -> bool:
        """A local endpoint (``--endpoint-url``) has a data plane only."""
        return self.endpoint_url is not None


def parse_stack_outputs(text: str, source: str) -> dict[str, Any]:
    """The JSON object ``pulumi stack output --json`` prints (raises :class:`CannotRun`)."""
    try:
        outputs = json.loads(text)
    except ValueError as exc:
        raise CannotRun(f"stack outputs from {source} are not JSON: {exc}") from None
    if not isinstance(outputs, dict):
        raise CannotRun(f"stack outputs from {source} must be a JSON object")
    name = outputs.get(OUTPUT_ENDPOINT_NAME)
    if not isinstance(name, str) or not name:
        raise CannotRun(
            f"stack outputs from {source} have no {OUTPUT_ENDPOINT_NAME} (was the stack deployed?)"
        )
    return outputs


def read_outputs_file(path: Path) -> dict[str, Any]:
    """Stack outputs saved with ``pulumi stack output --json > FILE``."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CannotRun(f"cannot read stack outputs {path}: {exc.strerror or exc}") from None
    return parse_stack_outputs(text, str(path))


def pulumi_stack_outputs(stack: str, project_dir: Path) -> dict[str, Any] | None:
    """Outputs from the Pulumi CLI, or None when it is not installed."""
    pulumi = shutil.which("pulumi")
    if pulumi is None:
        return None
    argv = [pulumi, "stack", "output", "--json", "--non-interactive", "--stack", stack]
    try:
        result = subprocess.run(
            [*argv, "--cwd", str(project_dir)],
            capture_output=True,
            text=True,
            timeout=PULUMI_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CannotRun(f"`pulumi stack output` did not run: {exc}") from None
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no message"])[-1]
        raise CannotRun(f"`pulumi stack output -s {stack}` failed: {last}")
    return parse_stack_outputs(result.stdout, f"pulumi stack output -s {stack}")


def _check_endpoint_url(url: str) -> str:
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise CannotRun(
            f"--endpoint-url {url!r} must be an http(s) URL such as http://127.0.0.1:8080"
        )
    return url.rstrip("/")


def resolve_target(args: argparse.Namespace, settings: Callable[[], EndpointSettings]) -> Target:
    """Where the endpoint is: ``--endpoint-url``, ``--endpoint-name``, ``--outputs``, or Pulumi.

    ``settings`` is called only when the stack file is needed (a name or region not given).
    """
    if args.endpoint_url:
        if args.outputs:
            raise CannotRun("--outputs describes a deployed stack; --endpoint-url a local one")
        url = _check_endpoint_url(args.endpoint_url)
        name = args.endpoint_name or settings().endpoint_name
        source = "--endpoint-name" if args.endpoint_name else f"stack settings of {args.stack}"
        return Target(name, args.region or settings().region, source, endpoint_url=url)
    if args.endpoint_name:
        return Target(args.endpoint_name, args.region or settings().region, "--endpoint-name")
    if args.outputs:
        outputs = read_outputs_file(Path(args.outputs))
        source = f"stack outputs {args.outputs}"
    else:
        found = pulumi_stack_outputs(args.stack, Path(args.project_dir).resolve())
        if found is None:
            raise CannotRun(
                "the pulumi CLI is not on PATH: pass --outputs FILE.json (what `pulumi stack "
                "output --json` prints), --endpoint-name NAME, or --endpoint-url URL"
            )
        outputs, source = found, f"pulumi stack output -s {args.stack}"
    config_name = outputs.get(OUTPUT_ENDPOINT_CONFIG_NAME)
    region = args.region or outputs.get(OUTPUT_REGION) or settings().region
    return Target(
        outputs[OUTPUT_ENDPOINT_NAME],
        str(region),
        source,
        expected_config_name=config_name if isinstance(config_name, str) else None,
    )


# --- Clients ------------------------------------------------------------------------------------


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


# --- Invoking -----------------------------------------------------------------------------------


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


def _parse_predictions(answer: Answer, rows: int) -> list[Any] | str:
    """The ``predictions`` list of a 200 answer, or why the answer is not one."""
    if answer.status != 200:
        source = "model" if answer.from_model else "service"
        return f"the {source} answered {answer.status}: {_short(answer.body)}"
    try:
        decoded = json.loads(answer.body)
    except ValueError:
        return f"the answer is not JSON: {_short(answer.body)}"
    predictions = decoded.get("predictions") if isinstance(decoded, dict) else None
    if not isinstance(predictions, list) or len(predictions) != rows:
        return f'the answer is not {{"predictions": [{rows} values]}}: {_short(answer.body)}'
    return predictions


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- Checks -------------------------------------------------------------------------------------


def check_in_service(
    sagemaker: Any,
    endpoint_name: str,
    *,
    timeout: float,
    poll_seconds: float = POLL_SECONDS,
    report: Callable[[str], None] = progress,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[Check, dict[str, Any] | None]:
    """Poll ``DescribeEndpoint`` until InService, Failed or ``timeout`` seconds.

    Returns the verdict and the last description (None when the endpoint is not InService).
    A status line per poll goes to ``report`` (stderr), so a long wait is visibly alive.
    """
    start = clock()
    while True:
        try:
            description: dict[str, Any] = sagemaker.describe_endpoint(EndpointName=endpoint_name)
        except botocore.exceptions.ClientError as exc:
            error = exc.response.get("Error", {})
            raise CannotRun(
                f"DescribeEndpoint {endpoint_name}: {error.get('Code')}: {error.get('Message')}"
            ) from None
        except botocore.exceptions.BotoCoreError as exc:
            raise CannotRun(f"cannot reach SageMaker: {exc}") from None
        status = description.get("EndpointStatus", "?")
        reason = description.get("FailureReason")
        elapsed = clock() - start
        report(f"endpoint {endpoint_name}: {status} ({elapsed:.0f} s of {timeout:.0f} s)")
        if status == IN_SERVICE:
            serving = description.get("EndpointConfigName")
            detail = f"InService after {elapsed:.0f} s, serving {serving}"
            if reason:
                detail += f" (last update failed: {reason})"
            return Check(CHECK_IN_SERVICE, PASS, detail), description
        if status not in TRANSITIONAL_STATUSES:
            why = f": {reason}" if reason else " (no FailureReason given)"
            return Check(CHECK_IN_SERVICE, FAIL, f"endpoint is {status}{why}"), None
        if elapsed >= timeout:
            return (
                Check(CHECK_IN_SERVICE, FAIL, f"still {status} after {elapsed:.0f} s (--timeout)"),
                None,
            )
        sleep(max(0.0, min(poll_seconds, timeout - elapsed)))


def check_endpoint_config(description: Mapping[str, Any], expected: str | None) -> Check:
    """The endpoint serves the configuration the stack created (not a rolled-back one)."""
    if expected is None:
        return Check(
            CHECK_ENDPOINT_CONFIG,
            SKIP,
            f"no stack output {OUTPUT_ENDPOINT_CONFIG_NAME} to compare with "
            f"(serving {description.get('EndpointConfigName')})",
        )
    actual = description.get("EndpointConfigName")
    if actual == expected:
        return Check(CHECK_ENDPOINT_CONFIG, PASS, f"serving {actual}, as the stack expects")
    reason = description.get("FailureReason")
    return Check(
        CHECK_ENDPOINT_CONFIG,
        FAIL,
        f"endpoint serves {actual} but the stack output {OUTPUT_ENDPOINT_CONFIG_NAME} is "
        f"{expected}: SageMaker rolled the update back"
        + (f" (FailureReason: {reason})" if reason else ""),
    )


def prediction_error(actual: object, expected: object) -> float | None:
    """Absolute difference of two numeric predictions (lists elementwise, the largest).

    None when they cannot match: labels that differ (``true`` is not ``1``), lists of
    different lengths, NaN.
    """
    if is_number(actual) and is_number(expected):
        error = abs(float(actual) - float(expected))  # type: ignore[arg-type]
        return None if math.isnan(error) else error
    if isinstance(actual, list) and isinstance(expected, list):
        if len(actual) != len(expected):
            return None
        errors = [prediction_error(a, e) for a, e in zip(actual, expected, strict=True)]
        return None if None in errors else max((e for e in errors if e is not None), default=0.0)
    return 0.0 if type(actual) is type(expected) and actual == expected else None


def check_predictions(
    runtime: Any, endpoint_name: str, samples: Samples, *, max_bytes: int = PAYLOAD_LIMIT_BYTES
) -> tuple[Check, list[Any] | None]:
    """Invoke every sample; each answer within ``samples.tolerance`` of the expected one.

    Returns the verdict and the endpoint's answers (None when it did not answer them all).
    """
    answers: list[Any] = []
    groups = batches(samples.instances, max_bytes)
    for group in groups:
        answer = invoke(runtime, endpoint_name, {"instances": group})
        parsed = _parse_predictions(answer, len(group))
        if isinstance(parsed, str):
            return Check(CHECK_PREDICTIONS, FAIL, f"{len(group)} samples: {parsed}"), None
        answers.extend(parsed)
    wrong: list[str] = []
    largest = 0.0
    for index, (actual, expected) in enumerate(zip(answers, samples.predictions, strict=True)):
        error = prediction_error(actual, expected)
        if error is not None:
            largest = max(largest, error)
        if error is None or error > samples.tolerance:
            wrong.append(f"#{index} {samples.instances[index]} -> {actual}, expected {expected}")
    total = len(answers)
    scope = f"in {len(groups)} request(s), tolerance {samples.tolerance:g} absolute"
    if wrong:
        shown = "; ".join(wrong[:3]) + (f"; and {len(wrong) - 3} more" if len(wrong) > 3 else "")
        detail = f"{len(wrong)}/{total} wrong {scope}: {shown}"
        return Check(CHECK_PREDICTIONS, FAIL, detail), answers
    detail = f"{total}/{total} as expected {scope} (largest error {largest:.3g})"
    return Check(CHECK_PREDICTIONS, PASS, detail), answers


def _parse_probabilities(
    answer: Answer, rows: int
) -> tuple[list[Any], list[list[Any]], list[Any] | None] | str:
    """Predictions, probabilities and classes of a 200 answer, or why it is not one."""
    predictions = _parse_predictions(answer, rows)
    if isinstance(predictions, str):
        return predictions
    decoded = json.loads(answer.body)
    probabilities, classes = decoded.get("probabilities"), decoded.get("classes")
    if not isinstance(probabilities, list) or len(probabilities) != rows:
        return f'the answer has no "probabilities" for {rows} rows: {_short(answer.body)}'
    if classes is not None and not isinstance(classes, list):
        return f'the answer\'s "classes" is not a list: {_short(answer.body)}'
    return predictions, probabilities, classes


def _probability_row_problem(row: object, width: int | None) -> str | None:
    """Why one row of probabilities is not a distribution over ``width`` classes, or None."""
    if not isinstance(row, list) or not all(is_number(v) for v in row):
        return "is not a list of numbers"
    if width is not None and len(row) != width:
        return f"has {len(row)} values for {width} classes"
    if any(v < 0 or v > 1 for v in row):
        return "has a value outside [0, 1]"
    if abs(sum(row) - 1.0) > PROBABILITY_SUM_SLACK:
        return f"sums to {sum(row):.6g}, not 1"
    return None


def check_probabilities(
    runtime: Any, endpoint_name: str, samples: Samples, *, max_bytes: int = PAYLOAD_LIMIT_BYTES
) -> Check:
    """Every sample with probabilities asked for: the same predictions and valid probabilities.

    A 4xx from the model means it serves no probabilities (a regressor): a skip. Anything else
    that is not a valid answer fails: the endpoint would serve it to a client who asks.
    """
    answered: list[tuple[Any, list[Any], list[Any] | None]] = []
    for group in batches(samples.instances, max_bytes - len(',"probabilities":true')):
        answer = invoke(runtime, endpoint_name, {"instances": group, "probabilities": True})
        if answer.from_model and 400 <= answer.status < 500:
            return Check(
                CHECK_PROBABILITIES,
                SKIP,
                f"the model serves no probabilities ({answer.status}: {_short(answer.body)})",
            )
        parsed = _parse_probabilities(answer, len(group))
        if isinstance(parsed, str):
            return Check(CHECK_PROBABILITIES, FAIL, f"{len(group)} samples: {parsed}")
        predictions, rows, classes = parsed
        answered.extend((p, r, classes) for p, r in zip(predictions, rows, strict=True))
    classes = answered[0][2]
    problems: list[str] = []
    if samples.classes is not None and classes != samples.classes:
        problems.append(f"classes {classes}, expected {samples.classes}")
    width = len(classes) if classes is not None else None
    for index, (prediction, row, _) in enumerate(answered):
        expected = samples.predictions[index]
        error = prediction_error(prediction, expected)
        if error is None or error > samples.tolerance:
            problems.append(
                f"#{index} predicted {prediction} with probabilities, expected {expected}"
            )
        row_problem = _probability_row_problem(row, width)
        if row_problem is not None:
            problems.append(f"#{index} probabilities {_short(json.dumps(row), 80)} {row_problem}")
        elif samples.probabilities is not None:
            off = prediction_error(row, samples.probabilities[index])
            if off is None or off > samples.tolerance:
                problems.append(
                    f"#{index} probabilities {row}, expected {samples.probabilities[index]}"
                )
    total = len(answered)
    if problems:
        shown = "; ".join(problems[:3]) + (
            f"; and {len(problems) - 3} more" if len(problems) > 3 else ""
        )
        return Check(
            CHECK_PROBABILITIES, FAIL, f"{len(problems)} problem(s) in {total} samples: {shown}"
        )
    compared = " and the recorded probabilities" if samples.probabilities is not None else ""
    return Check(
        CHECK_PROBABILITIES,
        PASS,
        f"{total}/{total} with {width if width is not None else 'their'} class probabilities "
        f"summing to 1, same predictions{compared}",
    )


def classification_metrics(
    targets: Sequence[Any], predictions: Sequence[Any]
) -> tuple[dict[str, float], dict[str, tuple[int, int]]]:
    """Accuracy, and per class (by true label) how many were right of how many there were."""
    per_class: dict[str, list[int]] = {}
    right = 0
    for target, prediction in zip(targets, predictions, strict=True):
        hit = prediction_error(prediction, target) == 0.0
        right += hit
        counts = per_class.setdefault(json.dumps(target), [0, 0])
        counts[0] += hit
        counts[1] += 1
    metrics = {"accuracy": right / len(targets)}
    return metrics, {label: (c[0], c[1]) for label, c in sorted(per_class.items())}


def regression_metrics(targets: Sequence[float], predictions: Sequence[float]) -> dict[str, float]:
    """RMSE, MAE and R² as scikit-learn computes them (R² left out when targets are constant)."""
    n = len(targets)
    residuals = [p - t for p, t in zip(predictions, targets, strict=True)]
    sse = sum(r * r for r in residuals)
    metrics = {"rmse": math.sqrt(sse / n), "mae": sum(abs(r) for r in residuals) / n}
    mean = sum(targets) / n
    sst = sum((t - mean) ** 2 for t in targets)
    if sst > 0:
        metrics["r2"] = 1.0 - sse / sst
    return metrics


def is_worse(name: str, measured: float, recorded: float) -> bool:
    """Whether ``measured`` is worse than ``recorded`` beyond the documented slack."""
    slack = METRICS_RELATIVE_SLACK * abs(recorded) + METRICS_ABSOLUTE_SLACK
    if HIGHER_IS_BETTER[name]:
        return measured < recorded - slack
    return measured > recorded + slack


def check_metrics(
    samples: Samples, predictions: Sequence[Any] | None
) -> tuple[Check, dict[str, dict[str, float | None]]]:
    """Metrics recomputed from the endpoint's answers are no worse than at training time."""
    if samples.targets is None:
        return Check(CHECK_METRICS, SKIP, "samples carry no targets"), {}
    if predictions is None:
        return Check(CHECK_METRICS, SKIP, "the endpoint did not answer every sample"), {}
    per_class = ""
    if samples.classification:
        measured, counts = classification_metrics(samples.targets, predictions)
        per_class = "; per class (right/total): " + ", ".join(
            f"{label} {right}/{total}" for label, (right, total) in counts.items()
        )
    elif not all(is_number(v) for v in [*samples.targets, *predictions]):
        return Check(CHECK_METRICS, SKIP, "targets or answers are not numbers"), {}
    else:
        measured = regression_metrics(samples.targets, predictions)
    table: dict[str, dict[str, float | None]] = {
        name: {"measured": value, "recorded": samples.metrics.get(name)}
        for name, value in measured.items()
    }
    shown = ", ".join(
        f"{name} {value:.6g}"
        + (f" (recorded {samples.metrics[name]:.6g})" if name in samples.metrics else "")
        for name, value in measured.items()
    )
    shown += per_class
    compared = [name for name in measured if name in samples.metrics]
    if not compared:
        return Check(CHECK_METRICS, SKIP, f"no metrics recorded at training time; {shown}"), table
    worse = [n for n in compared if is_worse(n, measured[n], float(samples.metrics[n]))]
    if worse:
        detail = f"worse than at training time: {', '.join(worse)}; {shown}"
        return Check(CHECK_METRICS, FAIL, detail), table
    return Check(CHECK_METRICS, PASS, shown), table


def bad_request(instance: object) -> tuple[dict[str, Any], str]:
    """A request every model must refuse, built from a valid sample: one feature too many."""
    if isinstance(instance, list):
        extra = instance[-1] if instance else 0.0
        return {"instances": [[*instance, extra]]}, (
            f"a sample with {len(instance) + 1} features instead of {len(instance)}"
        )
    if isinstance(instance, dict):
        unknown = "skdeploy_smoke_unknown_feature"
        return {"instances": [{**instance, unknown: 0.0}]}, f"a sample with feature {unknown}"
    kind = type(instance).__name__
    raise CannotRun(f"samples must be rows (lists) or records (objects), not {kind}")


def check_bad_request(runtime: Any, endpoint_name: str, samples: Samples) -> Check:
    """A malformed request is refused by the model with a 4xx, not served and not crashed on."""
    payload, what = bad_request(samples.instances[0])
    answer = invoke(runtime, endpoint_name, payload)
    if answer.from_model and 400 <= answer.status < 500:
        detail = f"{what}: refused with {answer.status}: {_short(answer.body)}"
        return Check(CHECK_BAD_REQUEST, PASS, detail)
    if answer.status == 200:
        return Check(CHECK_BAD_REQUEST, FAIL, f"{what}: accepted (200): {_short(answer.body)}")
    source = "model" if answer.from_model else "service"
    return Check(
        CHECK_BAD_REQUEST,
        FAIL,
        f"{what}: the {source} answered {answer.status} instead of a 4xx: {_short(answer.body)}",
    )


def percentile(sorted_values: Sequence[float], percent: float) -> float:
    """Nearest-rank percentile: the smallest value with ``percent`` % of values at or below it."""
    rank = max(1, math.ceil(percent / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def check_latency(
    runtime: Any,
    endpoint_name: str,
    samples: Samples,
    calls: int,
    *,
    clock: Callable[[], float] = time.perf_counter,
) -> tuple[Check, dict[str, float]]:
    """``calls`` single-row requests, cycling through the samples: p50, p95 and max in ms."""
    if calls <= 0:
        return Check(CHECK_LATENCY, SKIP, "--calls 0"), {}
    timings: list[float] = []
    for call in range(calls):
        instance = samples.instances[call % len(samples.instances)]
        start = clock()
        answer = invoke(runtime, endpoint_name, {"instances": [instance]})
        timings.append((clock() - start) * 1000.0)
        parsed = _parse_predictions(answer, 1)
        if isinstance(parsed, str):
            return Check(CHECK_LATENCY, FAIL, f"call {call + 1} of {calls}: {parsed}"), {}
    timings.sort()
    stats = {
        "calls": float(calls),
        "p50": percentile(timings, 50),
        "p95": percentile(timings, 95),
        "max": timings[-1],
    }
    detail = (
        f"p50 {stats['p50']:.1f} ms, p95 {stats['p95']:.1f} ms, max {stats['max']:.1f} ms "
        f"over {calls} single-row calls"
    )
    return Check(CHECK_LATENCY, PASS, detail), stats


# --- Running ------------------------------------------------------------------------------------


def run_smoke(
    target: Target,
    samples: Samples,
    clients: Clients,
    *,
    calls: int = DEFAULT_LATENCY_CALLS,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    poll_seconds: float = POLL_SECONDS,
    report: Callable[[str], None] = progress,
) -> SmokeReport:
    """Every check against ``target``, in order; raises :class:`CannotRun` if it cannot run."""
    result = SmokeReport(target.endpoint_name, target.region, target.source, target.endpoint_url)
    if clients.sagemaker is None:
        local = "local endpoint: no control plane to describe"
        result.checks.append(Check(CHECK_IN_SERVICE, SKIP, local))
        result.checks.append(Check(CHECK_ENDPOINT_CONFIG, SKIP, local))
    else:
        in_service, description = check_in_service(
            clients.sagemaker,
            target.endpoint_name,
            timeout=timeout,
            poll_seconds=poll_seconds,
            report=report,
        )
        result.checks.append(in_service)
        if description is None:
            for name in CHECKS[1:]:
                result.checks.append(Check(name, SKIP, "endpoint is not InService"))
            return result
        result.checks.append(check_endpoint_config(description, target.expected_config_name))
    report(f"invoking {target.endpoint_name} with {len(samples.instances)} samples")
    predictions_check, answers = check_predictions(clients.runtime, target.endpoint_name, samples)
    result.checks.append(predictions_check)
    result.checks.append(check_probabilities(clients.runtime, target.endpoint_name, samples))
    metrics_check, result.metrics = check_metrics(samples, answers)
    result.checks.append(metrics_check)
    result.checks.append(check_bad_request(clients.runtime, target.endpoint_name, samples))
    if calls > 0:
        report(f"timing {calls} single-row calls")
    latency_check, result.latency_ms = check_latency(
        clients.runtime, target.endpoint_name, samples, calls
    )
    result.checks.append(latency_check)
    return result


def execute(
    args: argparse.Namespace,
    *,
    clients: Clients | None = None,
    poll_seconds: float = POLL_SECONDS,
) -> int:
    """``skdeploy smoke``: resolve the endpoint, run the checks, print the report, exit code.

    ``clients`` replaces the boto3 clients built from the arguments (the tests pass moto- or
    Stubber-backed ones); everything else runs as on the command line.
    """
    loaded: list[EndpointSettings] = []

    def settings() -> EndpointSettings:
        if not loaded:
            loaded.append(stack_settings(args))
        return loaded[0]

    try:
        target = resolve_target(args, settings)
        runs = variant_runs(args, settings, local=target.endpoint_url is not None)
        prepared = [(variant, load_samples(path)) for variant, path in runs]  # all, before calls
        base = clients or make_clients(target)
        results = []
        for variant, samples in prepared:
            runtime = base.runtime if variant is None else TargetedRuntime(base.runtime, variant)
            result = run_smoke(
                target,
                samples,
                Clients(runtime=runtime, sagemaker=base.sagemaker),
                calls=args.calls,
                timeout=args.timeout,
                poll_seconds=poll_seconds,
            )
            result.variant = variant
            results.append(result)
    except CannotRun as exc:
        print(f"skdeploy: smoke cannot run: {exc}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    if args.json:
        document: Any = results[0].to_json()
        if len(results) > 1:
            document = {
                "endpoint_name": target.endpoint_name,
                "region": target.region,
                "variants": {r.variant: r.to_json() for r in results},
                "passed": all(r.passed for r in results),
            }
        print(json.dumps(document, indent=2))
    else:
        print("\n\n".join(r.render() for r in results))
    return max(r.exit_code for r in results)


def variant_runs(
    args: argparse.Namespace, settings: Callable[[], EndpointSettings], *, local: bool
) -> list[tuple[str | None, Path]]:
    """Which variant to target (None: let SageMaker split by weight) and its samples, per run.

    ``--variant`` targets one; a stack with several production variants gets one run per variant,
    each against that variant's own samples; a local endpoint serves one variant, the one
    ``skdeploy serve`` picks. ``--samples`` without ``--variant`` keeps SageMaker's routing.
    """
    if args.variant is None and args.samples:
        return [(None, Path(args.samples))]
    stack = settings()
    if args.variant is not None:
        if not local and stack.shadow is not None and args.variant == stack.shadow.name:
            raise CannotRun(
                f"{args.variant} is the shadow variant: SageMaker answers only from production "
                "variants (serve it with `skdeploy serve --variant` and smoke that instead)"
            )
        try:
            chosen = stack.only_variant(args.variant)
        except ValueError as exc:
            raise CannotRun(str(exc)) from None
        samples = Path(args.samples) if args.samples else chosen.model_dir / SAMPLES_FILE
        return [(args.variant, samples)]
    if not stack.variants:
        return [(None, stack.model_dir / SAMPLES_FILE)]
    variants = stack.production_variants[:1] if local else stack.production_variants
    return [(v.name, v.model_dir / SAMPLES_FILE) for v in variants]


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``skdeploy smoke``."""
    parser = sub.add_parser(
        "smoke",
        help="invoke the deployed (or a local) endpoint and check it serves the deployed model",
        description="Invoke an endpoint with the model's samples and check that it serves the "
        "deployed model. Exit 0 passed, 1 a check failed, 2 cannot run.",
    )
    add_stack_arguments(parser)
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--outputs",
        type=Path,
        help="stack outputs saved by `pulumi stack output --json` (instead of running pulumi)",
    )
    source.add_argument("--endpoint-name", help="the endpoint to test, instead of stack outputs")
    parser.add_argument("--region", help="AWS region (default: stack outputs, then stack file)")
    parser.add_argument(
        "--endpoint-url",
        help="a local endpoint, e.g. http://127.0.0.1:8080 (no DescribeEndpoint; the name "
        "comes from --endpoint-name or the stack file)",
    )
    parser.add_argument(
        "--samples", type=Path, help=f"samples file (default: <modelDir>/{SAMPLES_FILE})"
    )
    parser.add_argument(
        "--variant",
        default=None,
        help="check one production variant (TargetVariant) against its own samples (default: "
        "each production variant of a stack that has several, in turn)",
    )
    parser.add_argument(
        "--calls",
        type=_non_negative_int,
        default=DEFAULT_LATENCY_CALLS,
        help=f"single-row calls to time (default: {DEFAULT_LATENCY_CALLS}; 0 skips latency)",
    )
    parser.add_argument(
        "--timeout",
        type=_positive_float,
        default=DEFAULT_TIMEOUT_SECONDS,
        help=f"seconds to wait for InService (default: {DEFAULT_TIMEOUT_SECONDS:.0f})",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    parser.set_defaults(handler=execute)
