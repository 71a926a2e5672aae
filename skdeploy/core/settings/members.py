"""The members of the map settings (``autoscaling``, ``deployment``, ``api``, ``variants``, ...).

Each member is declared once with its rule and its README words; :mod:`.schema` puts them in the
settings table and the parser (:mod:`.production`, :mod:`.variants`) checks maps through them.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from skdeploy.core.pickle.inspect import InspectionLimits
from skdeploy.core.settings._coerce import (
    as_bool,
    as_float,
    as_int,
    as_object_map,
    as_str,
    as_str_list,
)
from skdeploy.core.settings._patterns import (
    BUCKET_PATTERN,
    ENDPOINT_NAME_PATTERN,
    PREFIX_PATTERN,
    S3_URI_PATTERN,
    SNS_TOPIC_PATTERN,
)
from skdeploy.core.settings._rules import Member, Rule, matching, spoken, whole

DEFAULT_MODEL_DIR: Final = "model"
DEFAULT_INFERENCE_DIR: Final = "inference"
DEPLOYMENT_STRATEGIES: Final = ("all-at-once", "canary", "linear")
CAPTURE_CONTENT: Final = ("both", "input", "output")
API_AUTH: Final = ("iam", "none")

#: Highest value a stack may give each ``pickleLimits`` member (InspectionLimits field names):
#: far above any real model, low enough that a typo cannot switch a bound off.
PICKLE_LIMIT_CEILINGS: Final[Mapping[str, int]] = MappingProxyType(
    {
        "max_stream_mb": 65_536,  # 64 GiB of decompressed pickle stream
        "max_opcodes": 2_000_000_000,
        "max_values": 500_000_000,
        "max_nesting": 10_000,
    }
)


SERVERLESS: Final = (
    Member(
        "memoryMb",
        Rule(2048, as_int, lambda v: v in range(1024, 6145, 1024), "1024-6144 in steps of 1024"),
        "1024-6144 in steps of 1024",
    ),
    Member("maxConcurrency", whole(5, 1, 200), "1-200"),
    Member("provisionedConcurrency", whole(None, 1, 200), "1-maxConcurrency"),
)
AUTOSCALING: Final = (
    Member("min", whole(None, 1, 100), ">= 1", shown=""),
    Member("max", whole(None, 1, 100), ">= min and <= 100", shown=""),
    Member(
        "targetInvocationsPerInstance",
        Rule(100.0, as_float, lambda v: v > 0, "invocations per instance per minute, > 0"),
        "> 0",
    ),
    Member("scaleInCooldown", whole(300, 0, 86400, "seconds, 0-86400"), "seconds"),
    Member("scaleOutCooldown", whole(60, 0, 86400, "seconds, 0-86400"), "seconds"),
)
ASYNC: Final = (
    Member(
        "inputPath",
        matching(S3_URI_PATTERN, "an S3 URI, s3://bucket/prefix"),
        "s3://bucket/prefix callers put requests under (the role reads only there)",
        shown="",
    ),
    Member(
        "outputPath",
        matching(S3_URI_PATTERN, "an S3 URI, s3://bucket/prefix"),
        "s3://bucket/prefix of the results",
        shown="",
    ),
    Member(
        "failurePath",
        matching(S3_URI_PATTERN, "an S3 URI, s3://bucket/prefix"),
        "s3://bucket/prefix of the failures",
    ),
    Member(
        "successTopicArn", matching(SNS_TOPIC_PATTERN, "an SNS topic ARN"), "SNS topic on success"
    ),
    Member("errorTopicArn", matching(SNS_TOPIC_PATTERN, "an SNS topic ARN"), "SNS topic on error"),
    Member("maxConcurrentInvocationsPerInstance", whole(None, 1, 1000), "1-1000"),
    Member(
        "targetBacklogPerInstance",
        Rule(5.0, as_float, lambda v: v > 0, "queued requests per instance, > 0"),
        "with autoscaling: queued requests per instance",
    ),
    Member(
        "scaleToZero",
        Rule(False, as_bool, lambda v: True, "true or false"),
        "with autoscaling: no instances while nothing is queued",
    ),
)
DEPLOYMENT: Final = (
    Member(
        "strategy",
        Rule(
            "all-at-once",
            as_str,
            lambda v: v in DEPLOYMENT_STRATEGIES,
            "one of " + ", ".join(DEPLOYMENT_STRATEGIES),
        ),
        spoken(DEPLOYMENT_STRATEGIES),
        shown="",
    ),
    Member("canaryPercent", whole(10, 1, 100), "1-100"),
    Member("linearStepPercent", whole(20, 1, 100), "1-100"),
    Member("waitSeconds", whole(300, 0, 3600), "0-3600"),
    Member("terminationWaitSeconds", whole(0, 0, 3600), "0-3600"),
    Member("maxExecutionSeconds", whole(3600, 600, 14400), "600-14400"),
    Member(
        "errorThreshold", whole(5, 1, 1_000_000, "5XX errors a minute, >= 1"), "5XX errors a minute"
    ),
    Member(
        "latencyThresholdMs",
        whole(1000, 1, 60_000, "milliseconds, 1-60000"),
        "average model latency",
    ),
    Member("alarmTopicArn", matching(SNS_TOPIC_PATTERN, "an SNS topic ARN"), "SNS topic"),
)
DATA_CAPTURE: Final = (
    Member("samplingPercent", whole(100, 1, 100), "1-100"),
    Member(
        "prefix",
        Rule("datacapture", as_str, lambda v: bool(PREFIX_PATTERN.match(v)), "an S3 key prefix"),
        "key prefix",
    ),
    Member(
        "captureContent",
        Rule(
            "both", as_str, lambda v: v in CAPTURE_CONTENT, "one of " + ", ".join(CAPTURE_CONTENT)
        ),
        spoken(CAPTURE_CONTENT),
    ),
    Member(
        "bucket",
        matching(BUCKET_PATTERN, "an S3 bucket name"),
        "a bucket name",
        shown="the artifact bucket",
    ),
)
VPC: Final = (
    Member(
        "subnetIds",
        Rule(None, as_str_list, lambda v: len(v) > 0, "a non-empty list of subnet ids"),
        "[...]",
        shown="",
    ),
    Member(
        "securityGroupIds",
        Rule(None, as_str_list, lambda v: len(v) > 0, "a non-empty list of security group ids"),
        "[...]",
        shown="",
    ),
)
THROTTLE: Final = (
    Member(
        "rate",
        Rule(10.0, as_float, lambda v: 0 < v <= 10000, "requests/s, 0-10000"),
        "requests/s",
    ),
    Member("burst", whole(20, 1, 5000), "1-5000"),
)
API: Final = (
    Member("enabled", Rule(True, as_bool, lambda v: True, "true or false"), "true", shown=""),
    Member(
        "auth",
        Rule("iam", as_str, lambda v: v in API_AUTH, "iam, or none (explicitly public)"),
        spoken(API_AUTH),
    ),
    Member(
        "throttle",
        Rule({}, as_object_map, lambda v: True, "a map {rate, burst}"),
        members=THROTTLE,
    ),
)
#: A variant's members; ``weight`` is the production variants' only (a shadow takes no traffic).
#: The instance keys default to the top-level ones, which the parser fills in per stack.
#: A name that becomes part of AWS names (a variant's, a model's): SageMaker's name pattern.
NAME_RULE: Final = Rule(
    None,
    as_str,
    lambda v: bool(ENDPOINT_NAME_PATTERN.match(v)) and len(v) <= 63,
    "1-63 letters, digits, hyphens",
)
VARIANT: Final = (
    Member("name", NAME_RULE, shown=""),
    Member("modelDir", Rule(DEFAULT_MODEL_DIR, as_str, bool, "a directory path"), shown=""),
    Member("inferenceDir", Rule(DEFAULT_INFERENCE_DIR, as_str, bool, "a directory path"), shown=""),
    Member(
        "modelFiles", Rule(None, as_str_list, lambda v: len(v) > 0, "a non-empty list"), shown=""
    ),
    Member("weight", Rule(1.0, as_float, lambda v: v >= 0, "a weight >= 0")),
    # A string here; whether SageMaker hosts it is checked with suggestions by the parser.
    Member(
        "instanceType", Rule(None, as_str, lambda v: True, "a string such as ml.m5.large"), shown=""
    ),
    Member("instanceCount", whole(None, 1, 100), shown=""),
)
SHADOW: Final = tuple(m for m in VARIANT if m.name != "weight")
PICKLE_LIMITS: Final = tuple(
    Member(
        key,
        whole(getattr(InspectionLimits(), name), 1, PICKLE_LIMIT_CEILINGS[name]),
        f"1-{PICKLE_LIMIT_CEILINGS[name]}",
    )
    for name, key in InspectionLimits.SETTING_KEYS.items()
)
