"""A stack's raw ``skdeploy:`` values, read through the schema's rules."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from skdeploy.core.settings._rules import Setting
from skdeploy.core.settings.errors import Problems
from skdeploy.core.settings.schema import SECRET

T = TypeVar("T")


class StackValues:
    """The raw values (keys without the namespace); a masked secret reads as absent.

    A secret is refused once, as such, by the parser; reading it as absent keeps that from
    becoming a second, confusing problem about its value.
    """

    def __init__(self, raw: Mapping[str, object]) -> None:
        self.raw = raw

    def get(self, key: str, default: object = None) -> object:
        """The value of ``key``, or ``default`` when it is absent or a secret."""
        value = self.raw.get(key, default)
        return default if value == SECRET else value

    def has(self, key: str) -> bool:
        """Whether the stack sets ``key`` (to anything but null or a secret)."""
        return self.get(key) is not None

    def read(self, problems: Problems, setting: Setting[T], default: T | None = None) -> T | None:
        """``setting``'s value checked by its rule (``default`` in place of the rule's)."""
        rule = setting.check
        assert rule is not None, f"{setting.key} has no rule to read it with"
        raw = self.get(setting.key, rule.default if default is None else default)
        return rule.check(problems, setting.key, raw)
