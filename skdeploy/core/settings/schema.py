"""The one table of ``skdeploy:`` keys: each declared once with its type, default, range and doc.

The parser reads defaults and checks from these rows (:mod:`.parse`, :mod:`.production`,
:mod:`.variants`), and the README's settings table is written from them (:mod:`.readme`), so
what the README promises is what the code enforces. A key whose check needs the project's files
or other keys (a directory that must exist, isolation against ``requirements.txt``) has no
``check`` here; its parser reads the row's constants and says why in its docstring.
"""

from __future__ import annotations

from typing import Any, Final

from skdeploy.core.constants import (
    CSV_HEADER_CHOICES,
    CSV_HEADER_DEFAULT,
    DEFAULT_INSTANCE_TYPE,
    DEFAULT_VARIANT,
)
from skdeploy.core.frameworks import DEFAULT_FRAMEWORK_VERSION, FRAMEWORKS
from skdeploy.core.settings._coerce import as_int, as_str
from skdeploy.core.settings._patterns import (
    ENDPOINT_NAME_PATTERN,
    IMAGE_URI_PATTERN,
    KMS_KEY_PATTERN,
    SHA256_PATTERN,
)
from skdeploy.core.settings._rules import Rule, Setting, flag, matching, spoken, whole
from skdeploy.core.settings.batch import BATCH_KEY
from skdeploy.core.settings.members import (
    API,
    ASYNC,
    AUTOSCALING,
    DATA_CAPTURE,
    DEFAULT_INFERENCE_DIR,
    DEFAULT_MODEL_DIR,
    DEPLOYMENT,
    PICKLE_LIMITS,
    SERVERLESS,
    SHADOW,
    VARIANT,
    VPC,
)
from skdeploy.core.settings.multimodel import MODELS_KEY

REGION_KEY: Final = "aws:region"
SECRET: Final = "[secret]"  # noqa: S105 - the mask shown in place of a secret value

#: The retention periods CloudWatch Logs accepts, in days.
# fmt: off
LOG_RETENTION_DAYS: Final = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
    1096, 1827, 2192, 2557, 2922, 3288, 3653,
)
# fmt: on


def _ticked(values: tuple[str, ...] | list[str]) -> list[str]:
    return [f"`{v}`" for v in values]


