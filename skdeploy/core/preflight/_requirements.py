"""The requirements check: requirements.txt installs at every start and must not fight the pins."""

from __future__ import annotations

from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name

from skdeploy.core.constants import REQUIREMENTS_FILE
from skdeploy.core.preflight._report import PreflightReport, project_path
from skdeploy.core.settings import EndpointSettings

__all__ = ["check_requirements", "requirement_names"]

#: The framework table's scientific pins (canonical distribution names): listing one again in
#: requirements.txt is at best useless.
_PINNED_DISTRIBUTIONS = frozenset({"scikit-learn", "numpy", "pandas", "scipy"})


def requirement_names(path: Path) -> set[str]:
    """Import-ish names of the packages a requirements.txt installs (lower-case, _ for -).

    A distribution whose import name differs (``Pillow`` is ``PIL``) is not matched: the check
    then asks for the import to be listed, which a reviewer resolves by reading the message.
    """
    if not path.is_file():
        return set()
    names = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        text = line.split("#", 1)[0].strip()
        if text and not text.startswith("-"):
            try:
                names.add(canonicalize_name(Requirement(text).name).replace("-", "_"))
            except InvalidRequirement:
                continue
    return names


def check_requirements(settings: EndpointSettings, report: PreflightReport) -> None:
    """requirements.txt of every handler folder the endpoint runs: installable at start (network)
    and not fighting the container's pins."""
    report.checks_run.append("requirements")
    for inference_dir in dict.fromkeys(v.inference_dir for v in settings.served_variants):
        path = inference_dir / REQUIREMENTS_FILE
        label = project_path(path, settings) if settings.several_models else REQUIREMENTS_FILE
        _check_requirements_file(settings, report, path, label)


def _check_requirements_file(
    settings: EndpointSettings, report: PreflightReport, path: Path, label: str
) -> None:
    """One requirements.txt: the cost of installing at start, then each line against the pins."""
    if not path.is_file():
        return
    _report_installs_at_start(settings, report, label)
    pins = {
        canonicalize_name(req.name): req
        for req in (Requirement(p) for p in settings.framework.runtime_requirements())
    }
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if text and not text.startswith("-"):
            _check_requirement_line(report, pins, f"{label} line {number}", text)


def _report_installs_at_start(
    settings: EndpointSettings, report: PreflightReport, label: str
) -> None:
    """The container pip-installs the file at every start: an error without network."""
    if settings.network_isolation:
        report.add(
            "requirements",
            "error",
            f"{label} with network isolation: the container pip-installs it at every "
            "start and the endpoint never becomes healthy",
        )
    if settings.vpc is not None and not settings.network_isolation:
        report.add(
            "requirements",
            "warning",
            f"{label} with a VPC: the container pip-installs it at every start, which "
            "hangs unless the subnets reach PyPI through a NAT gateway (skdeploy cannot see that)",
        )
    report.add(
        "requirements",
        "warning",
        f"{label} is installed at every container start (slower starts, needs network "
        "or a NAT in a VPC); the container already has numpy, scipy, pandas, scikit-learn, joblib",
    )


def _check_requirement_line(
    report: PreflightReport, pins: dict[NormalizedName, Requirement], where: str, text: str
) -> None:
    """One requirement: it parses, and does not reinstall (or repeat) a container pin."""
    try:
        wanted = Requirement(text)
    except InvalidRequirement as exc:
        report.add("requirements", "error", f"{where}: {text!r} is not a requirement: {exc}")
        return
    name = canonicalize_name(wanted.name)
    pinned = pins.get(name)
    if pinned is None:
        return
    versions = [s.version for s in pinned.specifier if s.operator == "=="]
    if (
        versions
        and wanted.specifier
        and not wanted.specifier.contains(versions[0], prereleases=True)
    ):
        report.add(
            "requirements",
            "error",
            f"{where}: {text!r} conflicts with the container's {pinned}: "
            "reinstalling a pinned package at start breaks the serving stack",
        )
    elif name in _PINNED_DISTRIBUTIONS:
        report.add(
            "requirements",
            "warning",
            f"{where}: {wanted.name} is already in the container ({pinned}); drop it",
        )
