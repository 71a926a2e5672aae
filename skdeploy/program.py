"""The stack program: settings → one component → exports. ``__main__.py`` only calls :func:`run`."""

from __future__ import annotations

from pathlib import Path

import pulumi

from skdeploy.endpoint import SklearnEndpoint
from skdeploy.preflight import assert_deployable
from skdeploy.settings import from_pulumi_config


def run(project_dir: Path) -> SklearnEndpoint:
    """Read the stack's settings, refuse what would fail on SageMaker, declare, export."""
    settings = from_pulumi_config(project_dir)
    assert_deployable(settings)
    endpoint = SklearnEndpoint(settings.endpoint_name, settings)
    for key, value in endpoint.outputs().items():
        pulumi.export(key, value)
    return endpoint
