"""The stack's settings as the running Pulumi program sees them (the one ``pulumi.Config`` reader).

Everything else receives the plain, validated :class:`~skdeploy.core.settings.EndpointSettings`
that :func:`skdeploy.core.settings.parse_settings` builds from these raw values, so a stack file
means the same to ``pulumi up`` and to the ``skdeploy`` command line.
"""

from __future__ import annotations

from pathlib import Path

import pulumi
from pulumi.runtime import config as runtime_config

from skdeploy.core.constants import CONFIG_NAMESPACE
from skdeploy.core.settings import SECRET, EndpointSettings, parse_settings


def from_pulumi_config(project_dir: Path) -> EndpointSettings:
    """Read the running Pulumi program's configuration (``pulumi up``/``preview``, or mocks)."""
    prefix = f"{CONFIG_NAMESPACE}:"
    keys = set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env())
    config = pulumi.Config(CONFIG_NAMESPACE)
    raw: dict[str, object] = {}
    for full_key in sorted(k for k in keys if k.startswith(prefix)):
        key = full_key[len(prefix) :]
        raw[key] = SECRET if runtime_config.is_config_secret(full_key) else config.get(key)
    return parse_settings(
        raw,
        stack=pulumi.get_stack(),
        region=pulumi.Config("aws").get("region"),
        project_dir=project_dir,
    )
