"""The inspector's errors: what the caller sees, and what stops a walk from inside it."""

from __future__ import annotations

__all__ = ["Corrupt", "PickleInspectionError", "Unsafe"]


class PickleInspectionError(Exception):
    """The file is not a joblib/pickle stream this module can read (corrupt, truncated, other)."""


class Corrupt(Exception):
    """Raised inside the walk; turned into a PickleInspectionError naming file and offset."""


class Unsafe(Exception):
    """Raised inside the walk for a construct whose effect on the real loader is not certain.

    The walk stops there: what the loader would read next is unknown, so nothing after it can be
    vouched for. The message becomes one of the report's refusals.
    """
