"""What one inspection found, and how much work it has done (shared by nested walks)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from skdeploy.core.pickle._limits import InspectionLimits
from skdeploy.core.pickle._values import Global
from skdeploy.core.pickle.policy import global_refusal

__all__ = ["Findings"]


@dataclass
class Findings:
    """What one inspection found, and the work it has done so far (shared by nested walks)."""

    trusted: Mapping[str, Collection[str]]
    limits: InspectionLimits
    opcodes: int = 0
    contained: int = 0  # values put into lists, dicts and sets
    kept_bytes: int = 0  # payload bytes kept as values
    globals: dict[tuple[str, str], None] = field(default_factory=dict)
    refused: dict[str, None] = field(default_factory=dict)
    versions: dict[str, None] = field(default_factory=dict)

    def refuse(self, message: str) -> None:
        self.refused[message] = None

    def record_global(self, module: str, name: str) -> Global:
        self.globals[(module, name)] = None
        reason = global_refusal(module, name, self.trusted)
        if reason is not None:
            self.refuse(f"{module}.{name}: {reason}")
        return Global(module, name)
