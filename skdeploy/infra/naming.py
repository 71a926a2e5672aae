"""Who a stack's resources are: their logical names, their tags, and the alias that keeps them.

A resource's URN (its identity in the stack's state) is made of its type, its logical name and
its parent's type. The child components of :class:`~skdeploy.infra.endpoint.SklearnEndpoint`
arrived after stacks were deployed with every resource directly under the endpoint component, so
each resource they hold carries an alias to that old URN (:func:`moved_from`): the engine then
matches it to its deployed state instead of replacing it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from skdeploy.core.constants import DEFAULT_VARIANT, PROJECT_NAME
from skdeploy.core.settings import EndpointSettings, VariantSettings


@dataclass(frozen=True)
class Naming:
    """Logical names under one prefix (the component's name, lower-cased)."""

    prefix: str
    #: One variant, the default: its names stay as they were before variants existed.
    single: bool

    def __call__(self, suffix: str) -> str:
        """``<prefix>-<suffix>``: a resource of the endpoint as a whole."""
        return f"{self.prefix}-{suffix}"

    def of(self, variant: VariantSettings, suffix: str) -> str:
        """A resource of one variant: ``<prefix>-<variant>-<suffix>``."""
        if self.single and variant.name == DEFAULT_VARIANT:
            return self(suffix)
        return f"{self.prefix}-{variant.name.lower()}-{suffix}"


def resource_tags(settings: EndpointSettings, artifact_sha256: str) -> dict[str, str]:
    """Tags on every resource: the user's, plus where it came from."""
    return {
        **settings.tags,
        "skdeploy:project": PROJECT_NAME,
        "skdeploy:stack": settings.stack,
        "skdeploy:artifact-sha256": artifact_sha256,
    }


def moved_from(
    old_parent: pulumi.Resource,
    parent: pulumi.Resource,
    opts: pulumi.ResourceOptions | None = None,
) -> pulumi.ResourceOptions:
    """``opts`` for a resource now under ``parent`` that was deployed under ``old_parent``."""
    return pulumi.ResourceOptions.merge(
        opts, pulumi.ResourceOptions(parent=parent, aliases=[pulumi.Alias(parent=old_parent)])
    )