MODEL_DIR: Final[Setting[Any]] = Setting(
    "modelDir", "path", "a directory, relative to the project", shown=f"`{DEFAULT_MODEL_DIR}`"
)
INFERENCE_DIR: Final[Setting[Any]] = Setting(
    "inferenceDir", "path", "a directory holding `inference.py`", shown=f"`{DEFAULT_INFERENCE_DIR}`"
)
FRAMEWORK_VERSION: Final = Setting(
    "frameworkVersion",
    "string",
    "one of " + ", ".join(_ticked(list(FRAMEWORKS))),
    Rule(
        DEFAULT_FRAMEWORK_VERSION,
        as_str,
        lambda v: v in FRAMEWORKS,
        "unknown framework version; supported: " + ", ".join(FRAMEWORKS),
    ),
)
#: Checked by :func:`~skdeploy.core.settings.instance_types.instance_type_rule`, which suggests.
INSTANCE_TYPE: Final[Setting[Any]] = Setting(
    "instanceType",
    "string",
    "a SageMaker real-time instance type listed in `skdeploy/core/instance_types.json` "
    "(botocore's `ProductionVariantInstanceType`); also for variants and shadow",
    shown=f"`{DEFAULT_INSTANCE_TYPE}`",
)
INSTANCE_COUNT: Final = Setting(
    "instanceCount",
    "integer",
    "1 to 100 instances",
    whole(1, 1, 100, "must be a whole number from 1 to 100"),
)
#: The default is per stack: the parser puts the stack's name in place of ``<stack>``.
ENDPOINT_NAME: Final = Setting(
    "endpointName",
    "string",
    "1-63 letters, digits and hyphens; stable across updates",
    Rule(
        "skdeploy-<stack>",
        as_str,
        lambda v: bool(ENDPOINT_NAME_PATTERN.match(v)) and len(v) <= 63,
        "must be 1-63 letters, digits or hyphens, starting with a letter or digit",
    ),
)
#: Checked against the handler folders' ``requirements.txt`` and ``serverless`` by the parser.
NETWORK_ISOLATION: Final[Setting[Any]] = Setting(
    "networkIsolation",
    "boolean",
    "cannot be on with a `requirements.txt` (the container pip-installs it at start)",
    shown="on, unless a `requirements.txt` is in the handlers of any variant (`inference/` by "
    "default) or the stack is serverless",
)
IMAGE_URI: Final = Setting(
    "imageUri",
    "string",
    "an ECR image URI; overrides the prebuilt scikit-learn image",
    matching(
        IMAGE_URI_PATTERN,
        "must be an ECR image URI: <account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>",
    ),
    shown="resolved per region",
)
ARTIFACT_SHA256: Final = Setting(
    "artifactSha256",
    "string",
    "the sha256 of an artifact already in the stack's bucket: the stack serves it instead of "
    "building and uploading one (a rollback; written by `skdeploy rollback`, single-model "
    "stacks only); the Model is tagged `skdeploy:rollback`",
    matching(SHA256_PATTERN, "must be a sha256: 64 lower-case hexadecimal digits"),
    shown="none: build from the project",
)
MODEL_FILES: Final[Setting[Any]] = Setting(
    "modelFiles",
    "list of strings",
    "file names inside `modelDir`, at least one",
    shown="the `*.joblib` files of `modelDir`",
)
ALLOW_VERSION_SKEW: Final = Setting(
    "allowVersionSkew",
    "boolean",
    "`true` turns a scikit-learn version mismatch between pickle and container into a warning",
    flag(False),
)
SERVERLESS_KEY: Final[Setting[Any]] = Setting(
    "serverless",
    "map",
    "; excludes autoscaling, dataCapture, vpc, networkIsolation and canary/linear deployment",
    shown="off (instances)",
    members=SERVERLESS,
)
AUTOSCALING_KEY: Final[Setting[Any]] = Setting(
    "autoscaling", "map", "; instances only", shown="off", members=AUTOSCALING
)
ASYNC_KEY: Final[Setting[Any]] = Setting(
    "async",
    "map",
    ": SageMaker asynchronous inference (`InvokeEndpointAsync`, results in S3); instances only",
    shown="off",
    members=ASYNC,
)
DEPLOYMENT_KEY: Final[Setting[Any]] = Setting(
    "deployment",
    "map",
    ": blue/green with auto-rollback on two alarms",
    shown="off (SageMaker's default update)",
    members=DEPLOYMENT,
)
DATA_CAPTURE_KEY: Final[Setting[Any]] = Setting(
    "dataCapture", "map", "; instances only", shown="off", members=DATA_CAPTURE
)
KMS_KEY_ARN: Final = Setting(
    "kmsKeyArn",
    "string",
    "a KMS key ARN: encrypts the artifact bucket, endpoint storage, captures and logs",
    matching(KMS_KEY_PATTERN, "must be a KMS key ARN: arn:aws:kms:<region>:<acct>:key/<id>"),
    shown="none (AES256)",
)
VPC_KEY: Final[Setting[Any]] = Setting(
    "vpc", "map", ", both non-empty; instances only", shown="none", members=VPC
)
STARTUP_HEALTH_CHECK_TIMEOUT: Final = Setting(
    "startupHealthCheckTimeoutSeconds",
    "integer",
    "60-3600 seconds; instances only",
    whole(None, 60, 3600, "must be 60-3600 seconds"),
    shown="SageMaker's (240)",
)
MODEL_DOWNLOAD_TIMEOUT: Final = Setting(
    "modelDownloadTimeoutSeconds",
    "integer",
    "60-3600 seconds; instances only",
    whole(None, 60, 3600, "must be 60-3600 seconds"),
    shown="SageMaker's",
)
LOG_RETENTION: Final = Setting(
    "logRetentionDays",
    "integer",
    "a CloudWatch Logs retention: " + spoken(tuple(map(str, LOG_RETENTION_DAYS))),
    Rule(
        30,
        as_int,
        lambda v: v in LOG_RETENTION_DAYS,
        "must be one of " + ", ".join(map(str, LOG_RETENTION_DAYS)),
    ),
)
PROTECT: Final = Setting(
    "protect",
    "boolean",
    "`true` protects the endpoint and the bucket from `pulumi destroy` (and retains them)",
    flag(False),
)
ALLOW_ENDPOINT_REPLACEMENT: Final = Setting(
    "allowEndpointReplacement",
    "boolean",
    "`true` accepts a new endpoint (downtime) when switching between serverless and instances",
    flag(False),
)
PRODUCTION_OVERRIDES: Final[Setting[Any]] = Setting(
    "productionOverrides",
    "list of strings",
    "requirements a production stack (named `prod*`, as the policy pack's rule, or tagged "
    "`environment: prod` or `production`) goes without, knowingly: `protect` waives "
    "`protect: true`, `deployment` waives a `deployment` map (blue/green updates that roll "
    "back on alarms), `autoscaling` waives an `autoscaling` map; a production stack missing "
    "one that is not listed here is refused; no effect on other stacks",
    shown="none: a production stack needs all three",
)
VARIANTS_KEY: Final[Setting[Any]] = Setting(
    "variants",
    "list of maps",
    ": several models behind one endpoint, traffic split by weight (not all zero); a variant's "
    "`modelDir` and `inferenceDir` default to `model` and `inference`, its instance keys to "
    "the top-level ones; instances only",
    shown=f"one variant `{DEFAULT_VARIANT}` from the keys above",
    members=VARIANT,
    many=True,
)
SHADOW_KEY: Final[Setting[Any]] = Setting(
    "shadow",
    "map",
    ": a shadow variant that receives a copy of the traffic; its answers are not returned",
    shown="none",
    members=SHADOW,
)
API_KEY: Final[Setting[Any]] = Setting(
    "api",
    "map",
    ": an HTTPS `POST /predict` in front of the endpoint (API Gateway + Lambda)",
    shown="off",
    members=API,
)
PICKLE_LIMITS_KEY: Final[Setting[Any]] = Setting(
    "pickleLimits",
    "map",
    ": bounds on the pickle inspection of the stack's model files (decompressed stream in MB, "
    "opcodes walked, values held at once, nesting); raise one when a refusal names it",
    shown="the inspector's defaults",
    members=PICKLE_LIMITS,
)
TRUSTED_MODULES: Final[Setting[Any]] = Setting(
    "trustedModules",
    "list of strings",
    "modules the stack ships in its handler folders (`inference/my_features.py` or a package "
    "`inference/featurelib/`) whose top-level classes the model's pickle may name (custom "
    "transformers); functions and imported names stay refused; not the standard library or "
    "the container's packages; tagged on the Model (`skdeploy:trusted-modules`) so a plan "
    "shows it",
    shown="none",
)
PROBABILITIES: Final = Setting(
    "probabilities",
    "boolean",
    "`true` answers class probabilities by default (classifiers with `predict_proba`; a "
    "request can still say `probabilities=false`); the Model's `SKDEPLOY_PROBABILITIES`",
    flag(False),
)
CSV_HEADER: Final = Setting(
    "csvHeader",
    "string",
    spoken(tuple(_ticked(CSV_HEADER_CHOICES))) + ": whether a CSV body's first line names the "
    "columns, for models fitted on a DataFrame (`auto`: when it holds exactly the model's "
    "feature names); the Model's `SKDEPLOY_CSV_HEADER`",
    Rule(
        CSV_HEADER_DEFAULT,
        as_str,
        lambda v: v in CSV_HEADER_CHOICES,
        "must be one of " + ", ".join(CSV_HEADER_CHOICES),
    ),
)
TAGS: Final[Setting[Any]] = Setting(
    "tags",
    "map of strings",
    "keys 1-128 characters, values up to 256, no `aws:` prefix; added to every resource",
    shown="`{}`",
)

