"""The inert placeholders the walk keeps instead of the objects the unpickler would create."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["NO_STATE", "Call", "Dictionary", "Global", "Opaque"]


@dataclass(frozen=True)
class Global:
    """A global the unpickler would import (``module.name``), named but never imported."""

    module: str
    name: str

    @property
    def qualname(self) -> str:
        return f"{self.module}.{self.name}"


NO_STATE = object()


@dataclass(eq=False)
class Call:
    """What a REDUCE, NEWOBJ, OBJ or INST would have created (never created here).

    ``wrapper`` marks joblib's array placeholder, created in one of the two ways joblib's pickler
    writes it; ``builds`` counts the BUILD opcodes applied to the object.
    """

    func: object
    args: object
    state: object = NO_STATE
    wrapper: bool = False
    builds: int = 0


@dataclass(eq=False)
class Dictionary:
    """A dict as its pairs, in pickle order: keys may repeat or be computed values."""

    pairs: list[tuple[object, object]] = field(default_factory=list)

    def get(self, key: str) -> object:
        for k, value in reversed(self.pairs):
            if isinstance(k, str) and k == key:
                return value
        return None


@dataclass(eq=False)
class Opaque:
    """A value the walk does not need: a long payload, an array, a persistent id."""

    what: str
