"""``skdeploy batch``: its arguments, and the local or remote run they choose.

``--input`` on ``s3://`` runs a SageMaker transform job on the stack's deployed model (its name
from the stack outputs, as ``smoke`` and ``rollback`` read them); anything else is a local file
or folder scored through a local endpoint: ``--endpoint-url`` when given, else one started with
``skdeploy serve`` for the run and stopped after it. Exit 0 every record scored, 1 a record or
the job failed, 2 cannot run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from skdeploy.core.constants import OUTPUT_MODEL_NAME, OUTPUT_REGION
from skdeploy.core.samples import CannotRun
from skdeploy.core.settings import BatchSettings
from skdeploy.tooling.batch.http import Endpoint
from skdeploy.tooling.batch.local import run_local_batch
from skdeploy.tooling.batch.records import CSV, BatchInputError, input_files
from skdeploy.tooling.batch.remote import (
    POLL_SECONDS,
    JobEnd,
    TransformJob,
    count_output_records,
    job_name,
    run_transform_job,
    transform_job_request,
)
from skdeploy.tooling.common import (
    EXIT_CANNOT_RUN,
    EXIT_FAILED,
    EXIT_OK,
    add_stack_arguments,
    progress,
    stack_settings,
)
from skdeploy.tooling.demo import EndpointFailed, background_endpoint
from skdeploy.tooling.smoke.target import pulumi_stack_outputs, read_outputs_file


@contextmanager
def _local_endpoint(args: argparse.Namespace, settings: BatchSettings) -> Iterator[Endpoint]:
    """``--endpoint-url``, or ``skdeploy serve`` on a free port for as long as the batch runs.

    The transform agent posts to the container's ``/invocations`` itself, not through
    InvokeEndpoint, so the endpoint's payload limit (6 MB, serverless 4 MB) does not apply to
    it: the server started here accepts ``maxPayloadMb``.
    """
    if args.endpoint_url:
        yield Endpoint(args.endpoint_url)
        return
    progress(f"batch: starting a local endpoint for stack {args.stack}")
    limit = ("--max-payload-bytes", str(settings.max_payload_bytes))
    with tempfile.TemporaryDirectory(prefix="skdeploy-batch-") as logs:
        project = Path(args.project_dir).resolve()
        with background_endpoint(project, args.stack, Path(logs), *limit) as running:
            yield Endpoint(running.url)


def concurrency(settings: BatchSettings, endpoint: Endpoint) -> int:
    """``maxConcurrentTransforms``; 0 asks the container's ``/execution-parameters``, as
    SageMaker does, and falls back to one request at a time when it does not answer."""
    if settings.max_concurrent_transforms > 0:
        return settings.max_concurrent_transforms
    answered = endpoint.execution_parameters() or {}
    value = answered.get("MaxConcurrentTransforms")
    return value if isinstance(value, int) and value > 0 else 1


def run_local(args: argparse.Namespace, settings: BatchSettings) -> int:
    """Score local files through a local endpoint; exit 1 when any record failed."""
    try:
        files = input_files(Path(args.input))
        with _local_endpoint(args, settings) as endpoint:
            summary = run_local_batch(
                files,
                Path(args.output),
                settings,
                endpoint.invoke,
                given_type=args.content_type,
                concurrency=concurrency(settings, endpoint),
                report=progress,
            )
    except (BatchInputError, ValueError, EndpointFailed) as exc:
        print(f"skdeploy: batch cannot run: {exc}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    print(f"batch: {summary.text()}")
    for out in summary.outputs:
        print(f"  wrote {out}")
    return EXIT_FAILED if summary.failures else EXIT_OK


def _stack_outputs(args: argparse.Namespace) -> dict[str, Any]:
    if args.outputs:
        return read_outputs_file(Path(args.outputs))
    found = pulumi_stack_outputs(args.stack, Path(args.project_dir).resolve())
    if found is None:
        raise CannotRun(
            "the pulumi CLI is not on PATH: pass --outputs FILE.json (`pulumi stack output --json`)"
        )
    return found


def run_remote(
    args: argparse.Namespace,
    settings: BatchSettings,
    *,
    sagemaker: Any | None = None,
    s3: Any | None = None,
) -> int:
    """A transform job on the stack's model; exit 1 unless it completed."""
    if not str(args.output).startswith("s3://"):
        print("skdeploy: batch cannot run: --input on S3 needs --output on S3", file=sys.stderr)
        return EXIT_CANNOT_RUN
    try:
        outputs = _stack_outputs(args)
    except CannotRun as exc:
        print(f"skdeploy: batch cannot run: {exc}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    model_name = outputs.get(OUTPUT_MODEL_NAME)
    if not isinstance(model_name, str) or not model_name:
        print(
            f"skdeploy: batch cannot run: stack outputs have no {OUTPUT_MODEL_NAME}",
            file=sys.stderr,
        )
        return EXIT_CANNOT_RUN
    job = TransformJob(model_name, args.input, args.output, args.content_type or CSV, settings)
    request = transform_job_request(job, job_name(model_name))
    if sagemaker is None or s3 is None:
        import boto3

        region = args.region or outputs.get(OUTPUT_REGION)
        sagemaker = sagemaker or boto3.client("sagemaker", region_name=region)
        s3 = s3 or boto3.client("s3", region_name=region)
    status, reason, seconds = run_transform_job(
        sagemaker, request, report=progress, poll_seconds=args.poll_seconds
    )
    records = count_output_records(s3, args.output) if status == "Completed" else None
    print(f"batch: {JobEnd(request['TransformJobName'], status, reason, seconds, records).text()}")
    return EXIT_OK if status == "Completed" else EXIT_FAILED


def execute(args: argparse.Namespace) -> int:
    """Local files or S3, by ``--input``; a stack of several ``models`` cannot run."""
    stack = stack_settings(args)
    if stack.multi_model:
        print(
            f"skdeploy: batch cannot run: stack {args.stack} serves several models (models: "
            f"{', '.join(m.name for m in stack.models)}); batch transform scores with one "
            "model: use a stack of that one model",
            file=sys.stderr,
        )
        return EXIT_CANNOT_RUN
    settings = stack.batch
    if str(args.input).startswith("s3://"):
        return run_remote(args, settings)
    return run_local(args, settings)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``skdeploy batch``."""
    parser = sub.add_parser(
        "batch",
        help="score a dataset with the stack's model: local files, or a transform job on S3",
        description=(
            "Split CSV or JSON Lines into records and send them in mini-batches as SageMaker "
            "batch transform does (the stack's `batch` settings). Local files go through a "
            "local endpoint and are written as <name>.out; s3:// paths run CreateTransformJob "
            "on the stack's model. Exit 0 all scored, 1 a record or the job failed, 2 cannot run."
        ),
    )
    add_stack_arguments(parser)
    parser.add_argument("--input", required=True, help="a file, a folder, or s3://bucket/prefix")
    parser.add_argument("--output", required=True, help="a folder, or s3://bucket/prefix")
    parser.add_argument(
        "--content-type",
        default=None,
        help="of every input (default: by suffix: .csv text/csv, .jsonl application/jsonlines; "
        "text/csv on S3)",
    )
    parser.add_argument(
        "--endpoint-url",
        default=None,
        help="a running local endpoint (skdeploy serve) to use instead of starting one",
    )
    parser.add_argument(
        "--outputs", default=None, help="stack outputs JSON (`pulumi stack output --json`), for S3"
    )
    parser.add_argument("--region", default=None, help="AWS region (default: the stack's)")
    parser.add_argument(
        "--poll-seconds",
        type=float,
        default=POLL_SECONDS,
        help=f"seconds between DescribeTransformJob calls (default: {POLL_SECONDS:.0f})",
    )
    parser.set_defaults(handler=execute)
