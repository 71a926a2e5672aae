"""The entry points: every static check in order, and the gate the Pulumi program calls."""

from __future__ import annotations

from skdeploy.core.artifact import ArtifactError, artifact_inputs
from skdeploy.core.preflight._handlers import check_handlers
from skdeploy.core.preflight._pickles import check_pickles
from skdeploy.core.preflight._report import Finding, PreflightError, PreflightReport
from skdeploy.core.preflight._requirements import check_requirements
from skdeploy.core.preflight._sizes import check_sizes
from skdeploy.core.preflight._trust import check_trust
from skdeploy.core.settings import EndpointSettings

__all__ = ["assert_deployable", "check_containment", "static_checks"]


def static_checks(settings: EndpointSettings) -> PreflightReport:
    """Every check that needs neither AWS nor the runtime virtualenv.

    First a gate, listed only when it refuses: every file the artifact would hold must resolve
    inside the project. When one does not, the other checks do not run: they would read it.
    """
    if settings.multi_model:
        return _each_model(settings)
    report = PreflightReport(settings.stack)
    if not check_containment(settings, report):
        return report
    check_trust(settings, report)
    check_pickles(settings, report)
    check_handlers(settings, report)
    check_requirements(settings, report)
    check_sizes(settings, report)
    return report


def _each_model(settings: EndpointSettings) -> PreflightReport:
    """A multi-model stack: each model checked as a single model is, its findings named."""
    report = PreflightReport(settings.stack)
    for name, view in settings.model_views:
        one = static_checks(view)
        report.checks_run.extend(c for c in one.checks_run if c not in report.checks_run)
        report.findings.extend(
            Finding(f.check, f.severity, f"{name}: {f.message}") for f in one.findings
        )
    return report


def check_containment(settings: EndpointSettings, report: PreflightReport) -> bool:
    """Whether each variant's artifact inputs are inside the project (else an ``artifact`` error).

    The builder's own check (:func:`~skdeploy.core.artifact.artifact_inputs`), run before anything
    is read: folders outside the project, links leaving it, FIFOs and other non-regular files.
    """
    problems: list[str] = []
    for variant in settings.served_variants:
        try:
            artifact_inputs(
                variant.model_dir,
                variant.inference_dir,
                variant.model_files,
                project_dir=settings.project_dir,
            )
        except ArtifactError as exc:
            label = f"{variant.name}: " if settings.several_models else ""
            problems.extend(f"{label}{problem}" for problem in exc.problems)
    if problems:
        report.checks_run.append("artifact")
        report.extend("artifact", "error", problems)
    return not problems


def assert_deployable(settings: EndpointSettings) -> PreflightReport:
    """Run the static checks; raise :class:`PreflightError` with the report if any error."""
    report = static_checks(settings)
    if not report.ok:
        raise PreflightError(report.render())
    return report
