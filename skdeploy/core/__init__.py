"""The pure domain: what a stack asks for and what would make SageMaker refuse it.

Settings (parsed and validated from plain values), the framework and image tables, the
deterministic artifact, the samples, trusted modules, the static preflight checks and the pickle
inspector (:mod:`skdeploy.core.pickle`), and the IAM policy documents. Everything here works on
plain values and files: it may import the standard library, PyYAML and packaging, and never
Pulumi, pulumi_aws, boto3, botocore or argparse, nor :mod:`skdeploy.infra` or
:mod:`skdeploy.tooling` (``[tool.importlinter]`` in pyproject.toml enforces it).

``__all__`` lists the modules (each lists its own public names) and the names the layers above
use most.
"""

from skdeploy.core import (
    artifact,
    constants,
    frameworks,
    iam,
    image,
    pickle,
    preflight,
    samples,
    settings,
    trusted,
)
from skdeploy.core.artifact import Artifact, ArtifactError, build_artifact, build_for_settings
from skdeploy.core.frameworks import FRAMEWORKS, Framework, get_framework
from skdeploy.core.preflight import PreflightError, PreflightReport, static_checks
from skdeploy.core.settings import (
    EndpointSettings,
    SettingsError,
    load_stack_settings,
    parse_settings,
)

__all__ = [
    "FRAMEWORKS",
    "Artifact",
    "ArtifactError",
    "EndpointSettings",
    "Framework",
    "PreflightError",
    "PreflightReport",
    "SettingsError",
    "artifact",
    "build_artifact",
    "build_for_settings",
    "constants",
    "frameworks",
    "get_framework",
    "iam",
    "image",
    "load_stack_settings",
    "parse_settings",
    "pickle",
    "preflight",
    "samples",
    "settings",
    "static_checks",
    "trusted",
]
