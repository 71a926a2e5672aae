"""Names and limits shared by the Pulumi program, the local runtime, the smoke test and the tests.

Each fact is written once here; nothing else in the project spells these strings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

# --- Container environment variables (read by sagemaker-containers) -----------------------------
ENV_PROGRAM: Final = "SAGEMAKER_PROGRAM"
ENV_SUBMIT_DIRECTORY: Final = "SAGEMAKER_SUBMIT_DIRECTORY"
ENV_LOG_LEVEL: Final = "SAGEMAKER_CONTAINER_LOG_LEVEL"
ENV_REGION: Final = "SAGEMAKER_REGION"
ENV_WORKERS: Final = "SAGEMAKER_MODEL_SERVER_WORKERS"
ENV_TIMEOUT: Final = "SAGEMAKER_MODEL_SERVER_TIMEOUT"
ENV_DEFAULT_ACCEPT: Final = "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT"
ENV_BIND_PORT: Final = "SAGEMAKER_BIND_TO_PORT"
ENV_BASE_DIR: Final = "SAGEMAKER_BASE_DIR"

#: Entry script inside ``code/`` of the artifact.
PROGRAM: Final = "inference.py"
#: The wire format package the project's ``inference.py`` imports; ships beside it in ``code/``.
WIRE_MODULE: Final = "skdeploy_wire"
#: Names of the local server's own modules (``skdeploy/tooling/_runtime/``), which share the
#: import path with ``code/`` in the runtime: a handler module may not start with it.
RESERVED_MODULE_PREFIX: Final = "_skdeploy_"
#: The instance type of a stack that names none (2 vCPUs, 8 GiB).
DEFAULT_INSTANCE_TYPE: Final = "ml.m5.large"
#: What makes a folder of the handler directory a package that ships in ``code/``.
PACKAGE_INIT: Final = "__init__.py"
#: Where the container extracts ``model.tar.gz``.
CONTAINER_MODEL_DIR: Final = "/opt/ml/model"
#: ``SAGEMAKER_SUBMIT_DIRECTORY`` when the code ships inside ``model.tar.gz``.
CONTAINER_CODE_DIR: Final = "/opt/ml/model/code"
#: An integer: a word such as ``INFO`` makes the container fail at start.
CONTAINER_LOG_LEVEL: Final = "20"


#: ``inference.py``'s own options, set on the Model only when a stack changes them
#: (``probabilities``, ``csvHeader``); the handlers read them once, at model load.
ENV_PROBABILITIES: Final = "SKDEPLOY_PROBABILITIES"
ENV_CSV_HEADER: Final = "SKDEPLOY_CSV_HEADER"
CSV_HEADER_CHOICES: Final = ("auto", "present", "absent")
CSV_HEADER_DEFAULT: Final = "auto"


def container_environment(
    region: str, handler_environment: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Environment the Model resource declares; the local runtime serves with the same values.

    ``handler_environment`` adds the stack's handler options
    (:attr:`skdeploy.core.settings.EndpointSettings.handler_environment`).
    """
    return {
        ENV_PROGRAM: PROGRAM,
        ENV_SUBMIT_DIRECTORY: CONTAINER_CODE_DIR,
        ENV_LOG_LEVEL: CONTAINER_LOG_LEVEL,
        ENV_REGION: region,
        **(handler_environment or {}),
    }


# --- The front door's Lambda function (its handler reads these; tests/test_frontdoor.py) ---------
#: The SageMaker endpoint the function invokes.
ENV_FRONTDOOR_ENDPOINT_NAME: Final = "ENDPOINT_NAME"
#: Largest request body the function accepts, in bytes.
ENV_FRONTDOOR_MAX_PAYLOAD_BYTES: Final = "MAX_PAYLOAD_BYTES"

# --- Artifact layout ----------------------------------------------------------------------------
ARTIFACT_NAME: Final = "model.tar.gz"
ARTIFACT_CODE_DIR: Final = "code"
REQUIREMENTS_FILE: Final = "requirements.txt"
SAMPLES_FILE: Final = "samples.json"
#: Git-ignored folder for built artifacts and runtime virtualenvs.
BUILD_DIR: Final = "build"


#: Key prefix of every artifact in the bucket.
ARTIFACT_PREFIX: Final = "models/"


