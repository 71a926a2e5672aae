"""SageMaker's real-time hosting instance types, and the suggestion shown for a mistyped one."""

from __future__ import annotations

import difflib
import functools
import json
import re
from pathlib import Path
from typing import Final

#: SageMaker's real-time hosting instance types, as data: where they come from and when is
#: recorded in the file (botocore's ``ProductionVariantInstanceType`` enum).
INSTANCE_TYPES_FILE: Final = Path(__file__).parent.with_name("instance_types.json")


@functools.cache
def instance_types() -> tuple[str, ...]:
    """SageMaker's real-time hosting instance types (``skdeploy/core/instance_types.json``)."""
    data = json.loads(INSTANCE_TYPES_FILE.read_text(encoding="utf-8"))
    return tuple(data["instanceTypes"])


def instance_type_rule(value: object) -> str | None:
    """Why ``value`` is not an instance type SageMaker hosts (None when it is one)."""
    if not isinstance(value, str):
        return "must be a string such as ml.m5.large"
    known = instance_types()
    if value in known:
        return None
    rule = "not a SageMaker real-time instance type"
    if not value.startswith("ml."):
        rule = "must start with `ml.`, e.g. ml.m5.large: " + rule
    family = value.rsplit(".", 1)[0]
    close = difflib.get_close_matches(value, known, n=3, cutoff=0.75)
    sizes = sorted((t for t in known if t.rsplit(".", 1)[0] == family), key=_size_order)
    close += [t for t in sizes if t not in close]
    listed = f"skdeploy/{INSTANCE_TYPES_FILE.name} lists them all"
    if close:
        return f"{rule}; did you mean {', '.join(close[:8])}? ({listed})"
    return f"{rule}, e.g. ml.m5.large ({listed})"


def _size_order(instance_type: str) -> tuple[int, str]:
    """medium, large, xlarge, 2xlarge, ..., 48xlarge: the order sizes grow in."""
    size = instance_type.rsplit(".", 1)[-1]
    steps = {"medium": 0, "large": 1, "xlarge": 2}
    if size in steps:
        return steps[size], size
    times = re.match(r"\d+", size)
    return (2 + int(times.group()), size) if times else (10_000, size)
