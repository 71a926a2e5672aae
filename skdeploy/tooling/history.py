"""``skdeploy history``: the artifacts in a stack's bucket, with their smoke records.

The bucket is found in the stack outputs (``modelDataUrl`` is ``s3://<bucket>/<key>``), from
``--outputs FILE`` or the Pulumi CLI, or given with ``--bucket``. Every AWS call is a boto3 S3
client's (ListObjectsV2, HeadObject, GetObjectTagging); the smoke records are the objects' tags
(:mod:`skdeploy.core.rollback`). :mod:`skdeploy.tooling.rollback` reads the bucket the same way.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import boto3
import botocore.exceptions

from skdeploy.core.constants import (
    ARTIFACT_PREFIX,
    OUTPUT_ARTIFACT_SHA256,
    OUTPUT_MODEL_DATA_URL,
    OUTPUT_REGION,
    artifact_key,
)
from skdeploy.core.rollback import ArtifactRecord, sha_of_key
from skdeploy.core.samples import CannotRun
from skdeploy.tooling.common import (
    EXIT_CANNOT_RUN,
    EXIT_OK,
    add_stack_arguments,
    stack_settings,
)
from skdeploy.tooling.smoke.target import pulumi_stack_outputs, read_outputs_file

#: What keeps a bucket from being read: exit 2 with the reason.
AWS_ERRORS = (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)


@dataclass(frozen=True)
class StackBucket:
    """The stack's artifact bucket, the S3 client reading it, and the sha it serves (if known)."""

    name: str
    s3: Any
    serving: str | None = None


def add_bucket_arguments(parser: argparse.ArgumentParser) -> None:
    """``--stack``, ``--outputs``, ``--bucket`` and ``--region``, shared with rollback."""
    add_stack_arguments(parser)
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--outputs", type=Path, help="stack outputs saved by `pulumi stack output --json`"
    )
    source.add_argument("--bucket", help="the stack's artifact bucket (instead of stack outputs)")
    parser.add_argument("--region", help="AWS region (default: stack outputs, then stack file)")


def stack_bucket(args: argparse.Namespace, s3: Any | None = None) -> StackBucket:
    """The bucket of ``--stack`` (raises CannotRun); ``s3`` replaces the boto3 client (tests)."""
    outputs: dict[str, Any] = {}
    if args.bucket:
        name = args.bucket
    else:
        found = (
            read_outputs_file(args.outputs)
            if args.outputs
            else pulumi_stack_outputs(args.stack, Path(args.project_dir).resolve())
        )
        if found is None:
            raise CannotRun(
                "the pulumi CLI is not on PATH: pass --outputs FILE.json (what `pulumi stack "
                "output --json` prints) or --bucket NAME"
            )
        outputs = found
        url = urlparse(str(outputs.get(OUTPUT_MODEL_DATA_URL, "")))
        if url.scheme != "s3" or not url.netloc:
            raise CannotRun(f"the stack outputs have no s3:// {OUTPUT_MODEL_DATA_URL}")
        name = url.netloc
    region = args.region or outputs.get(OUTPUT_REGION) or stack_settings(args).region
    serving = outputs.get(OUTPUT_ARTIFACT_SHA256)
    return StackBucket(
        name=name,
        s3=s3 if s3 is not None else boto3.client("s3", region_name=str(region)),
        serving=serving if isinstance(serving, str) else None,
    )


def artifact_record(bucket: StackBucket, sha256: str) -> ArtifactRecord | None:
    """One artifact's object and tags, or None when there is no such object."""
    key = artifact_key(sha256)
    try:
        head = bucket.s3.head_object(Bucket=bucket.name, Key=key)
    except botocore.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
    return ArtifactRecord(sha256, key, head["LastModified"], _tags(bucket, key))


def artifact_records(bucket: StackBucket) -> list[ArtifactRecord]:
    """Every artifact in the bucket, newest upload first."""
    records = []
    pages = bucket.s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket.name, Prefix=ARTIFACT_PREFIX
    )
    for page in pages:
        for item in page.get("Contents", []):
            sha = sha_of_key(item["Key"])
            if sha is not None:
                tags = _tags(bucket, item["Key"])
                records.append(ArtifactRecord(sha, item["Key"], item["LastModified"], tags))
    return sorted(records, key=lambda r: r.uploaded, reverse=True)


def _tags(bucket: StackBucket, key: str) -> dict[str, str]:
    answer = bucket.s3.get_object_tagging(Bucket=bucket.name, Key=key)
    return {t["Key"]: t["Value"] for t in answer.get("TagSet", [])}


def render_history(records: list[ArtifactRecord], serving: str | None, *, as_json: bool) -> str:
    """A table (or JSON list) of the artifacts: upload date, sha, smoke result, deployer."""
    rows = [
        {
            "uploaded": r.uploaded.strftime("%Y-%m-%d %H:%M:%S"),
            "sha256": r.sha256,
            "smoke": r.smoke,
            "smokeAt": r.smoke_at,
            "deployedBy": r.deployed_by,
            "serving": r.sha256 == serving,
        }
        for r in records
    ]
    if as_json:
        return json.dumps(rows, indent=2)
    if not rows:
        return "no artifacts in the bucket"
    lines = [f"{'UPLOADED':<19}  {'SHA256':<64}  {'SMOKE':<8}  {'SMOKE AT':<20}  DEPLOYED BY"]
    for row in rows:
        mark = "  (serving)" if row["serving"] else ""
        lines.append(
            f"{row['uploaded']:<19}  {row['sha256']:<64}  {row['smoke']:<8}  "
            f"{row['smokeAt']:<20}  {row['deployedBy']}{mark}"
        )
    return "\n".join(lines)


def execute(args: argparse.Namespace, *, s3: Any | None = None) -> int:
    """``skdeploy history``: list the stack's artifacts; exit 2 when the bucket cannot be read."""
    try:
        bucket = stack_bucket(args, s3)
        records = artifact_records(bucket)
    except CannotRun as exc:
        print(f"skdeploy: history cannot run: {exc}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    except AWS_ERRORS as exc:
        print(f"skdeploy: history cannot read the artifact bucket: {exc}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    print(render_history(records, bucket.serving, as_json=args.json))
    return EXIT_OK


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``skdeploy history``."""
    parser = sub.add_parser(
        "history",
        help="the artifacts in the stack's bucket: date, sha, smoke result, who deployed",
        description="List the content-addressed artifacts in the stack's bucket, newest first, "
        "with the smoke record `skdeploy smoke` left on each. Exit 0, or 2 cannot run.",
    )
    add_bucket_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the list as JSON on stdout")
    parser.set_defaults(handler=execute)
