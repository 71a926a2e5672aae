"""Where a stack's settings come from without the Pulumi CLI: ``stacks/Pulumi.<stack>.yaml``
(plus the ``config:`` defaults of ``Pulumi.yaml``), and the strings the engine would pass.

:func:`skdeploy.infra.config.from_pulumi_config` reads the same values from the engine under
``pulumi up``; both end in :func:`~skdeploy.core.settings.parse.parse_settings`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from skdeploy.core.constants import CONFIG_NAMESPACE
from skdeploy.core.settings._yaml import kind, load_yaml
from skdeploy.core.settings.errors import SettingsError
from skdeploy.core.settings.model import EndpointSettings
from skdeploy.core.settings.parse import parse_settings
from skdeploy.core.settings.schema import REGION_KEY, SECRET


def stack_file(project_dir: Path, stack: str) -> Path:
    """Where a stack's settings live (``stackConfigDir: stacks`` in Pulumi.yaml)."""
    return project_dir / "stacks" / f"Pulumi.{stack}.yaml"


def available_stacks(project_dir: Path) -> list[str]:
    """Stacks that have a settings file, e.g. ``["dev", "prod", "staging"]``."""
    return sorted(
        p.name[len("Pulumi.") : -len(".yaml")]
        for p in (project_dir / "stacks").glob("Pulumi.*.yaml")
    )


def read_stack_config(project_dir: Path, stack: str) -> dict[str, object]:
    """The merged ``config:`` of Pulumi.yaml (defaults) and the stack file, secrets masked.

    Values are returned as Pulumi's engine would hand them to the program: namespaced keys,
    structured values kept as objects. A ``secure:`` value becomes :data:`SECRET`: the CLI never
    needs (or decrypts) secrets. Both files are read by :func:`~._yaml.load_yaml`'s rules (size, no
    aliases, bounded nesting, no duplicate keys); every problem of both is raised at once.
    """
    path = stack_file(project_dir, stack)
    if not path.is_file():
        known = ", ".join(available_stacks(project_dir)) or "none"
        raise SettingsError(stack, [f"no stack file {path} (stacks found: {known})"])
    problems: list[str] = []
    merged: dict[str, object] = {}
    project_file = project_dir / "Pulumi.yaml"
    if project_file.is_file():
        project = _config_section(project_file, load_yaml(project_file, problems), problems)
        for key, decl in project.items():
            full_key = key if ":" in key else f"{CONFIG_NAMESPACE}:{key}"
            if isinstance(decl, dict) and ("default" in decl or "value" in decl):
                merged[full_key] = decl.get("value", decl.get("default"))
            elif not isinstance(decl, dict):
                merged[full_key] = decl
    for key, value in _config_section(path, load_yaml(path, problems), problems).items():
        merged[key] = SECRET if isinstance(value, dict) and "secure" in value else value
    if problems:
        raise SettingsError(stack, problems)
    return merged


def _config_section(path: Path, data: Mapping[str, Any], problems: list[str]) -> dict[str, Any]:
    """The ``config:`` map of a loaded file, its keys strings; problems added, never raised."""
    section = data.get("config")
    if section is None:
        return {}
    if not isinstance(section, dict):
        problems.append(
            f"{path}: config: must be a map of keys to values (such as "
            f"{CONFIG_NAMESPACE}:instanceType: ml.m5.large), not {kind(section)}"
        )
        return {}
    config: dict[str, Any] = {}
    for key, value in section.items():
        if isinstance(key, str):
            config[key] = value
        else:
            problems.append(
                f"{path}: config key {key!r} must be a string such as "
                f"{CONFIG_NAMESPACE}:instanceType"
            )
    return config


def load_stack_settings(project_dir: Path, stack: str) -> EndpointSettings:
    """Settings of ``stack`` read from its stack file, without the Pulumi CLI."""
    config = read_stack_config(project_dir, stack)
    prefix = f"{CONFIG_NAMESPACE}:"
    raw = {k[len(prefix) :]: v for k, v in config.items() if k.startswith(prefix)}
    return parse_settings(raw, stack=stack, region=config.get(REGION_KEY), project_dir=project_dir)


def config_as_engine_strings(config: Mapping[str, object]) -> dict[str, str]:
    """Encode stack-file values the way the Pulumi engine passes them (structured → JSON text)."""
    encode: Callable[[object], str] = lambda v: (  # noqa: E731
        v if isinstance(v, str) else json.dumps(v)
    )
    return {k: encode(v) for k, v in config.items()}
