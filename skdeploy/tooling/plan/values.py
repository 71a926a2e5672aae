"""Differences between two JSON values, leaf by leaf, and how a value is shown."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

#: Longest rendering of a value shown in a diff; longer ones are shown as ``(changed)``.
MAX_SHOWN: Final = 80
#: Longest rendering of a value in a listing (the plan, an added resource); longer ones are cut.
MAX_LISTED: Final = 200


class _Absent:
    """An input that one side of a diff does not have (distinct from ``null``)."""

    def __repr__(self) -> str:
        return "(absent)"


ABSENT: Final = _Absent()


_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def child_path(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    segment = key if _IDENTIFIER.match(key) else f"[{json.dumps(key)}]"
    if not path:
        return segment
    return f"{path}{segment}" if segment.startswith("[") else f"{path}.{segment}"


def _as_structure(value: Any) -> Any:
    """A string holding a JSON object or list (an IAM policy) is diffed as that structure."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            return value
        if isinstance(parsed, dict | list):
            return parsed
    return value


def _same(old: Any, new: Any) -> bool:
    """Equal as JSON (so that ``true`` and ``1`` differ, unlike in Python)."""
    if old is ABSENT or new is ABSENT:
        return old is new
    return json.dumps(old, sort_keys=True) == json.dumps(new, sort_keys=True)


def show(value: Any) -> str:
    """A value as the diff shows it: JSON, or ``(absent)``."""
    return repr(value) if value is ABSENT else json.dumps(value, ensure_ascii=False)


@dataclass(frozen=True)
class Change:
    """One changed leaf, at a dotted path such as ``productionVariants[0].initialInstanceCount``."""

    path: str
    old: Any
    new: Any

    def render(self) -> str:
        """``path: old → new`` for short values, ``path: (changed)`` for long ones."""
        old, new = show(self.old), show(self.new)
        if len(old) > MAX_SHOWN or len(new) > MAX_SHOWN:
            return f"{self.path}: (changed)"
        return f"{self.path}: {old} → {new}"

    def to_json(self) -> dict[str, Any]:
        """``{path, old, new}``, without ``old``/``new`` when that side has no value."""
        data: dict[str, Any] = {"path": self.path}
        if self.old is not ABSENT:
            data["old"] = self.old
        if self.new is not ABSENT:
            data["new"] = self.new
        return data


def _opened(old: Any, new: Any, kind: type) -> bool:
    """Both sides are ``kind`` or absent, and one is a non-empty ``kind``: compare inside it.

    An object that appears or goes away is thus shown leaf by leaf, so that a replacing field
    nested in it (``deploymentConfig.autoRollbackConfiguration``) is seen to change.
    """
    sides = [v for v in (old, new) if v is not ABSENT]
    return all(isinstance(v, kind) for v in sides) and any(sides)


def value_changes(old: Any, new: Any, path: str = "") -> list[Change]:
    """Every changed leaf between two values, objects by key and lists by position."""
    old, new = _as_structure(old), _as_structure(new)
    if _same(old, new):
        return []
    changes: list[Change] = []
    if _opened(old, new, dict):
        before = {} if old is ABSENT else old
        after = {} if new is ABSENT else new
        for key in sorted(set(before) | set(after)):
            changes += value_changes(
                before.get(key, ABSENT), after.get(key, ABSENT), child_path(path, key)
            )
        return changes
    if _opened(old, new, list):
        before = [] if old is ABSENT else old
        after = [] if new is ABSENT else new
        for index in range(max(len(before), len(after))):
            changes += value_changes(
                before[index] if index < len(before) else ABSENT,
                after[index] if index < len(after) else ABSENT,
                child_path(path, index),
            )
        return changes
    return [Change(path, old, new)]


def leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every leaf of a value with its dotted path (JSON strings opened up), for listings."""
    value = _as_structure(value)
    if isinstance(value, dict) and value:
        for key in sorted(value):
            yield from leaves(value[key], child_path(path, key))
    elif isinstance(value, list) and value:
        for index, item in enumerate(value):
            yield from leaves(item, child_path(path, index))
    else:
        yield path, value


def shown_leaf(path: str, value: Any) -> str:
    text = show(value)
    if len(text) > MAX_LISTED:
        text = f"{text[: MAX_LISTED - 1]}… ({len(text)} characters)"
    return f"{path}: {text}"
