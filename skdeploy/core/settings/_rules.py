"""The shape of a schema row: how a value is read, what it must satisfy, how the README says it.

:mod:`.schema` declares every key once with these types; :mod:`.parse` checks values through
them and :mod:`.readme` writes the README's settings table from them, so the documented range
and default of a key cannot drift from the enforced ones.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from skdeploy.core.settings._coerce import as_bool, as_int, as_object, as_str
from skdeploy.core.settings.errors import Problems

T = TypeVar("T")


@dataclass(frozen=True)
class Rule(Generic[T]):
    """How one value is read (``coerce``), what it must satisfy (``ok``) and the problem if not."""

    default: T | None
    coerce: Callable[[object], T | None]
    ok: Callable[[T], bool]
    error: str

    def check(self, problems: Problems, key: str, raw: object) -> T | None:
        """``raw`` coerced, or None with a problem added (unreported if absent and optional)."""
        if raw is None and self.default is None:
            return None
        value = self.coerce(raw)
        if value is None or not self.ok(value):
            problems.add(key, raw, self.error)
            return None
        return value


def whole(default: int | None, low: int, high: int, error: str = "") -> Rule[int]:
    """A whole number from ``low`` to ``high``."""
    return Rule(
        default, as_int, lambda v: low <= v <= high, error or f"a whole number {low}-{high}"
    )


def matching(pattern: re.Pattern[str], error: str) -> Rule[str]:
    """An optional string the pattern must match."""
    return Rule(None, as_str, lambda v: bool(pattern.match(v)), error)


def flag(default: bool) -> Rule[bool]:
    """``true`` or ``false``."""
    return Rule(default, as_bool, lambda v: True, "must be true or false")


def spoken(options: tuple[str, ...]) -> str:
    """``a, b or c``: a list of choices as the README's prose says it."""
    return f"{', '.join(options[:-1])} or {options[-1]}" if len(options) > 1 else options[0]


def shown_default(value: object) -> str:
    """A default as the README writes it: ``true``, ``100`` (not ``100.0``), ``none``, ``{}``."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


@dataclass(frozen=True)
class Member:
    """One key of a map setting: its rule, the README's words for it, and nested members if any.

    ``shown`` is the default the README puts in parentheses: None writes the rule's default,
    ``""`` writes none (a required member, or one whose default the setting's note explains).
    """

    name: str
    rule: Rule[Any]
    doc: str = ""
    shown: str | None = None
    members: tuple[Member, ...] = ()

    @property
    def readme(self) -> str:
        """``name: doc (default)``, as the README's settings table shows the member."""
        if self.members:
            return f"{self.name}: {{{', '.join(m.readme for m in self.members)}}}"
        shown = shown_default(self.rule.default) if self.shown is None else self.shown
        text = f"{self.name}: {self.doc}" if self.doc else self.name
        return f"{text} ({shown})" if shown else text


@dataclass(frozen=True)
class Setting(Generic[T]):
    """One ``skdeploy:`` key: the README row (key, type, default, rule) and how it is checked.

    ``check`` reads a plain value (None: the parser reads the key with its own code, e.g. a
    directory that must exist); ``members`` are the keys of a map (a list of maps when ``many``);
    ``doc`` is the README's rule, after the members' ``{...}`` when there are any.
    """

    key: str
    type: str
    doc: str
    check: Rule[T] | None = None
    shown: str | None = None
    members: tuple[Member, ...] = ()
    many: bool = False

    @property
    def default(self) -> str:
        """The README's default column: ``shown``, else the checked default in backticks."""
        if self.shown is not None:
            return self.shown
        assert self.check is not None, f"{self.key}: a row without a check says its default"
        return f"`{shown_default(self.check.default)}`"

    @property
    def rule(self) -> str:
        """The README's rule column: the members' ``{...}`` (in ``[...]`` if many), then ``doc``."""
        if not self.members:
            return self.doc
        shape = f"{{{', '.join(m.readme for m in self.members)}}}"
        return f"`{f'[{shape}]' if self.many else shape}`{self.doc}"


def parse_map(
    problems: Problems, key: str, value: object, members: tuple[Member, ...]
) -> dict[str, Any] | None:
    """Parse a map setting member by member; None when absent or invalid (problems added)."""
    value = as_object(value)
    if value is None:
        return None
    names = [m.name for m in members]
    if not isinstance(value, dict):
        problems.add(key, value, "must be a map with keys " + ", ".join(names))
        return None
    valid = True
    for unknown in sorted(set(value) - set(names), key=str):
        problems.add(f"{key}.{unknown}", value[unknown], "unknown key; known: " + ", ".join(names))
        valid = False
    parsed: dict[str, Any] = {}
    for member in members:
        raw = value.get(member.name, member.rule.default)
        if raw is None:
            parsed[member.name] = None
            continue
        coerced = member.rule.coerce(raw)
        if coerced is None or not member.rule.ok(coerced):
            problems.add(f"{key}.{member.name}", raw, member.rule.error)
            valid = False
        parsed[member.name] = coerced
    return parsed if valid else None


def member_problems(
    value: object, members: tuple[Member, ...], renamed: Mapping[str, str] | None = None
) -> list[str]:
    """Where a value object's fields break its members' rules.

    A member's field is its name in snake_case (``maxConcurrency``: ``max_concurrency``) unless
    ``renamed`` says otherwise; members without a field are skipped. A field left None is fine
    when its member is optional (no default).
    """
    problems: list[str] = []
    for member in members:
        field = (renamed or {}).get(member.name) or re.sub(r"(?<!^)([A-Z])", r"_\1", member.name)
        field = field.lower()
        if not hasattr(value, field):
            continue
        field_value = getattr(value, field)
        if field_value is None and member.rule.default is None:
            continue
        try:
            good = field_value is not None and member.rule.ok(field_value)
        except TypeError:  # a value of the wrong type (a string where a number goes, ...)
            good = False
        if not good:
            problems.append(f"{member.name} = {field_value!r}: {member.rule.error}")
    return problems


def refuse_invalid(what: str, problems: list[str]) -> None:
    """Raise one :class:`ValueError` naming every problem of a value object, if any."""
    if problems:
        raise ValueError(f"invalid {what}: " + "; ".join(problems))