#: Every key of the ``skdeploy:`` namespace, in the README's order.
SETTINGS: Final[tuple[Setting[Any], ...]] = (
    MODEL_DIR,
    INFERENCE_DIR,
    FRAMEWORK_VERSION,
    INSTANCE_TYPE,
    INSTANCE_COUNT,
    ENDPOINT_NAME,
    NETWORK_ISOLATION,
    IMAGE_URI,
    ARTIFACT_SHA256,
    MODEL_FILES,
    ALLOW_VERSION_SKEW,
    SERVERLESS_KEY,
    AUTOSCALING_KEY,
    ASYNC_KEY,
    DEPLOYMENT_KEY,
    DATA_CAPTURE_KEY,
    KMS_KEY_ARN,
    VPC_KEY,
    STARTUP_HEALTH_CHECK_TIMEOUT,
    MODEL_DOWNLOAD_TIMEOUT,
    LOG_RETENTION,
    PROTECT,
    ALLOW_ENDPOINT_REPLACEMENT,
    PRODUCTION_OVERRIDES,
    VARIANTS_KEY,
    SHADOW_KEY,
    MODELS_KEY,
    API_KEY,
    PICKLE_LIMITS_KEY,
    BATCH_KEY,
    TRUSTED_MODULES,
    PROBABILITIES,
    CSV_HEADER,
    TAGS,
)
KNOWN_KEYS: Final = frozenset(s.key for s in SETTINGS)
