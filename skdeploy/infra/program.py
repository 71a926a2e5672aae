"""The stack program: settings → one component → exports. ``__main__.py`` only calls :func:`run`."""

from __future__ import annotations

from pathlib import Path

import pulumi

from skdeploy.core.preflight import assert_deployable
from skdeploy.infra.config import from_pulumi_config
from skdeploy.infra.endpoint import SklearnEndpoint


def run(project_dir: Path) -> SklearnEndpoint:
    """Read the stack's settings, refuse what would fail on SageMaker, declare, export."""
    settings = from_pulumi_config(project_dir)
    assert_deployable(settings)
    endpoint = SklearnEndpoint(settings.endpoint_name, settings)
    for key, value in endpoint.outputs().items():
        pulumi.export(key, value)
    return endpoint
