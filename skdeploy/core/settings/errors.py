"""The one error a stack's settings raise, and the collector that fills it.

Every rule adds its problem to a :class:`Problems` instead of raising, so that a stack file with
five mistakes is refused once, with all five listed, before any resource is declared.
"""

from __future__ import annotations

import json
from typing import Final

from skdeploy.core.constants import CONFIG_NAMESPACE

#: Longest value echoed in a problem: a setting is short; a huge one is cut, not printed whole.
SHOWN_CHARS: Final = 200


class SettingsError(ValueError):
    """Every problem found in one stack's settings, one per line."""

    def __init__(self, stack: str, problems: list[str]) -> None:
        self.stack = stack
        self.problems = list(problems)
        listing = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"stack {stack!r} has {len(self.problems)} invalid setting(s):\n{listing}")


class Problems:
    """Collects problems while values are coerced, so that all of them are reported at once."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, key: str, value: object, rule: str) -> None:
        """``skdeploy:<key> = <value>: <rule>``, the shape of every per-key problem."""
        self.items.append(f"{CONFIG_NAMESPACE}:{key} = {shown(value)}: {rule}")


def shown(value: object) -> str:
    """``value`` as a problem echoes it: JSON where it can be, cut at :data:`SHOWN_CHARS`."""
    if isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value, default=str)
        except (TypeError, ValueError):  # keys JSON cannot spell (dates, ...)
            text = repr(value)
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "..."
