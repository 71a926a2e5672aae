"""The trust check: each ``trustedModules`` entry ships with the handlers; what it admits."""

from __future__ import annotations

from pathlib import Path

from skdeploy.core.preflight._handlers import python_minor, shipped_code
from skdeploy.core.preflight._report import PreflightReport, project_path
from skdeploy.core.settings import EndpointSettings
from skdeploy.core.trusted import TrustedClasses, resolve_trusted

__all__ = ["check_trust", "trusted_classes"]


def trusted_classes(
    settings: EndpointSettings, inference_dir: Path, shipped: list[str] | None = None
) -> tuple[TrustedClasses, list[str]]:
    """The classes ``trustedModules`` admits for the model served with ``inference_dir``.

    A trusted module must ship with that model's handlers (``shipped``: what ships from them,
    listed here when not given); the second value lists the modules that do not (or do not
    parse), as problems.
    """
    if not settings.trusted_modules:
        return TrustedClasses(), []
    return resolve_trusted(
        inference_dir,
        settings.trusted_modules,
        shipped_code(inference_dir, settings.project_dir) if shipped is None else shipped,
        python=python_minor(settings.framework),
    )


def check_trust(settings: EndpointSettings, report: PreflightReport) -> None:
    """``trustedModules`` name modules that ship; list the classes each one admits."""
    if not settings.trusted_modules:
        return
    report.checks_run.append("trust")
    for inference_dir in dict.fromkeys(v.inference_dir for v in settings.served_variants):
        where = f"{project_path(inference_dir, settings)}: " if settings.several_models else ""
        trusted, problems = trusted_classes(settings, inference_dir)
        report.extend("trust", "error", (f"{where}{p}" for p in problems))
        report.extend(
            "trust",
            "info",
            (
                f"{where}trusted, so the pickle may name its classes: {line}"
                for line in trusted.summary()
            ),
        )
