"""The stack program: settings → artifacts → one component → exports (``__main__.py`` runs it)."""

from __future__ import annotations

from pathlib import Path

import pulumi

from skdeploy.core.preflight import assert_deployable
from skdeploy.infra.config import from_pulumi_config
from skdeploy.infra.endpoint import SklearnEndpoint
from skdeploy.infra.store import build_artifacts


def export_outputs(endpoint: SklearnEndpoint) -> None:
    """Export the component's outputs as the stack's: the only ``pulumi.export`` of skdeploy.

    ``endpointKind`` among them is the kind guard's memory (:mod:`skdeploy.infra.kind`): a
    program of its own that declares a :class:`SklearnEndpoint` calls this too.
    """
    for key, value in endpoint.outputs().items():
        pulumi.export(key, value)


def run(project_dir: Path) -> SklearnEndpoint:
    """Read the stack's settings, refuse what would fail on SageMaker, build, declare, export."""
    settings = from_pulumi_config(project_dir)
    if settings.artifact_sha256 is None:
        assert_deployable(settings)
    else:
        # The pinned artifact passed these checks when it was built, and its smoke test when
        # it was served (skdeploy rollback checks the record): the model and handler files in
        # the project now are not what ships, so they neither block nor pass a rollback.
        pulumi.log.info(
            f"pinned to artifact {settings.artifact_sha256}: the project's current model and "
            "handler files are not checked, built or uploaded"
        )
    artifacts = build_artifacts(settings)
    endpoint = SklearnEndpoint(settings.endpoint_name, settings, artifacts=artifacts)
    export_outputs(endpoint)
    return endpoint
