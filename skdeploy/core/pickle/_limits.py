"""The bounds on one inspection's work, and the refusal that names the one a file passed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from skdeploy.core.pickle._errors import PickleInspectionError

__all__ = ["InspectionLimits", "PickleLimitExceeded", "limit_message"]


@dataclass(frozen=True)
class InspectionLimits:
    """Bounds on the work one inspection may do, set per stack by ``skdeploy:pickleLimits``.

    Each refusal names the limit it hit and the setting key that raises it: ``maxStreamMb``
    (decompressed bytes read, arrays included), ``maxOpcodes`` (pickle opcodes walked, which
    bounds time), ``maxValues`` (values the walk holds at once on its stack, memo and
    containers, which bounds memory) and ``maxNesting`` (open MARKs plus nested object-array
    pickles).
    """

    max_stream_mb: int = 2048
    max_opcodes: int = 20_000_000
    max_values: int = 5_000_000
    max_nesting: int = 1_000

    #: The ``skdeploy:pickleLimits`` key of each field, for messages and the settings parser.
    SETTING_KEYS: ClassVar[dict[str, str]] = {
        "max_stream_mb": "maxStreamMb",
        "max_opcodes": "maxOpcodes",
        "max_values": "maxValues",
        "max_nesting": "maxNesting",
    }


class PickleLimitExceeded(PickleInspectionError):
    """The file needs more work than a limit of :class:`InspectionLimits` allows."""


def limit_message(limits: InspectionLimits, attribute: str, what: str) -> str:
    key = InspectionLimits.SETTING_KEYS[attribute]
    return (
        f"{what}: over the limit pickleLimits.{key}={getattr(limits, attribute)} (a hostile or "
        f"damaged file, or a model bigger than the default allows: raise skdeploy:pickleLimits."
        f"{key} in the stack file)"
    )
