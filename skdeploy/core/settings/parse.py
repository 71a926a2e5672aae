"""Raw ``skdeploy:`` values to one frozen :class:`EndpointSettings`, every problem at once.

The Pulumi program and the command line both end in :func:`parse_settings`, so a stack file
means the same thing to ``pulumi up`` and to ``skdeploy check``/``serve``/``smoke``/``plan``.
Keys are read in the order their problems have always been listed; the rows they are read
through are in :mod:`.schema`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from skdeploy.core.constants import DEFAULT_INSTANCE_TYPE, REQUIREMENTS_FILE
from skdeploy.core.pickle.inspect import InspectionLimits
from skdeploy.core.settings._coerce import as_bool, as_int, as_object, as_str_list
from skdeploy.core.settings._patterns import REGION_PATTERN
from skdeploy.core.settings._rules import parse_map
from skdeploy.core.settings.batch import BatchSettings, parse_batch
from skdeploy.core.settings.errors import Problems, SettingsError
from skdeploy.core.settings.guardrails import check_safeguards, parse_overrides
from skdeploy.core.settings.instance_types import instance_type_rule
from skdeploy.core.settings.members import DEFAULT_INFERENCE_DIR, DEFAULT_MODEL_DIR, PICKLE_LIMITS
from skdeploy.core.settings.model import EndpointSettings, VariantSettings
from skdeploy.core.settings.multimodel import ModelSettings, parse_models
from skdeploy.core.settings.paths import (
    directory,
    handler_directory,
    model_files,
    relative_to_project,
)
from skdeploy.core.settings.production import ProductionKeys, parse_production
from skdeploy.core.settings.schema import (
    ALLOW_VERSION_SKEW,
    ARTIFACT_SHA256,
    CSV_HEADER,
    ENDPOINT_NAME,
    FRAMEWORK_VERSION,
    IMAGE_URI,
    INFERENCE_DIR,
    INSTANCE_COUNT,
    KNOWN_KEYS,
    MODEL_DIR,
    PROBABILITIES,
    REGION_KEY,
    SECRET,
)
from skdeploy.core.settings.values import StackValues
from skdeploy.core.settings.variants import parse_variants
from skdeploy.core.trusted import module_name_problem


@dataclass(frozen=True)
class _ModelKeys:
    """The top-level model keys as read: None where a problem was added."""

    model_dir: Path | None
    inference_dir: Path | None
    framework_version: str | None
    instance_type: str | None
    #: The count a variant defaults to: the stack's, even out of range (reported once here).
    variant_count: int
    instance_count: int | None
    endpoint_name: str | None
    image_uri: str | None
    allow_version_skew: bool | None
    model_files: tuple[str, ...]
    artifact_sha256: str | None = None


@dataclass(frozen=True)
class _ServingKeys:
    """The keys read after the model's: variants, isolation, inspection, handler behaviour."""

    tags: dict[str, str]
    variants: tuple[VariantSettings, ...]
    shadow: VariantSettings | None
    network_isolation: bool | None
    pickle_limits: InspectionLimits
    trusted_modules: tuple[str, ...]
    probabilities: bool | None
    csv_header: str | None
    overrides: frozenset[str]
    batch: BatchSettings


def parse_settings(
    raw: Mapping[str, object], *, stack: str, region: object, project_dir: Path
) -> EndpointSettings:
    """Validate raw ``skdeploy:`` values (keys without the namespace) into settings.

    Raises :class:`SettingsError` listing every problem found.
    """
    problems = Problems()
    project_dir = project_dir.resolve()
    values = StackValues(raw)
    _check_keys(problems, raw)
    region_value = _region(problems, region, stack)
    models = parse_models(problems, values, project_dir)
    model = _model_keys(problems, values, stack, project_dir, models[0] if models else None)
    serving, production = _serving_and_production(problems, values, model, stack, project_dir)
    if problems.items:
        raise SettingsError(stack, problems.items)
    settings = _settings(stack, project_dir, region_value, model, serving, production)
    return replace(settings, models=models) if models else settings


