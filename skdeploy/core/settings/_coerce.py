"""Coercions shared by every rule: the engine hands strings, a stack file hands YAML values.

Pulumi passes a program its configuration as text (``"2"``, ``"false"``, JSON for structured
values) while :func:`~skdeploy.core.settings.load_stack_settings` reads YAML objects; each
coercion accepts both spellings and returns None for anything else, which the caller reports.
"""

from __future__ import annotations

import json
import re


def as_bool(value: object) -> bool | None:
    """``true``/``false`` as a boolean or as text (any case)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def as_int(value: object) -> int | None:
    """A whole number or its digits; never a boolean (YAML's ``yes`` is not a count)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
        return int(value)
    return None


def as_float(value: object) -> float | None:
    """A number or its text; never a boolean."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def as_object(value: object) -> object:
    """Pulumi hands structured values to programs as JSON text; YAML hands them as objects."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def as_object_map(value: object) -> dict[str, object] | None:
    """A map, from YAML or from the engine's JSON text."""
    value = as_object(value)
    return value if isinstance(value, dict) else None


def as_str(value: object) -> str | None:
    """A string as it is (no number becomes one)."""
    return value if isinstance(value, str) else None


def as_str_list(value: object) -> tuple[str, ...] | None:
    """A list of strings, from YAML or from the engine's JSON text."""
    value = as_object(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None
