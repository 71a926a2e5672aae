"""The preflight report: findings by check and severity, rendered for people and for ``--json``."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from skdeploy.core.settings import EndpointSettings, relative_to_project

__all__ = ["Finding", "PreflightError", "PreflightReport", "Severity", "project_path"]

#: ``info`` findings are what a reviewer should see (e.g. trusted modules), never a problem.
Severity = Literal["error", "warning", "info"]


class PreflightError(RuntimeError):
    """Raised by the Pulumi program when a static check fails: nothing is declared."""


@dataclass(frozen=True)
class Finding:
    """One problem (or warning) found, named by the check that found it."""

    check: str
    severity: Severity
    message: str


@dataclass
class PreflightReport:
    """Every finding of one run, in check order."""

    stack: str
    findings: list[Finding] = field(default_factory=list)
    checks_run: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        """The findings that refuse the deploy."""
        return [f for f in self.findings if f.severity == "error"]

    @property
    def ok(self) -> bool:
        """True when nothing refuses the deploy (warnings allowed)."""
        return not self.errors

    def add(self, check: str, severity: Severity, message: str) -> None:
        """Record one finding."""
        self.findings.append(Finding(check, severity, message))

    def extend(self, check: str, severity: Severity, messages: Iterable[str]) -> None:
        """Record several findings of one check and severity."""
        for message in messages:
            self.add(check, severity, message)

    def render(self) -> str:
        """The human report: one line per finding, then a verdict."""
        lines = [f"preflight of stack {self.stack!r}: {', '.join(self.checks_run)}"]
        for finding in self.findings:
            mark = {"error": "ERROR", "warning": "warning", "info": "note"}[finding.severity]
            lines.append(f"  {mark:7} [{finding.check}] {finding.message}")
        errors = len(self.errors)
        warnings = sum(1 for f in self.findings if f.severity == "warning")
        verdict = "ok" if self.ok else "refused"
        lines.append(f"{verdict}: {errors} error(s), {warnings} warning(s)")
        return "\n".join(lines)

    def to_json(self) -> dict[str, object]:
        """The ``--json`` shape."""
        return {
            "stack": self.stack,
            "ok": self.ok,
            "checks": self.checks_run,
            "findings": [
                {"check": f.check, "severity": f.severity, "message": f.message}
                for f in self.findings
            ],
        }


def project_path(path: Path, settings: EndpointSettings) -> str:
    """A file as findings name it: relative to the project."""
    return relative_to_project(path, settings.project_dir)