def _serving_and_production(
    problems: Problems, values: StackValues, model: _ModelKeys, stack: str, project_dir: Path
) -> tuple[_ServingKeys, ProductionKeys]:
    """Every key after the model's, in the order their problems are listed."""
    tags = _tags(problems, values.get("tags", {}))
    variants, shadow = parse_variants(
        problems,
        values,
        project_dir,
        instance_type=model.instance_type or DEFAULT_INSTANCE_TYPE,
        instance_count=model.variant_count,
    )
    # Every model the endpoint runs (the variants, or the top-level one, and the shadow) shares
    # one isolation setting; a requirements.txt in any of their handler folders needs network.
    served: list[Path | None] = [v.inference_dir for v in variants] or [model.inference_dir]
    served += [shadow.inference_dir] if shadow is not None else []
    isolation = _network_isolation(problems, values, served, project_dir)
    production = parse_production(
        problems, values, network_isolation=values.has("networkIsolation") and bool(isolation)
    )
    serving = _ServingKeys(
        tags=tags,
        variants=variants,
        shadow=shadow,
        network_isolation=isolation,
        pickle_limits=_pickle_limits(problems, values.get("pickleLimits")),
        trusted_modules=_trusted_modules(problems, values.get("trustedModules")),
        probabilities=values.read(problems, PROBABILITIES),
        csv_header=values.read(problems, CSV_HEADER),
        overrides=parse_overrides(problems, values.get("productionOverrides")),
        batch=parse_batch(problems, values.get("batch")),
    )
    check_safeguards(problems, values, stack=stack, tags=tags, overrides=serving.overrides)
    if model.artifact_sha256 is not None and (variants or shadow is not None):
        problems.add(
            ARTIFACT_SHA256.key,
            model.artifact_sha256,
            "pins the single model of a stack; not with variants or shadow",
        )
    return serving, production


def _check_keys(problems: Problems, raw: Mapping[str, object]) -> None:
    """Unknown keys, and secrets: skdeploy settings are not sensitive."""
    for key in sorted(set(raw) - KNOWN_KEYS):
        problems.add(key, raw[key], "unknown key; known keys: " + ", ".join(sorted(KNOWN_KEYS)))
    for key in sorted(k for k, v in raw.items() if v == SECRET and k in KNOWN_KEYS):
        problems.add(key, SECRET, "must not be a secret (skdeploy settings are not sensitive)")


def _region(problems: Problems, region: object, stack: str) -> str:
    """``aws:region``, required: the program deploys nowhere else."""
    value = "" if region is None else region
    if not isinstance(value, str) or not REGION_PATTERN.match(value):
        problems.items.append(
            f"{REGION_KEY} = {value!s}: required; an AWS region such as us-east-1 "
            f"(set it with `pulumi config set aws:region <region> -s {stack}`)"
        )
    return str(value)


def _model_keys(
    problems: Problems,
    values: StackValues,
    stack: str,
    project_dir: Path,
    first: ModelSettings | None = None,
) -> _ModelKeys:
    """The top-level model: its folders, framework, capacity, name and image.

    With ``models``, the top-level folders are the first model's (what a single-model view of
    the stack serves).
    """
    if first is not None:
        model_dir: Path | None = first.model_dir
        inference_dir: Path | None = first.inference_dir
    else:
        model_raw = values.get(MODEL_DIR.key, DEFAULT_MODEL_DIR)
        model_dir = directory(problems, MODEL_DIR.key, model_raw, project_dir)
        inference_raw = values.get(INFERENCE_DIR.key, DEFAULT_INFERENCE_DIR)
        inference_dir = handler_directory(problems, INFERENCE_DIR.key, inference_raw, project_dir)
    framework_version = values.read(problems, FRAMEWORK_VERSION)
    instance_type = values.get("instanceType", DEFAULT_INSTANCE_TYPE)
    type_rule = instance_type_rule(instance_type)
    if type_rule is not None:
        problems.add("instanceType", instance_type, type_rule)
    instance_count = values.read(problems, INSTANCE_COUNT)
    return _ModelKeys(
        model_dir=model_dir,
        inference_dir=inference_dir,
        framework_version=framework_version,
        instance_type=instance_type
        if type_rule is None and isinstance(instance_type, str)
        else None,
        variant_count=as_int(values.get(INSTANCE_COUNT.key, 1)) or 1,
        instance_count=instance_count,
        endpoint_name=values.read(problems, ENDPOINT_NAME, f"skdeploy-{stack}"),
        image_uri=values.read(problems, IMAGE_URI),
        allow_version_skew=values.read(problems, ALLOW_VERSION_SKEW),
        model_files=model_files(problems, values.get("modelFiles"), model_dir),
        artifact_sha256=values.read(problems, ARTIFACT_SHA256),
    )


