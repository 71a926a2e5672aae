"""The ``metrics`` check: metrics recomputed from the endpoint's answers, compared with those
recorded at training time.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, Final

from skdeploy.core.samples import Samples, is_number
from skdeploy.tooling.smoke.checks import prediction_error
from skdeploy.tooling.smoke.report import CHECK_METRICS, FAIL, PASS, SKIP, Check

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
