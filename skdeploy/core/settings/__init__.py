"""Per-stack settings: read once, validated all at once, frozen.

One table, :data:`SETTINGS` (:mod:`.schema`, with the map members in :mod:`.members`), declares
every ``skdeploy:`` key once: type, default, range and doc. The parser checks values through it
and the README's settings table is written from it (:mod:`.readme`).

- :mod:`.model`: the frozen values (:class:`EndpointSettings` and its parts);
- :mod:`.parse`: raw values to settings (:func:`parse_settings`), with the production keys in
  :mod:`.production`, the variants in :mod:`.variants` and a production stack's safeguards in
  :mod:`.guardrails`;
- :mod:`.stack_file`: ``stacks/Pulumi.<stack>.yaml`` for commands that run without the Pulumi CLI
  (:func:`load_stack_settings`); :func:`skdeploy.infra.config.from_pulumi_config` is the one
  reader of ``pulumi.Config`` and this package imports no Pulumi.

Validation collects every problem and raises one :class:`SettingsError` that lists them all,
before any resource is declared, so a bad stack file never half-deploys.
"""

from skdeploy.core.settings._rules import Member, Rule, Setting
from skdeploy.core.settings._yaml import MAX_SETTINGS_FILE_BYTES, MAX_YAML_DEPTH
from skdeploy.core.settings.batch import BatchSettings
from skdeploy.core.settings.errors import SettingsError
from skdeploy.core.settings.guardrails import (
    PRODUCTION_ENVIRONMENTS,
    PRODUCTION_REQUIREMENTS,
    production_reason,
)
from skdeploy.core.settings.instance_types import INSTANCE_TYPES_FILE, instance_types
from skdeploy.core.settings.members import (
    CAPTURE_CONTENT,
    DEPLOYMENT_STRATEGIES,
    PICKLE_LIMIT_CEILINGS,
)
from skdeploy.core.settings.model import (
    ApiSettings,
    AsyncInferenceSettings,
    AutoscalingSettings,
    DataCaptureSettings,
    DeploymentSettings,
    EndpointSettings,
    ServerlessSettings,
    VariantSettings,
    VpcSettings,
)
from skdeploy.core.settings.multimodel import ModelSettings
from skdeploy.core.settings.parse import parse_settings
from skdeploy.core.settings.paths import relative_to_project
from skdeploy.core.settings.schema import LOG_RETENTION_DAYS, REGION_KEY, SECRET, SETTINGS
from skdeploy.core.settings.stack_file import (
    available_stacks,
    config_as_engine_strings,
    load_stack_settings,
    read_stack_config,
    stack_file,
)

__all__ = [
    "CAPTURE_CONTENT",
    "DEPLOYMENT_STRATEGIES",
    "INSTANCE_TYPES_FILE",
    "LOG_RETENTION_DAYS",
    "MAX_SETTINGS_FILE_BYTES",
    "MAX_YAML_DEPTH",
    "PICKLE_LIMIT_CEILINGS",
    "PRODUCTION_ENVIRONMENTS",
    "PRODUCTION_REQUIREMENTS",
    "REGION_KEY",
    "SECRET",
    "SETTINGS",
    "ApiSettings",
    "AsyncInferenceSettings",
    "AutoscalingSettings",
    "BatchSettings",
    "DataCaptureSettings",
    "DeploymentSettings",
    "EndpointSettings",
    "Member",
    "ModelSettings",
    "Rule",
    "ServerlessSettings",
    "Setting",
    "SettingsError",
    "VariantSettings",
    "VpcSettings",
    "available_stacks",
    "config_as_engine_strings",
    "instance_types",
    "load_stack_settings",
    "parse_settings",
    "production_reason",
    "read_stack_config",
    "relative_to_project",
    "stack_file",
]
