"""The ``batch`` key: how ``skdeploy batch`` splits, batches and runs a transform job.

One module for the one key, so that its members, its value object and its parser sit together:
the same values drive the local batch (``skdeploy batch --input data/``) and the remote
``CreateTransformJob`` (``--input s3://...``). The ranges are CreateTransformJob's own
(``MaxPayloadInMB`` 0-100, ``MaxConcurrentTransforms`` 0-100 with 0 meaning "ask the container's
``/execution-parameters``", ``InstanceCount`` 1-100).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

from skdeploy.core.settings._coerce import as_str
from skdeploy.core.settings._rules import (
    Member,
    Rule,
    Setting,
    member_problems,
    parse_map,
    refuse_invalid,
    spoken,
    whole,
)
from skdeploy.core.settings.errors import Problems

SPLIT_TYPES: Final = ("Line", "None")
STRATEGIES: Final = ("MultiRecord", "SingleRecord")
#: A transform instance type: SageMaker lists its own set; the shape is checked here and the
#: service answers for the rest.
_TRANSFORM_INSTANCE = re.compile(r"^ml\.[a-z0-9]+\.[a-z0-9]+$")

BATCH: Final = (
    Member(
        "splitType",
        Rule("Line", as_str, lambda v: v in SPLIT_TYPES, "one of " + spoken(SPLIT_TYPES)),
        "Line (a record per line: CSV, JSON Lines) or None (a file is one record)",
    ),
    Member(
        "strategy",
        Rule("MultiRecord", as_str, lambda v: v in STRATEGIES, "one of " + spoken(STRATEGIES)),
        "MultiRecord (records per request up to maxPayloadMb) or SingleRecord",
    ),
    Member("maxPayloadMb", whole(6, 1, 100, "MB, 1-100"), "MB per request, 1-100"),
    Member(
        "maxConcurrentTransforms",
        whole(1, 0, 100),
        "requests in flight per instance, 0-100, 0 asks the container",
    ),
    Member(
        "instanceType",
        Rule(
            "ml.m5.large",
            as_str,
            lambda v: bool(_TRANSFORM_INSTANCE.match(v)),
            "an ml.* instance type",
        ),
        "transform job instance type",
    ),
    Member("instanceCount", whole(1, 1, 100), "1-100"),
)

BATCH_KEY: Final[Setting[Any]] = Setting(
    "batch",
    "map",
    ": `skdeploy batch` (local files, or a SageMaker transform job on S3 with the stack's model)",
    shown="the defaults shown",
    members=BATCH,
)


@dataclass(frozen=True)
class BatchSettings:
    """How a dataset is split into records and records into requests, and where a job runs."""

    split_type: str = "Line"
    strategy: str = "MultiRecord"
    max_payload_mb: int = 6
    max_concurrent_transforms: int = 1
    instance_type: str = "ml.m5.large"
    instance_count: int = 1

    def __post_init__(self) -> None:
        refuse_invalid("batch", member_problems(self, BATCH))

    @property
    def max_payload_bytes(self) -> int:
        """``MaxPayloadInMB`` in bytes, as SageMaker counts it (MiB)."""
        return self.max_payload_mb * 1024 * 1024


def parse_batch(problems: Problems, value: object) -> BatchSettings:
    """``batch``: every member checked against its row; the defaults when absent."""
    parsed = parse_map(problems, "batch", value, BATCH)
    if parsed is None:
        return BatchSettings()
    return BatchSettings(
        split_type=parsed["splitType"],
        strategy=parsed["strategy"],
        max_payload_mb=parsed["maxPayloadMb"],
        max_concurrent_transforms=parsed["maxConcurrentTransforms"],
        instance_type=parsed["instanceType"],
        instance_count=parsed["instanceCount"],
    )