def artifact_key(sha256: str) -> str:
    """Content-addressed S3 key of an artifact: a new artifact never overwrites an old one."""
    return f"{ARTIFACT_PREFIX}{sha256}/{ARTIFACT_NAME}"


#: Key prefix of a multi-model endpoint's artifacts: the Model's ``modelDataUrl``, and all the
#: execution role reads.
MULTI_MODEL_PREFIX: Final = "multi-models/"


def target_model(name: str, sha256: str) -> str:
    """A multi-model artifact's key under :data:`MULTI_MODEL_PREFIX`: its ``TargetModel``.

    Content-addressed like :func:`artifact_key`: SageMaker caches a loaded model by this name, so
    a changed model must be a new name, and the unchanged ones keep theirs.
    """
    return f"{name}-{sha256}.tar.gz"


# --- Endpoint -----------------------------------------------------------------------------------
#: Name of the single production variant. Stable: blue/green updates need the same names.
DEFAULT_VARIANT: Final = "AllTraffic"
LOG_GROUP_PREFIX: Final = "/aws/sagemaker/Endpoints/"
METRICS_NAMESPACE_PREFIX: Final = "/aws/sagemaker/"

# --- Content types ------------------------------------------------------------------------------
CONTENT_JSON: Final = "application/json"
CONTENT_CSV: Final = "text/csv"
CONTENT_NPY: Final = "application/x-npy"

# --- Limits (botocore sagemaker-runtime model; SageMaker developer guide) -----------------------
#: InvokeEndpoint body limit for instance endpoints, in and out.
MAX_PAYLOAD_BYTES: Final = 6 * 1024 * 1024
#: InvokeEndpoint body limit for serverless endpoints.
MAX_SERVERLESS_PAYLOAD_BYTES: Final = 4 * 1000 * 1000
#: Seconds the model has to answer one invocation.
INVOCATION_TIMEOUT_SECONDS: Final = 60

# --- Stack outputs (the program exports these; the smoke test and plan read them) ---------------
OUTPUT_ENDPOINT_NAME: Final = "endpointName"
OUTPUT_ENDPOINT_ARN: Final = "endpointArn"
OUTPUT_ENDPOINT_CONFIG_NAME: Final = "endpointConfigName"
OUTPUT_MODEL_NAME: Final = "modelName"
OUTPUT_MODEL_DATA_URL: Final = "modelDataUrl"
OUTPUT_ARTIFACT_SHA256: Final = "artifactSha256"
OUTPUT_IMAGE_URI: Final = "imageUri"
OUTPUT_REGION: Final = "region"
#: ``serverless`` or ``instances``; read back on the next update to refuse an in-place switch.
OUTPUT_ENDPOINT_KIND: Final = "endpointKind"

#: ``https://.../predict`` of the optional HTTPS front door (exported only when ``api`` is on).
OUTPUT_API_URL: Final = "apiUrl"

STACK_OUTPUTS: Final = (
    OUTPUT_ENDPOINT_NAME,
    OUTPUT_ENDPOINT_ARN,
    OUTPUT_ENDPOINT_CONFIG_NAME,
    OUTPUT_MODEL_NAME,
    OUTPUT_MODEL_DATA_URL,
    OUTPUT_ARTIFACT_SHA256,
    OUTPUT_IMAGE_URI,
    OUTPUT_REGION,
    OUTPUT_ENDPOINT_KIND,
)

# --- Pulumi -------------------------------------------------------------------------------------
PROJECT_NAME: Final = "skdeploy"
CONFIG_NAMESPACE: Final = "skdeploy"
COMPONENT_TYPE: Final = "skdeploy:index:SklearnEndpoint"


#: Top-level modules the container has besides the standard library (its pinned packages and
#: what they bring), by import name.
CONTAINER_MODULES: Final = frozenset(
    {
        "numpy",
        "scipy",
        "pandas",
        "sklearn",
        "joblib",
        "threadpoolctl",
        "dateutil",
        "pytz",
        "six",
        "flask",
        "werkzeug",
        "jinja2",
        "markupsafe",
        "itsdangerous",
        "click",
        "gunicorn",
        "gevent",
        "google",
        "sagemaker_containers",
        "boto3",
        "botocore",
    }
)
