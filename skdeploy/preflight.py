"""Preflight: every reason SageMaker would fail this stack, found in seconds, before deploying.

The static checks (settings, pickle inspection, handlers, requirements, sizes) run in the Pulumi
program before any resource is declared, so ``pulumi preview`` fails with the same report as
``skdeploy check`` and nothing is half-deployed. ``skdeploy check`` adds the one check that needs
the container-faithful runtime: load the model and predict ``samples.json`` (see
:func:`skdeploy.local.load_and_predict`).
"""

from __future__ import annotations

import ast
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from packaging.requirements import InvalidRequirement, Requirement

from skdeploy.constants import (
    MAX_PAYLOAD_BYTES,
    PROGRAM,
    REQUIREMENTS_FILE,
    SAMPLES_FILE,
)
from skdeploy.frameworks import Framework
from skdeploy.pickle_inspect import PickleInspectionError, check_compatibility, inspect_pickle
from skdeploy.settings import EndpointSettings

Severity = Literal["error", "warning"]

#: Memory (GiB) and vCPUs of common real-time instance types. Each gunicorn worker (one per vCPU
#: by default) loads its own copy of the model, so the model must fit that many times.
INSTANCE_MEMORY: dict[str, tuple[float, int]] = {
    "ml.t2.medium": (4, 2),
    "ml.t2.large": (8, 2),
    "ml.t2.xlarge": (16, 4),
    "ml.t2.2xlarge": (32, 8),
    "ml.m5.large": (8, 2),
    "ml.m5.xlarge": (16, 4),
    "ml.m5.2xlarge": (32, 8),
    "ml.m5.4xlarge": (64, 16),
    "ml.c5.large": (4, 2),
    "ml.c5.xlarge": (8, 4),
    "ml.c5.2xlarge": (16, 8),
    "ml.c5.4xlarge": (32, 16),
    "ml.r5.large": (16, 2),
    "ml.r5.xlarge": (32, 4),
    "ml.r5.2xlarge": (64, 8),
}
#: Share of instance memory the model copies may take; the rest is Python, numpy and requests.
MEMORY_BUDGET = 0.7

#: Top-level modules the container has besides the standard library (its pinned packages and
#: what they bring), by import name.
CONTAINER_MODULES = frozenset(
    {
        "numpy",
        "scipy",
        "pandas",
        "sklearn",
        "joblib",
        "threadpoolctl",
        "dateutil",
        "pytz",
        "six",
        "flask",
        "werkzeug",
        "jinja2",
        "markupsafe",
        "itsdangerous",
        "click",
        "gunicorn",
        "gevent",
        "google",
        "sagemaker_containers",
        "boto3",
        "botocore",
    }
)

#: Distribution names of the framework table's pins, by the import name users think of.
_PINNED_DISTRIBUTIONS = {"scikit-learn", "numpy", "pandas", "scipy"}


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
            mark = "ERROR" if finding.severity == "error" else "warning"
            lines.append(f"  {mark:7} [{finding.check}] {finding.message}")
        errors, warnings = len(self.errors), len(self.findings) - len(self.errors)
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


def static_checks(settings: EndpointSettings) -> PreflightReport:
    """Every check that needs neither AWS nor the runtime virtualenv."""
    report = PreflightReport(settings.stack)
    check_pickles(settings, report)
    check_handlers(settings, report)
    check_requirements(settings, report)
    check_sizes(settings, report)
    return report


def check_pickles(settings: EndpointSettings, report: PreflightReport) -> None:
    """Inspect each model file without unpickling it; compare with the framework."""
    report.checks_run.append("pickle")
    for name in settings.model_files:
        path = settings.model_dir / name
        try:
            inspected = inspect_pickle(path)
        except PickleInspectionError as exc:
            report.add("pickle", "error", f"{name}: cannot be read as a joblib/pickle file: {exc}")
            continue
        errors, warnings = check_compatibility(
            inspected, settings.framework, allow_version_skew=settings.allow_version_skew
        )
        report.extend("pickle", "error", (f"{name}: {m}" for m in errors))
        report.extend("pickle", "warning", (f"{name}: {m}" for m in warnings))


def _python_minor(framework: Framework) -> tuple[int, int]:
    major, minor = framework.python.split(".")
    return int(major), int(minor)


def _top_level_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.ImportFrom):
            names.update(a.asname or a.name for a in node.names)
    return names


def _imported_modules(tree: ast.Module) -> set[str]:
    """Top-level module names imported at module level (not inside functions)."""
    modules: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            modules.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module.split(".")[0])
    return modules


