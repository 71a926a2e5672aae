"""The smoke test of a multi-model endpoint: every model, through ``TargetModel``, against its own
``samples.json``.

Each run names its model by the key SageMaker loads it from (``<name>-<sha256>.tar.gz`` under the
stack's prefix, :func:`~skdeploy.core.constants.target_model`): the artifact is rebuilt (from the
cache) to know it, so a smoke test of an endpoint still serving an older build of a model fails
to reach it rather than checking the wrong one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from skdeploy.core.artifact import build_for_settings
from skdeploy.core.constants import SAMPLES_FILE, target_model
from skdeploy.core.settings import EndpointSettings


class TargetModel(str):
    """A run's aim that is a model of a multi-model endpoint, not a production variant."""

    __slots__ = ()


class ModelTargetedRuntime:
    """A SageMaker Runtime client whose every ``invoke_endpoint`` names one model."""

    def __init__(self, runtime: Any, target: str) -> None:
        self.runtime = runtime
        self.target = target

    def invoke_endpoint_async(self, **kwargs: Any) -> Any:
        """Not routed: a stack with ``models`` refuses ``async``."""
        return self.runtime.invoke_endpoint_async(**kwargs)

    def invoke_endpoint(self, **kwargs: Any) -> Any:
        return self.runtime.invoke_endpoint(TargetModel=self.target, **kwargs)


def model_runs(stack: EndpointSettings) -> list[tuple[str | None, Path]]:
    """One run per model: its ``TargetModel`` and its own samples."""
    return [
        (
            TargetModel(target_model(name, build_for_settings(view).sha256)),
            view.model_dir / SAMPLES_FILE,
        )
        for name, view in stack.model_views
    ]
