"""The endpoint kind guard: AWS cannot switch an endpoint between serverless and instances.

The kind this stack deployed last time is read back from the stack's own ``endpointKind``
output (which the program exports, :func:`skdeploy.infra.program.export_outputs`) through a
StackReference; a switch without ``allowEndpointReplacement`` fails the program before the
configuration or the endpoint is touched (both wait for the guarded value).
"""

from __future__ import annotations

from typing import Any

import pulumi

from skdeploy.core.constants import OUTPUT_ENDPOINT_KIND
from skdeploy.core.settings import EndpointSettings


class EndpointReplacementRefused(RuntimeError):
    """The stack would switch between serverless and instances without the opt-in."""


def guarded_endpoint_kind(
    parent: pulumi.Resource, settings: EndpointSettings, name: str
) -> pulumi.Output[str]:
    """The endpoint kind, checked against the kind this stack deployed last time."""
    reference = pulumi.StackReference(
        name,
        stack_name=f"{pulumi.get_organization()}/{pulumi.get_project()}/{pulumi.get_stack()}",
        opts=pulumi.ResourceOptions(parent=parent),
    )

    def check(previous: Any) -> str:
        if (
            isinstance(previous, str)
            and previous != settings.endpoint_kind
            and not settings.allow_endpoint_replacement
        ):
            raise EndpointReplacementRefused(
                f"endpoint {settings.endpoint_name} runs on {previous}; AWS cannot switch "
                f"it to {settings.endpoint_kind} in place. Set "
                "skdeploy:allowEndpointReplacement to true to accept a new endpoint (it is "
                "deleted and created again: downtime)."
            )
        return settings.endpoint_kind

    return reference.get_output(OUTPUT_ENDPOINT_KIND).apply(check)