def check_handlers(settings: EndpointSettings, report: PreflightReport) -> None:
    """inference.py parses under the container's Python, defines model_fn, imports what exists."""
    report.checks_run.append("handlers")
    version = _python_minor(settings.framework)
    local_modules = {p.stem for p in settings.inference_dir.glob("*.py")}
    required = requirement_names(settings.requirements_file)
    for source in sorted(settings.inference_dir.glob("*.py")):
        try:
            tree = ast.parse(
                source.read_text(encoding="utf-8"), str(source), feature_version=version
            )
        except SyntaxError as exc:
            report.add(
                "handlers",
                "error",
                f"{source.name}:{exc.lineno}: does not parse under Python "
                f"{settings.framework.python} (the {settings.framework.version} container's): "
                f"{exc.msg}",
            )
            continue
        known = set(sys.stdlib_module_names) | CONTAINER_MODULES | local_modules | required
        for module in sorted(_imported_modules(tree) - known):
            report.add(
                "handlers",
                "error",
                f"{source.name} imports {module!r}, which the container does not have; "
                f"add it to {REQUIREMENTS_FILE} or remove the import",
            )
        if source.name != PROGRAM:
            continue
        defined = _top_level_names(tree)
        if "model_fn" not in defined:
            report.add(
                "handlers",
                "error",
                f"{PROGRAM} defines no model_fn: the container has no default that loads a model",
            )
        combined = sorted({"input_fn", "predict_fn", "output_fn"} & defined)
        if "transform_fn" in defined and combined:
            report.add(
                "handlers",
                "error",
                f"{PROGRAM} defines transform_fn together with {', '.join(combined)}: the "
                "container refuses that combination (UserError)",
            )


def requirement_names(path: Path) -> set[str]:
    """Import-ish names of the packages a requirements.txt installs (lower-case, _ for -)."""
    if not path.is_file():
        return set()
    names = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        text = line.split("#", 1)[0].strip()
        if text and not text.startswith("-"):
            try:
                names.add(Requirement(text).name.lower().replace("-", "_"))
            except InvalidRequirement:
                continue
    return names


def check_requirements(settings: EndpointSettings, report: PreflightReport) -> None:
    """requirements.txt: installable at start (network) and not fighting the container's pins."""
    report.checks_run.append("requirements")
    path = settings.requirements_file
    if not path.is_file():
        return
    if settings.network_isolation:
        report.add(
            "requirements",
            "error",
            f"{REQUIREMENTS_FILE} with network isolation: the container pip-installs it at every "
            "start and the endpoint never becomes healthy",
        )
    report.add(
        "requirements",
        "warning",
        f"{REQUIREMENTS_FILE} is installed at every container start (slower starts, needs network "
        "or a NAT in a VPC); the container already has numpy, scipy, pandas, scikit-learn, joblib",
    )
    pins = {
        req.name.lower(): req
        for req in (Requirement(p) for p in settings.framework.runtime_requirements())
    }
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text or text.startswith("-"):
            continue
        try:
            wanted = Requirement(text)
        except InvalidRequirement as exc:
            report.add(
                "requirements", "error", f"line {number}: {text!r} is not a requirement: {exc}"
            )
            continue
        pinned = pins.get(wanted.name.lower())
        if pinned is None:
            continue
        versions = [s.version for s in pinned.specifier if s.operator == "=="]
        if (
            versions
            and wanted.specifier
            and not wanted.specifier.contains(versions[0], prereleases=True)
        ):
            report.add(
                "requirements",
                "error",
                f"line {number}: {text!r} conflicts with the container's {pinned}: reinstalling a "
                "pinned package at start breaks the serving stack",
            )
        elif wanted.name.lower() in _PINNED_DISTRIBUTIONS:
            report.add(
                "requirements",
                "warning",
                f"line {number}: {wanted.name} is already in the container ({pinned}); drop it",
            )


def check_sizes(settings: EndpointSettings, report: PreflightReport) -> None:
    """The model fits the instance (once per worker); sample requests fit the payload limit."""
    report.checks_run.append("sizes")
    model_bytes = sum((settings.model_dir / n).stat().st_size for n in settings.model_files)
    spec = INSTANCE_MEMORY.get(settings.instance_type)
    if spec is None:
        report.add(
            "sizes",
            "warning",
            f"memory of {settings.instance_type} is not in skdeploy's table: model size unchecked",
        )
    else:
        memory_gib, vcpus = spec
        needed = model_bytes * vcpus
        if needed > MEMORY_BUDGET * memory_gib * 1024**3:
            report.add(
                "sizes",
                "error",
                f"model files of {model_bytes / 1e6:.0f} MB loaded by {vcpus} workers need about "
                f"{needed / 1e9:.1f} GB, over {int(MEMORY_BUDGET * 100)} % of the "
                f"{memory_gib:g} GiB of {settings.instance_type}: choose a larger instance",
            )
    samples = settings.model_dir / SAMPLES_FILE
    if samples.is_file():
        try:
            instances = json.loads(samples.read_text(encoding="utf-8")).get("instances", [])
        except (json.JSONDecodeError, AttributeError) as exc:
            report.add("sizes", "error", f"{SAMPLES_FILE} is not a JSON object: {exc}")
            return
        body = len(json.dumps({"instances": instances}).encode())
        if body > MAX_PAYLOAD_BYTES:
            report.add(
                "sizes",
                "error",
                f"the {SAMPLES_FILE} request is {body} bytes, over the {MAX_PAYLOAD_BYTES}-byte "
                "InvokeEndpoint limit",
            )


def assert_deployable(settings: EndpointSettings) -> PreflightReport:
    """Run the static checks; raise :class:`PreflightError` with the report if any error."""
    report = static_checks(settings)
    if not report.ok:
        raise PreflightError(report.render())
    return report
