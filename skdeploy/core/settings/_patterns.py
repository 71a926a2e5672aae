"""The shapes AWS names take (endpoint names, ARNs, buckets, ...), as the settings check them."""

from __future__ import annotations

import re
from typing import Final

ENDPOINT_NAME_PATTERN: Final = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
REGION_PATTERN: Final = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")
IMAGE_URI_PATTERN: Final = re.compile(
    r"^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/[a-z0-9][a-z0-9._/-]*"
    r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[0-9a-f]{64})$"
)
MODEL_FILE_PATTERN: Final = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
KMS_KEY_PATTERN: Final = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+$")
SNS_TOPIC_PATTERN: Final = re.compile(
    r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$"
)
BUCKET_PATTERN: Final = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
PREFIX_PATTERN: Final = re.compile(r"^[A-Za-z0-9!_.*'()/-]{1,512}$")
SHA256_PATTERN: Final = re.compile(r"^[0-9a-f]{64}$")
#: ``s3://bucket`` or ``s3://bucket/prefix``: where asynchronous inference writes its results.
S3_URI_PATTERN: Final = re.compile(
    r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(/(?P<prefix>[A-Za-z0-9!_.*'()/-]{0,512}))?$"
)
