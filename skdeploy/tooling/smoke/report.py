"""The smoke test's verdicts: one :class:`Check` per check, and the report printed as text or
JSON.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from skdeploy.tooling.common import EXIT_FAILED, EXIT_OK

Status = Literal["PASS", "FAIL", "SKIP"]
PASS: Final = "PASS"  # noqa: S105 - a check verdict, not a password
FAIL: Final = "FAIL"
SKIP: Final = "SKIP"
CHECK_IN_SERVICE: Final = "in-service"
CHECK_ENDPOINT_CONFIG: Final = "endpoint-config"
CHECK_PREDICTIONS: Final = "predictions"
CHECK_PROBABILITIES: Final = "probabilities"
CHECK_METRICS: Final = "metrics"
CHECK_BAD_REQUEST: Final = "bad-request"
CHECK_LATENCY: Final = "latency"
#: Every check, in the order it runs and is reported.
CHECKS: Final = (
    CHECK_IN_SERVICE,
    CHECK_ENDPOINT_CONFIG,
    CHECK_PREDICTIONS,
    CHECK_PROBABILITIES,
    CHECK_METRICS,
    CHECK_BAD_REQUEST,
    CHECK_LATENCY,
)


@dataclass(frozen=True)
class Check:
    """One check's verdict and what it saw."""

    name: str
    status: Status
    detail: str


@dataclass
class SmokeReport:
    """Everything the smoke test found; rendered as text or as JSON."""

    endpoint_name: str
    region: str
    source: str
    endpoint_url: str | None = None
    variant: str | None = None
    checks: list[Check] = field(default_factory=list)
    latency_ms: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, dict[str, float | None]] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """No check failed (a skipped check is not a failure, and is reported as skipped)."""
        return all(check.status != FAIL for check in self.checks)

    @property
    def exit_code(self) -> int:
        """0 when passed, 1 when a check failed."""
        return EXIT_OK if self.passed else EXIT_FAILED

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` report."""
        return {
            "endpoint_name": self.endpoint_name,
            "region": self.region,
            "endpoint_url": self.endpoint_url,
            "variant": self.variant,
            "source": self.source,
            "checks": [
                {"name": c.name, "status": c.status, "detail": c.detail} for c in self.checks
            ],
            "latency_ms": dict(self.latency_ms),
            "metrics": {name: dict(values) for name, values in self.metrics.items()},
            "passed": self.passed,
        }

    def render(self) -> str:
        """The readable report: one line per check, then the verdict."""
        where = f"local {self.endpoint_url}" if self.endpoint_url else self.region
        variant = f", variant {self.variant}" if self.variant else ""
        lines = [
            f"smoke test of endpoint {self.endpoint_name}{variant} ({where}; from {self.source})"
        ]
        width = max((len(c.name) for c in self.checks), default=0)
        lines += [f"  {c.status}  {c.name:<{width}}  {c.detail}" for c in self.checks]
        failed = [c.name for c in self.checks if c.status == FAIL]
        lines.append("FAILED: " + ", ".join(failed) if failed else "PASSED")
        return "\n".join(lines)


def render_reports(results: Sequence[SmokeReport], *, as_json: bool) -> str:
    """The reports of one smoke test, a run per variant: text, or the ``--json`` document (one
    run's report, or every variant's under ``variants``)."""
    if not as_json:
        return "\n\n".join(r.render() for r in results)
    document: Any = results[0].to_json()
    if len(results) > 1:
        document = {
            "endpoint_name": results[0].endpoint_name,
            "region": results[0].region,
            "variants": {r.variant: r.to_json() for r in results},
            "passed": all(r.passed for r in results),
        }
    return json.dumps(document, indent=2)
