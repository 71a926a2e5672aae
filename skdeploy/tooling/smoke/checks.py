"""Each smoke check in a function of its own, returning its :class:`Check` verdict."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import botocore.exceptions

from skdeploy.core.constants import (
    MAX_PAYLOAD_BYTES,
    MAX_SERVERLESS_PAYLOAD_BYTES,
    OUTPUT_ENDPOINT_CONFIG_NAME,
)
from skdeploy.core.samples import CannotRun, Samples, batches, is_number
from skdeploy.tooling.common import progress
from skdeploy.tooling.smoke.clients import Answer, invoke, parse_predictions, shorten
from skdeploy.tooling.smoke.report import (
    CHECK_BAD_REQUEST,
    CHECK_ENDPOINT_CONFIG,
    CHECK_IN_SERVICE,
    CHECK_LATENCY,
    CHECK_PREDICTIONS,
    CHECK_PROBABILITIES,
    FAIL,
    PASS,
    SKIP,
    Check,
    Status,
)

#: Whether an endpoint is serverless is not in the stack outputs, so batches keep to the smaller
#: (serverless) limit, which fits both kinds.
PAYLOAD_LIMIT_BYTES: Final = min(MAX_PAYLOAD_BYTES, MAX_SERVERLESS_PAYLOAD_BYTES)
#: Seconds between two ``DescribeEndpoint`` calls while the endpoint is not yet InService.
POLL_SECONDS: Final = 15.0
#: How far a row of class probabilities may sum from 1 (float32 round-off on many classes).
PROBABILITY_SUM_SLACK: Final = 1e-4
#: Statuses an endpoint passes through on its way to InService (or to Failed).
TRANSITIONAL_STATUSES: Final = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack"})
IN_SERVICE: Final = "InService"


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
        parsed = parse_predictions(answer, len(group))
        if isinstance(parsed, str):
            return Check(CHECK_PREDICTIONS, FAIL, f"{len(group)} samples: {parsed}"), None
        answers.extend(parsed)
    verdict, detail = compare_predictions(answers, samples, requests=len(groups))
    return Check(CHECK_PREDICTIONS, verdict, detail), answers


def compare_predictions(
    answers: list[Any], samples: Samples, *, requests: int = 1
) -> tuple[Status, str]:
    """The verdict on the endpoint's answers to every sample, and what it saw (the wrong ones)."""
    wrong: list[str] = []
    largest = 0.0
    for index, (actual, expected) in enumerate(zip(answers, samples.predictions, strict=True)):
        error = prediction_error(actual, expected)
        if error is not None:
            largest = max(largest, error)
        if error is None or error > samples.tolerance:
            wrong.append(f"#{index} {samples.instances[index]} -> {actual}, expected {expected}")
    total = len(answers)
    scope = f"in {requests} request(s), tolerance {samples.tolerance:g} absolute"
    if wrong:
        shown = "; ".join(wrong[:3]) + (f"; and {len(wrong) - 3} more" if len(wrong) > 3 else "")
        return FAIL, f"{len(wrong)}/{total} wrong {scope}: {shown}"
    return PASS, f"{total}/{total} as expected {scope} (largest error {largest:.3g})"


def _parse_probabilities(
    answer: Answer, rows: int
) -> tuple[list[Any], list[list[Any]], list[Any] | None] | str:
    """Predictions, probabilities and classes of a 200 answer, or why it is not one."""
    predictions = parse_predictions(answer, rows)
    if isinstance(predictions, str):
        return predictions
    decoded = json.loads(answer.body)
    probabilities, classes = decoded.get("probabilities"), decoded.get("classes")
    if not isinstance(probabilities, list) or len(probabilities) != rows:
        return f'the answer has no "probabilities" for {rows} rows: {shorten(answer.body)}'
    if classes is not None and not isinstance(classes, list):
        return f'the answer\'s "classes" is not a list: {shorten(answer.body)}'
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
                f"the model serves no probabilities ({answer.status}: {shorten(answer.body)})",
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
            problems.append(f"#{index} probabilities {shorten(json.dumps(row), 80)} {row_problem}")
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
        detail = f"{what}: refused with {answer.status}: {shorten(answer.body)}"
        return Check(CHECK_BAD_REQUEST, PASS, detail)
    if answer.status == 200:
        return Check(CHECK_BAD_REQUEST, FAIL, f"{what}: accepted (200): {shorten(answer.body)}")
    source = "model" if answer.from_model else "service"
    return Check(
        CHECK_BAD_REQUEST,
        FAIL,
        f"{what}: the {source} answered {answer.status} instead of a 4xx: {shorten(answer.body)}",
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
        parsed = parse_predictions(answer, 1)
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