def _network_isolation(
    problems: Problems, values: StackValues, served: list[Path | None], project_dir: Path
) -> bool | None:
    """On unless a served handler folder has a ``requirements.txt`` or the stack is serverless;
    an explicit ``true`` with a ``requirements.txt`` is refused (pip needs the network)."""
    with_requirements = [
        d for d in dict.fromkeys(served) if d is not None and (d / REQUIREMENTS_FILE).is_file()
    ]
    raw = values.get("networkIsolation")
    if raw is None:
        return not with_requirements and not values.has("serverless")
    isolation = as_bool(raw)
    if isolation is None:
        problems.add("networkIsolation", raw, "must be true or false")
    elif isolation and with_requirements:
        folders = ", ".join(relative_to_project(d, project_dir) for d in with_requirements)
        problems.add(
            "networkIsolation",
            raw,
            f"cannot be true while {REQUIREMENTS_FILE} exists in {folders}: the container "
            "pip-installs it at every start, which fails without network access",
        )
    return isolation


def _tags(problems: Problems, value: object) -> dict[str, str]:
    """``tags``: AWS's limits on tag keys and values, checked before any resource is tagged."""
    value = as_object(value)
    if not isinstance(value, dict):
        problems.add("tags", value, "must be a map of strings to strings")
        return {}
    tags: dict[str, str] = {}
    for key, tag_value in value.items():
        if not isinstance(key, str) or not 1 <= len(key) <= 128 or key.lower().startswith("aws:"):
            problems.add("tags", key, "tag keys are 1-128 characters and must not start with aws:")
        elif not isinstance(tag_value, str | int | float) or isinstance(tag_value, bool):
            problems.add("tags", {key: tag_value}, "tag values must be strings")
        elif len(str(tag_value)) > 256:
            problems.add("tags", key, "tag values are at most 256 characters")
        else:
            tags[key] = str(tag_value)
    return tags


def _trusted_modules(problems: Problems, value: object) -> tuple[str, ...]:
    """``trustedModules``: distinct module names (whether they ship is checked by ``check``)."""
    if value is None:
        return ()
    names = as_str_list(value)
    if names is None:
        problems.add("trustedModules", value, "must be a list of module names")
        return ()
    for name in names:
        reason = module_name_problem(name)
        if reason is not None:
            problems.add("trustedModules", name, reason)
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        problems.add("trustedModules", value, "lists " + ", ".join(duplicates) + " twice")
    return names


def _pickle_limits(problems: Problems, value: object) -> InspectionLimits:
    """``pickleLimits``: each member a whole number from 1 to its ceiling; defaults otherwise."""
    defaults = InspectionLimits()
    parsed = parse_map(problems, "pickleLimits", value, PICKLE_LIMITS)
    if parsed is None:
        return defaults

    def limit(name: str) -> int:
        given = parsed[InspectionLimits.SETTING_KEYS[name]]
        return int(getattr(defaults, name) if given is None else given)

    return InspectionLimits(
        max_stream_mb=limit("max_stream_mb"),
        max_opcodes=limit("max_opcodes"),
        max_values=limit("max_values"),
        max_nesting=limit("max_nesting"),
    )


def _settings(
    stack: str,
    project_dir: Path,
    region: str,
    model: _ModelKeys,
    serving: _ServingKeys,
    production: ProductionKeys,
) -> EndpointSettings:
    """The settings, once no problem was found (so every value below is set)."""
    assert model.model_dir is not None
    assert model.inference_dir is not None
    assert model.framework_version is not None
    assert model.instance_type is not None
    assert model.endpoint_name is not None
    assert model.instance_count is not None
    assert serving.network_isolation is not None
    return EndpointSettings(
        stack=stack,
        project_dir=project_dir,
        region=region,
        model_dir=model.model_dir,
        inference_dir=model.inference_dir,
        framework_version=model.framework_version,
        instance_type=model.instance_type,
        instance_count=model.instance_count,
        endpoint_name=model.endpoint_name,
        network_isolation=serving.network_isolation,
        image_uri=model.image_uri,
        artifact_sha256=model.artifact_sha256,
        model_files=model.model_files,
        tags=serving.tags,
        allow_version_skew=bool(model.allow_version_skew),
        variants=serving.variants,
        shadow=serving.shadow,
        production_overrides=serving.overrides,
        pickle_limits=serving.pickle_limits,
        trusted_modules=serving.trusted_modules,
        probabilities=bool(serving.probabilities),
        csv_header=str(serving.csv_header),
        serverless=production.serverless,
        autoscaling=production.autoscaling,
        async_inference=production.async_inference,
        deployment=production.deployment,
        data_capture=production.data_capture,
        kms_key_arn=production.kms_key_arn,
        vpc=production.vpc,
        startup_health_check_timeout_seconds=production.startup_health_check_timeout_seconds,
        model_download_timeout_seconds=production.model_download_timeout_seconds,
        log_retention_days=production.log_retention_days,
        protect=production.protect,
        allow_endpoint_replacement=production.allow_endpoint_replacement,
        api=production.api,
        batch=serving.batch,
    )
