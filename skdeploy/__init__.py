"""skdeploy: ship a pretrained scikit-learn model to a SageMaker real-time endpoint with Pulumi.

The public API is re-exported here; modules are one concept each (settings, artifact, image,
endpoint component, preflight, local runtime, smoke, plan, cli).
"""

from skdeploy.artifact import Artifact, ArtifactError, build_artifact, build_for_settings
from skdeploy.frameworks import FRAMEWORKS, Framework, get_framework
from skdeploy.settings import (
    EndpointSettings,
    SettingsError,
    from_pulumi_config,
    load_stack_settings,
    parse_settings,
)

__all__ = [
    "FRAMEWORKS",
    "Artifact",
    "ArtifactError",
    "EndpointSettings",
    "Framework",
    "SettingsError",
    "build_artifact",
    "build_for_settings",
    "from_pulumi_config",
    "get_framework",
    "load_stack_settings",
    "parse_settings",
]
