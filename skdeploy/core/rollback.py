"""Rollback and history: what an artifact's object tags say about it, and whether it may be served.

Artifacts are content-addressed objects in the stack's bucket (:func:`artifact_key`) and are never
deleted when a newer one replaces them (``retain_on_delete``, no lifecycle rule), so any earlier
artifact can be served again without a rebuild. What makes one *safe* to serve again is its smoke
record: ``skdeploy smoke`` against a deployed stack tags the object it served with the result
(:data:`SMOKE_TAG`, :data:`SMOKE_AT_TAG`, :data:`DEPLOYED_BY_TAG`). Tags travel with the object
and need no second file to keep consistent; S3 allows ten per object, and these use three.

Pure: the command line reads the tags through boto3 (``tooling/rollback.py``,
``tooling/history.py``) and hands them here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from skdeploy.core.constants import ARTIFACT_NAME, ARTIFACT_PREFIX, CONFIG_NAMESPACE

#: The smoke result of the artifact: :data:`SMOKE_PASSED` or :data:`SMOKE_FAILED`.
SMOKE_TAG: Final = "skdeploy:smoke"
#: When that smoke test ran (UTC, ISO 8601 to the second).
SMOKE_AT_TAG: Final = "skdeploy:smoke-at"
#: Who ran it (the caller's ARN, where known): the one who put the artifact in service.
DEPLOYED_BY_TAG: Final = "skdeploy:deployed-by"
SMOKE_PASSED: Final = "passed"
SMOKE_FAILED: Final = "failed"
#: Tag on the Model of a stack serving a pinned artifact, so the plan shows a rollback as one.
ROLLBACK_TAG: Final = "skdeploy:rollback"
#: The stack setting that pins the artifact (``artifactSha256``), namespaced.
PIN_KEY: Final = f"{CONFIG_NAMESPACE}:artifactSha256"

_KEY_PATTERN: Final = re.compile(
    "^" + re.escape(ARTIFACT_PREFIX) + r"([0-9a-f]{64})/" + re.escape(ARTIFACT_NAME) + "$"
)
#: S3 tag values take letters, digits, spaces and ``_ . : / = + - @``: anything else is dropped.
_TAG_VALUE_DROPPED: Final = re.compile(r"[^A-Za-z0-9 _.:/=+\-@]")


def rollback_label(sha256: str) -> str:
    """The value of :data:`ROLLBACK_TAG`: what the plan of a pinned stack says."""
    return f"rollback to {sha256}"


def sha_of_key(key: str) -> str | None:
    """The sha256 of an artifact's S3 key, or None for any other object in the bucket."""
    match = _KEY_PATTERN.match(key)
    return match.group(1) if match else None


def smoke_tags(passed: bool, at: datetime, deployed_by: str | None) -> dict[str, str]:
    """The tags ``skdeploy smoke`` records on the artifact it tested."""
    tags = {
        SMOKE_TAG: SMOKE_PASSED if passed else SMOKE_FAILED,
        SMOKE_AT_TAG: at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if deployed_by:
        tags[DEPLOYED_BY_TAG] = _TAG_VALUE_DROPPED.sub("", deployed_by)[:256]
    return tags


@dataclass(frozen=True)
class ArtifactRecord:
    """One artifact in the bucket, as history lists it."""

    sha256: str
    key: str
    #: When the object was uploaded.
    uploaded: datetime
    tags: Mapping[str, str]

    @property
    def smoke(self) -> str:
        """``passed``, ``failed``, or ``untested`` (never smoke-tested against a deployment)."""
        return self.tags.get(SMOKE_TAG, "untested")

    @property
    def smoke_at(self) -> str:
        return self.tags.get(SMOKE_AT_TAG, "-")

    @property
    def deployed_by(self) -> str:
        return self.tags.get(DEPLOYED_BY_TAG, "unknown")


def rollback_refusal(sha256: str, bucket: str, record: ArtifactRecord | None) -> str | None:
    """Why ``sha256`` may not be served again (None: it may): missing, untested or failed."""
    if record is None:
        return (
            f"artifact {sha256} is not in bucket {bucket} (no object "
            f"{ARTIFACT_PREFIX}{sha256}/{ARTIFACT_NAME}): only an artifact the stack uploaded "
            "can be rolled back to"
        )
    if record.smoke == SMOKE_FAILED:
        return f"artifact {sha256} failed its smoke test at {record.smoke_at}: refusing to serve it"
    if record.smoke != SMOKE_PASSED:
        return (
            f"artifact {sha256} was never smoke-tested (no {SMOKE_TAG} tag): refusing to serve "
            "an artifact not known to work"
        )
    return None


def pin_stack_text(text: str, sha256: str) -> str:
    """The stack file's text with ``skdeploy:artifactSha256`` set, all else (comments) kept."""
    line = f"  {PIN_KEY}: {sha256}"
    lines = text.splitlines()
    for index, existing in enumerate(lines):
        if existing.strip().startswith(f"{PIN_KEY}:"):
            lines[index] = line
            return "\n".join(lines) + "\n"
    for index, existing in enumerate(lines):
        if existing.rstrip() == "config:":
            lines.insert(index + 1, line)
            return "\n".join(lines) + "\n"
    raise ValueError("the stack file has no top-level `config:` section")
