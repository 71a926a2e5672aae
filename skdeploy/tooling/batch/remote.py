"""The remote batch: a SageMaker transform job on the stack's model, polled until it ends.

The request is built as a plain value (:func:`transform_job_request`) so that a test can check
it against botocore's model of ``CreateTransformJob`` and run it against moto;
:func:`run_transform_job` sends it, prints the job's status while it runs, and returns its
end. SageMaker does not count records for a transform job: the summary counts the lines of the
``.out`` objects it wrote.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Final
from urllib.parse import urlparse

from skdeploy.core.settings import BatchSettings
from skdeploy.tooling.batch.records import OUTPUT_SUFFIX

#: Statuses after which DescribeTransformJob will not change.
DONE: Final = frozenset({"Completed", "Failed", "Stopped"})
POLL_SECONDS: Final = 30.0
_NAME_CHARS = re.compile(r"[^a-zA-Z0-9-]+")


@dataclass(frozen=True)
class TransformJob:
    """What ``skdeploy batch`` asks of SageMaker: the model, the S3 paths, the content type."""

    model_name: str
    input_uri: str
    output_uri: str
    content_type: str
    settings: BatchSettings


def job_name(model_name: str, now: datetime | None = None) -> str:
    """``<model>-batch-<UTC time>``, within the 63 characters SageMaker allows."""
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%d-%H%M%S")
    base = _NAME_CHARS.sub("-", model_name).strip("-")[: 63 - len(stamp) - 7].rstrip("-")
    return f"{base}-batch-{stamp}"


def transform_job_request(job: TransformJob, name: str) -> dict[str, Any]:
    """CreateTransformJob's parameters: Line split and assembly, the strategy, payload and
    concurrency of the stack's ``batch`` settings (0 concurrency: SageMaker asks the container)."""
    settings = job.settings
    line = settings.split_type == "Line"
    transform_input: dict[str, Any] = {
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": job.input_uri}},
        "ContentType": job.content_type,
        "CompressionType": "None",
        "SplitType": settings.split_type,
    }
    return {
        "TransformJobName": name,
        "ModelName": job.model_name,
        "MaxConcurrentTransforms": settings.max_concurrent_transforms,
        "MaxPayloadInMB": settings.max_payload_mb,
        "BatchStrategy": settings.strategy,
        "TransformInput": transform_input,
        "TransformOutput": {
            "S3OutputPath": job.output_uri,
            "Accept": job.content_type,
            "AssembleWith": "Line" if line else "None",
        },
        "TransformResources": {
            "InstanceType": settings.instance_type,
            "InstanceCount": settings.instance_count,
        },
    }


@dataclass(frozen=True)
class JobEnd:
    """How a transform job ended: its status, why it failed, seconds, and output lines counted."""

    name: str
    status: str
    failure_reason: str | None
    seconds: float
    records: int | None

    def text(self) -> str:
        counted = "" if self.records is None else f", {self.records:,} records written"
        reason = f": {self.failure_reason}" if self.failure_reason else ""
        return f"transform job {self.name} {self.status}{reason} in {self.seconds:.0f} s{counted}"


def run_transform_job(
    sagemaker: Any,
    request: dict[str, Any],
    *,
    report: Callable[[str], None],
    poll_seconds: float = POLL_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[str, str | None, float]:
    """Create the job and poll DescribeTransformJob until it ends: (status, reason, seconds)."""
    name = request["TransformJobName"]
    started = time.monotonic()
    sagemaker.create_transform_job(**request)
    report(f"batch: created transform job {name}")
    while True:
        job = sagemaker.describe_transform_job(TransformJobName=name)
        status = job["TransformJobStatus"]
        elapsed = time.monotonic() - started
        report(f"batch: {name} {status} ({elapsed:.0f} s)")
        if status in DONE:
            return status, job.get("FailureReason") or None, elapsed
        sleep(poll_seconds)


def count_output_records(s3: Any, output_uri: str) -> int:
    """Lines of the ``*.out`` objects under the output path (one per record with Line assembly)."""
    parsed = urlparse(output_uri)
    bucket, prefix = parsed.netloc, parsed.path.lstrip("/")
    total = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            if item["Key"].endswith(OUTPUT_SUFFIX):
                body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
                total += len([line for line in body.split(b"\n") if line.strip()])
    return total
