"""``variants`` and ``shadow``: several models behind one endpoint, and a copy of its traffic.

A variant's instance keys default to the top-level ones, so its members' defaults are filled in
per stack from the schema's :data:`~.members.VARIANT` rows.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from skdeploy.core.constants import DEFAULT_VARIANT
from skdeploy.core.settings._coerce import as_object
from skdeploy.core.settings._rules import Member, parse_map
from skdeploy.core.settings.errors import Problems
from skdeploy.core.settings.instance_types import instance_type_rule
from skdeploy.core.settings.members import SHADOW, VARIANT
from skdeploy.core.settings.model import VariantSettings
from skdeploy.core.settings.paths import directory, handler_directory, model_files
from skdeploy.core.settings.values import StackValues


def _members(*, instance_type: str, instance_count: int, shadow: bool) -> tuple[Member, ...]:
    """The variant members with this stack's instance defaults, ``weight`` last (not a shadow's)."""
    defaults: dict[str, object] = {"instanceType": instance_type, "instanceCount": instance_count}
    members = tuple(
        replace(m, rule=replace(m.rule, default=defaults[m.name])) if m.name in defaults else m
        for m in SHADOW
    )
    return members if shadow else (*members, *(m for m in VARIANT if m.name == "weight"))


def parse_variant(
    problems: Problems,
    key: str,
    value: object,
    project_dir: Path,
    members: tuple[Member, ...],
) -> VariantSettings | None:
    """One variant (``variants[i]`` or ``shadow``); None, with problems added, if invalid."""
    parsed = parse_map(problems, key, value, members)
    if parsed is None:
        return None
    type_rule = instance_type_rule(parsed["instanceType"])
    if type_rule is not None:
        problems.add(f"{key}.instanceType", parsed["instanceType"], type_rule)
        return None
    if parsed["name"] is None:
        problems.add(f"{key}.name", "(missing)", "every variant needs a name")
        return None
    model_dir = directory(problems, f"{key}.modelDir", parsed["modelDir"], project_dir)
    inference_dir = handler_directory(
        problems, f"{key}.inferenceDir", parsed["inferenceDir"], project_dir
    )
    files = model_files(
        problems,
        list(parsed["modelFiles"]) if parsed["modelFiles"] else None,
        model_dir,
        f"{key}.modelFiles",
    )
    if model_dir is None or inference_dir is None:
        return None
    return VariantSettings(
        parsed["name"],
        model_dir,
        inference_dir,
        files,
        float(parsed.get("weight") or 0.0),
        parsed["instanceType"],
        parsed["instanceCount"],
    )


def parse_variants(
    problems: Problems,
    values: StackValues,
    project_dir: Path,
    *,
    instance_type: str,
    instance_count: int,
) -> tuple[tuple[VariantSettings, ...], VariantSettings | None]:
    """``variants`` and ``shadow``: names unique, weights not all zero, the shadow apart."""
    raw = as_object(values.get("variants"))
    variants: list[VariantSettings] = []
    if raw is not None:
        if not isinstance(raw, list) or not raw:
            problems.add("variants", raw, "must be a non-empty list of variants")
        else:
            members = _members(
                instance_type=instance_type, instance_count=instance_count, shadow=False
            )
            for index, item in enumerate(raw):
                parsed = parse_variant(problems, f"variants[{index}]", item, project_dir, members)
                if parsed is not None:
                    variants.append(parsed)
            names = [v.name for v in variants]
            if len(set(names)) != len(names):
                problems.add("variants", names, "variant names must be unique")
            if variants and len(variants) == len(raw) and not any(v.weight > 0 for v in variants):
                problems.add("variants", [v.weight for v in variants], "weights are all zero")
    return tuple(variants), _shadow(
        problems, values, project_dir, variants, instance_type, instance_count
    )


def _shadow(
    problems: Problems,
    values: StackValues,
    project_dir: Path,
    variants: list[VariantSettings],
    instance_type: str,
    instance_count: int,
) -> VariantSettings | None:
    """``shadow``: a variant that gets a copy of the traffic, named apart from the served ones."""
    if not values.has("shadow"):
        return None
    members = _members(instance_type=instance_type, instance_count=instance_count, shadow=True)
    shadow = parse_variant(problems, "shadow", values.get("shadow"), project_dir, members)
    served = [v.name for v in variants] or [DEFAULT_VARIANT]
    if shadow is not None and shadow.name in served:
        problems.add("shadow.name", shadow.name, "must differ from the production variants")
    return shadow
