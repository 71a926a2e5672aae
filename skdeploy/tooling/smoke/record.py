"""The smoke result, recorded on the artifact the deployed stack serves (for rollback/history).

Only a smoke test of a deployed stack read from its outputs records anything: a local endpoint or
a bare ``--endpoint-name`` says nothing about which artifact answered. The record is three object
tags (:func:`skdeploy.core.rollback.smoke_tags`) merged into the object's own (PutObjectTagging
replaces the whole set, and the stack's tags are kept); ``deployed-by`` is the caller's ARN.
A record that cannot be written is a warning, not a failed smoke test: the artifact then stays
"untested", which ``skdeploy rollback`` refuses, the safe side.
"""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlparse

import boto3
import botocore.exceptions

from skdeploy.core.rollback import sha_of_key, smoke_tags
from skdeploy.tooling.smoke.target import Target


def record_smoke(target: Target, passed: bool, *, s3: Any = None, sts: Any = None) -> str | None:
    """Tag the served artifact with the result; the sha recorded, or None (nothing to record)."""
    if target.local or target.model_data_url is None:
        return None
    url = urlparse(target.model_data_url)
    key = url.path.lstrip("/")
    sha = sha_of_key(key)
    if url.scheme != "s3" or sha is None:
        return None
    s3 = s3 if s3 is not None else boto3.client("s3", region_name=target.region)
    sts = sts if sts is not None else boto3.client("sts", region_name=target.region)
    try:
        deployed_by = sts.get_caller_identity().get("Arn")
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
        deployed_by = None
    try:
        tags = s3.get_object_tagging(Bucket=url.netloc, Key=key).get("TagSet", [])
        merged = {t["Key"]: t["Value"] for t in tags}
        merged.update(smoke_tags(passed, datetime.now(timezone.utc), deployed_by))
        s3.put_object_tagging(
            Bucket=url.netloc,
            Key=key,
            Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in merged.items()]},
        )
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        print(f"skdeploy: warning: smoke result not recorded on {sha}: {exc}", file=sys.stderr)
        return None
    return sha
