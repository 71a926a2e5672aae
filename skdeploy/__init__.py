"""skdeploy: ship a pretrained scikit-learn model to a SageMaker real-time endpoint with Pulumi.

Three layers, each importing only the ones below it (``docs/architecture.md``):
:mod:`skdeploy.core` (the pure domain: settings, frameworks, artifact, preflight),
:mod:`skdeploy.infra` (the Pulumi program and its components) and :mod:`skdeploy.tooling` (the
command line and the tools around the deploy). The public API of the domain is re-exported here;
the component and the program's settings reader are in :mod:`skdeploy.infra`.
"""

from skdeploy.core import (
    FRAMEWORKS,
    Artifact,
    ArtifactError,
    EndpointSettings,
    Framework,
    SettingsError,
    build_artifact,
    build_for_settings,
    get_framework,
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
    "get_framework",
    "load_stack_settings",
    "parse_settings",
]
