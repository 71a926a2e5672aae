"""``skdeploy batch``: score a dataset with the stack's model, as SageMaker batch transform does.

The package: :mod:`.records` (files into records, records into mini-batches: SplitType and
BatchStrategy), :mod:`.http` (the local endpoint's ``/invocations`` and
``/execution-parameters``), :mod:`.local` (the local run: concurrency, retries of a failed
mini-batch record by record, AssembleWith Line, the summary), :mod:`.remote`
(``CreateTransformJob`` and its polling) and :mod:`.command` (``register``). Import from the
package.
"""

from __future__ import annotations

from skdeploy.tooling.batch.command import concurrency, execute, register, run_local, run_remote
from skdeploy.tooling.batch.http import Answer, Endpoint
from skdeploy.tooling.batch.local import BatchSummary, RecordFailure, Scored, run_local_batch, score
from skdeploy.tooling.batch.records import (
    CONTENT_TYPES,
    CSV,
    JSONLINES,
    OUTPUT_SUFFIX,
    BatchInputError,
    MiniBatch,
    Record,
    content_type,
    input_files,
    mini_batches,
    read_records,
)
from skdeploy.tooling.batch.remote import (
    JobEnd,
    TransformJob,
    count_output_records,
    job_name,
    run_transform_job,
    transform_job_request,
)

__all__ = [
    "CONTENT_TYPES",
    "CSV",
    "JSONLINES",
    "OUTPUT_SUFFIX",
    "Answer",
    "BatchInputError",
    "BatchSummary",
    "Endpoint",
    "JobEnd",
    "MiniBatch",
    "Record",
    "RecordFailure",
    "Scored",
    "TransformJob",
    "concurrency",
    "content_type",
    "count_output_records",
    "execute",
    "input_files",
    "job_name",
    "mini_batches",
    "read_records",
    "register",
    "run_local",
    "run_local_batch",
    "run_remote",
    "run_transform_job",
    "score",
    "transform_job_request",
]
