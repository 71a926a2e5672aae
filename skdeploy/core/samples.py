"""``samples.json``: rows with their known answers, read and batched as every check sends them.

The smoke test, ``check``'s load-and-predict and the static size check all read samples through
:func:`load_samples` and split them into requests with :func:`batches`. This module imports no
AWS client and no command line, so the static checks (which the Pulumi program runs) can use it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["CannotRun", "Samples", "batches", "is_number", "load_samples"]


class CannotRun(Exception):
    """A check cannot run at all (exit 2): unusable samples, an endpoint that cannot be reached;
    the message is one line saying why."""


@dataclass(frozen=True)
class Samples:
    """``samples.json``: rows with their known answers, written when the model was trained."""

    path: Path
    instances: list[Any]
    predictions: list[Any]
    tolerance: float
    targets: list[Any] | None
    metrics: dict[str, float]
    #: A classifier's classes in the order of its ``classes_`` (``samples.json``'s ``classes``).
    classes: list[Any] | None = None
    #: Expected class probabilities per instance (``samples.json``'s ``probabilities``).
    probabilities: list[list[float]] | None = None

    @property
    def classification(self) -> bool:
        """Whether the samples are a classifier's: classes listed, accuracy recorded, or labels."""
        if self.classes is not None or "accuracy" in self.metrics:
            return True
        values = [*(self.targets or []), *self.predictions]
        return any(not is_number(v) for v in values)


def load_samples(path: Path) -> Samples:
    """Read and validate a samples file (raises :class:`CannotRun` naming what is wrong)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CannotRun(f"no samples file {path} (pass --samples PATH)") from None
    except (OSError, ValueError) as exc:
        raise CannotRun(f"cannot read samples file {path}: {exc}") from None
    if not isinstance(data, dict):
        raise CannotRun(f"{path}: must be a JSON object with instances and predictions")
    instances, predictions = data.get("instances"), data.get("predictions")
    if not isinstance(instances, list) or not instances:
        raise CannotRun(f"{path}: 'instances' must be a non-empty list of rows")
    if not isinstance(predictions, list) or len(predictions) != len(instances):
        raise CannotRun(f"{path}: 'predictions' must list one expected answer per instance")
    tolerance = data.get("tolerance", 0.0)
    if not is_number(tolerance) or tolerance < 0:
        raise CannotRun(f"{path}: 'tolerance' must be a number >= 0")
    targets = data.get("targets")
    if targets is not None and (not isinstance(targets, list) or len(targets) != len(instances)):
        raise CannotRun(f"{path}: 'targets' must list one true value per instance")
    metrics = data.get("metrics") or {}
    if not isinstance(metrics, dict) or not all(is_number(v) for v in metrics.values()):
        raise CannotRun(f"{path}: 'metrics' must map metric names to numbers")
    classes = data.get("classes")
    if classes is not None and (
        not isinstance(classes, list)
        or not classes
        or len(set(map(json.dumps, classes))) != len(classes)
    ):
        raise CannotRun(f"{path}: 'classes' must list the model's distinct classes")
    probabilities = data.get("probabilities")
    if probabilities is not None and (
        not isinstance(probabilities, list)
        or len(probabilities) != len(instances)
        or not all(isinstance(r, list) and all(is_number(v) for v in r) for r in probabilities)
    ):
        raise CannotRun(f"{path}: 'probabilities' must list one row of numbers per instance")
    return Samples(
        path, instances, predictions, float(tolerance), targets, metrics, classes, probabilities
    )


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def batches(instances: Sequence[Any], max_bytes: int) -> list[list[Any]]:
    """Consecutive runs of instances whose ``{"instances": [...]}`` body fits in ``max_bytes``."""
    overhead = len(json.dumps({"instances": []}, separators=(",", ":")))
    result: list[list[Any]] = []
    current: list[Any] = []
    size = overhead
    for index, instance in enumerate(instances):
        row = len(json.dumps(instance, separators=(",", ":")).encode("utf-8"))
        if overhead + row > max_bytes:
            raise CannotRun(f"sample {index} alone is over the {max_bytes}-byte payload limit")
        extra = row + (1 if current else 0)
        if current and size + extra > max_bytes:
            result.append(current)
            current, size, extra = [], overhead, row
        current.append(instance)
        size += extra
    if current:
        result.append(current)
    return result
