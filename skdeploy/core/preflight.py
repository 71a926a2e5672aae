"""Preflight: every reason SageMaker would fail this stack, found in seconds, before deploying.

The static checks (settings, pickle inspection, handlers, requirements, sizes) run in the Pulumi
program before any resource is declared, so ``pulumi preview`` fails with the same report as
``skdeploy check`` and nothing is half-deployed. ``skdeploy check`` adds the one check that needs
the container-faithful runtime: load the model and predict ``samples.json`` (see
:func:`skdeploy.tooling.local.load_and_predict`).
"""

from __future__ import annotations

import ast
import gc
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from skdeploy.core.artifact import ArtifactError, artifact_inputs, handler_files
from skdeploy.core.constants import (
    CONTAINER_MODULES,
    MAX_PAYLOAD_BYTES,
    MAX_SERVERLESS_PAYLOAD_BYTES,
    PROGRAM,
    REQUIREMENTS_FILE,
    SAMPLES_FILE,
)
from skdeploy.core.frameworks import Framework
from skdeploy.core.pickle.inspect import PickleInspectionError, check_compatibility, inspect_pickle
from skdeploy.core.samples import CannotRun, batches, load_samples
from skdeploy.core.settings import EndpointSettings, VariantSettings, relative_to_project
from skdeploy.core.trusted import TrustedClasses, resolve_trusted

#: ``info`` findings are what a reviewer should see (e.g. trusted modules), never a problem.
Severity = Literal["error", "warning", "info"]

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

#: Names under which model files are pickles that ``joblib.load`` would read (joblib's own
#: compressed suffixes included). Any other model file that does not inspect as a pickle is a
#: data file the handler reads itself: a warning, not a refusal.
PICKLE_SUFFIXES = (".joblib", ".pkl", ".pickle", ".sav")
_COMPRESSED_SUFFIXES = (".z", ".gz", ".bz2", ".xz", ".lzma", ".lz4")

#: The framework table's scientific pins (canonical distribution names): listing one again in
#: requirements.txt is at best useless.
_PINNED_DISTRIBUTIONS = frozenset({"scikit-learn", "numpy", "pandas", "scipy"})


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


def static_checks(settings: EndpointSettings) -> PreflightReport:
    """Every check that needs neither AWS nor the runtime virtualenv.

    First a gate, listed only when it refuses: every file the artifact would hold must resolve
    inside the project. When one does not, the other checks do not run: they would read it.
    """
    report = PreflightReport(settings.stack)
    if not check_containment(settings, report):
        return report
    check_trust(settings, report)
    check_pickles(settings, report)
    check_handlers(settings, report)
    check_requirements(settings, report)
    check_sizes(settings, report)
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


def shipped_code(inference_dir: Path, project_dir: Path) -> list[str]:
    """Names below ``code/`` that the artifact ships from ``inference_dir``."""
    root = Path(os.path.realpath(project_dir))
    return [name for name, _ in handler_files(inference_dir, root)]


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
        python=_python_minor(settings.framework),
    )


def check_trust(settings: EndpointSettings, report: PreflightReport) -> None:
    """``trustedModules`` name modules that ship; list the classes each one admits."""
    if not settings.trusted_modules:
        return
    report.checks_run.append("trust")
    for inference_dir in dict.fromkeys(v.inference_dir for v in settings.served_variants):
        where = f"{_project_path(inference_dir, settings)}: " if settings.several_models else ""
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


def check_pickles(settings: EndpointSettings, report: PreflightReport) -> None:
    """Inspect each model file without unpickling it; compare with the framework."""
    report.checks_run.append("pickle")
    seen: set[Path] = set()
    for variant in settings.served_variants:
        shipped = shipped_code(variant.inference_dir, settings.project_dir)
        trusted, _ = trusted_classes(settings, variant.inference_dir, shipped)
        for file_name in variant.model_files:
            path = variant.model_dir / file_name
            if path not in seen:
                seen.add(path)
                _check_pickle(
                    settings,
                    report,
                    path,
                    _label(settings, variant, file_name),
                    trusted,
                    shipped,
                )


def _untrusted_hint(module: str, shipped: Iterable[str], trusted_names: Iterable[str]) -> str:
    """Advice for a refused name whose module ships with the handlers but is not trusted."""
    top = module.split(".")[0]
    ships = any(name.split("/")[0] in (top, f"{top}.py") for name in shipped)
    if not ships or any(module == t or module.startswith(t + ".") for t in trusted_names):
        return ""
    return (
        f" ({top} ships in code/: to let the pickle name its classes, add it to the stack's "
        f"skdeploy:trustedModules)"
    )


def _label(settings: EndpointSettings, variant: VariantSettings, name: str) -> str:
    return f"{variant.name}/{name}" if settings.several_models else name


def _check_pickle(
    settings: EndpointSettings,
    report: PreflightReport,
    path: Path,
    name: str,
    trusted: TrustedClasses,
    shipped: Iterable[str],
) -> None:
    """Inspect one model file."""
    try:
        inspected = inspect_pickle(path, limits=settings.pickle_limits, trusted=trusted.classes)
    except PickleInspectionError as exc:
        if is_pickle_name(path.name):
            report.add("pickle", "error", f"{name}: cannot be read as a joblib/pickle file: {exc}")
        else:
            report.add(
                "pickle",
                "warning",
                f"{name}: not a pickle, so not inspected (fine for a data file the handler "
                f"reads itself, not for a model joblib.load would read): {exc}",
            )
        return
    errors, warnings = check_compatibility(
        inspected, settings.framework, allow_version_skew=settings.allow_version_skew
    )
    hints = {
        f"{module}.{global_name}: ": _untrusted_hint(module, shipped, settings.trusted_modules)
        for module, global_name in inspected.globals
    }
    errors = tuple(
        m + next((h for p, h in hints.items() if h and m.startswith(p)), "") for m in errors
    )
    report.extend("pickle", "error", (f"{name}: {m}" for m in errors))
    report.extend("pickle", "warning", (f"{name}: {m}" for m in warnings))


def is_pickle_name(name: str) -> bool:
    """Whether a model file's name says joblib/pickle (``model.joblib``, ``model.pkl.gz``)."""
    stem = name.lower()
    for suffix in _COMPRESSED_SUFFIXES:
        stem = stem.removesuffix(suffix)
    return stem.endswith(PICKLE_SUFFIXES)


def _parse(source: Path, version: tuple[int, int]) -> ast.Module:
    """``ast.parse`` with the garbage collector paused.

    CPython 3.11.7 (seen here) raises ``SystemError: AST constructor recursion depth mismatch``
    when a finaliser runs Python code in the middle of a parse, which happens inside the Pulumi
    program when asyncio futures of a failed step are collected. Pausing GC avoids it.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        return ast.parse(source.read_text(encoding="utf-8"), str(source), feature_version=version)
    finally:
        if enabled:
            gc.enable()


def _python_minor(framework: Framework) -> tuple[int, int]:
    major, minor = framework.python.split(".")
    return int(major), int(minor)


def _module_level(body: list[ast.stmt]) -> Iterable[ast.stmt]:
    """Statements that run when the module is imported, also inside top-level if/try/with."""
    for node in body:
        yield node
        if isinstance(node, ast.With):
            yield from _module_level(node.body)
        elif isinstance(node, ast.If | ast.For | ast.While):
            yield from _module_level(node.body)
            yield from _module_level(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody):
                yield from _module_level(block)
            for handler in node.handlers:
                yield from _module_level(handler.body)


def _top_level_names(tree: ast.Module) -> set[str]:
    """Names the module defines at import time, as the container's ``getattr`` would see them."""
    names: set[str] = set()
    for node in _module_level(tree.body):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.ImportFrom):
            names.update(a.asname or a.name for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.asname or a.name.split(".")[0] for a in node.names)
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
    seen: set[Path] = set()
    for variant in settings.served_variants:
        if variant.inference_dir not in seen:
            seen.add(variant.inference_dir)
            _check_handler_dir(settings, report, variant)


def _check_handler_dir(
    settings: EndpointSettings, report: PreflightReport, variant: VariantSettings
) -> None:
    """The handler checks for one inference directory."""
    version = _python_minor(settings.framework)
    inference_dir = variant.inference_dir
    shipped = [n for n in shipped_code(inference_dir, settings.project_dir) if n.endswith(".py")]
    # What ``code/`` makes importable: its modules and its packages, by top-level name.
    local_modules = {n.split("/")[0].removesuffix(".py") for n in shipped}
    required = requirement_names(inference_dir / REQUIREMENTS_FILE)
    prefix = f"{variant.name}/" if settings.several_models else ""
    for source in (inference_dir / n for n in shipped):
        try:
            tree = _parse(source, version)
        except SyntaxError as exc:
            report.add(
                "handlers",
                "error",
                f"{prefix}{_code_name(source, inference_dir)}:{exc.lineno}: does not parse "
                f"under Python "
                f"{settings.framework.python} (the {settings.framework.version} container's): "
                f"{exc.msg}",
            )
            continue
        known = set(sys.stdlib_module_names) | CONTAINER_MODULES | local_modules
        imported = _imported_modules(tree)
        for module in sorted(m for m in imported - known if m.lower() not in required):
            report.add(
                "handlers",
                "error",
                f"{prefix}{_code_name(source, inference_dir)} imports {module!r}, which the "
                "container does not have; "
                f"add it to {REQUIREMENTS_FILE} or remove the import",
            )
        if source != inference_dir / PROGRAM:
            continue
        defined = _top_level_names(tree)
        if "model_fn" not in defined:
            report.add(
                "handlers",
                "error",
                f"{prefix}{PROGRAM} defines no model_fn: the container has no default that "
                "loads a model",
            )
        combined = sorted({"input_fn", "predict_fn", "output_fn"} & defined)
        if "transform_fn" in defined and combined:
            report.add(
                "handlers",
                "error",
                f"{prefix}{PROGRAM} defines transform_fn together with {', '.join(combined)}: the "
                "container refuses that combination (UserError)",
            )


def _code_name(source: Path, inference_dir: Path) -> str:
    """A handler file as the user knows it: relative to its handler folder."""
    return source.relative_to(inference_dir).as_posix()


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
        label = _project_path(path, settings) if settings.several_models else REQUIREMENTS_FILE
        _check_requirements_file(settings, report, path, label)


def _check_requirements_file(
    settings: EndpointSettings, report: PreflightReport, path: Path, label: str
) -> None:
    if not path.is_file():
        return
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
    pins = {
        canonicalize_name(req.name): req
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
                "requirements",
                "error",
                f"{label} line {number}: {text!r} is not a requirement: {exc}",
            )
            continue
        name = canonicalize_name(wanted.name)
        pinned = pins.get(name)
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
                f"{label} line {number}: {text!r} conflicts with the container's {pinned}: "
                "reinstalling a pinned package at start breaks the serving stack",
            )
        elif name in _PINNED_DISTRIBUTIONS:
            report.add(
                "requirements",
                "warning",
                f"{label} line {number}: {wanted.name} is already in the container ({pinned}); "
                "drop it",
            )


def check_sizes(settings: EndpointSettings, report: PreflightReport) -> None:
    """The model fits the endpoint's memory; each sample request fits the payload limit."""
    report.checks_run.append("sizes")
    _check_memory(settings, report)
    _check_sample_requests(settings, report)


def _check_memory(settings: EndpointSettings, report: PreflightReport) -> None:
    """Each model the endpoint runs (every variant and the shadow) fits its own memory."""
    for variant in settings.served_variants:
        prefix = f"{variant.name}: " if settings.several_models else ""
        _check_variant_memory(settings, variant, report, prefix)


@dataclass(frozen=True)
class MemoryLimit:
    """The memory one instance of a variant has, and how many model copies share it.

    An instance runs one gunicorn worker per vCPU, each loading its own copy. A serverless
    endpoint's vCPUs are not published, so it is held to at least one copy in ``memoryMb``.
    """

    memory_bytes: int
    workers: int
    #: The memory in words (``the 2048 MB of the serverless endpoint``).
    where: str
    #: What to change when the model does not fit.
    fix: str

    @property
    def budget_bytes(self) -> float:
        """What the model copies may take: :data:`MEMORY_BUDGET` of the memory."""
        return MEMORY_BUDGET * self.memory_bytes


def memory_limit(settings: EndpointSettings, variant: VariantSettings) -> MemoryLimit | None:
    """The memory ``variant`` runs in, or None when its instance type is not in the table."""
    if settings.serverless is not None:
        return MemoryLimit(
            settings.serverless.memory_mb * 1024**2,
            1,
            f"the {settings.serverless.memory_mb} MB of the serverless endpoint",
            "raise serverless.memoryMb (at most 6144) or use instances",
        )
    spec = INSTANCE_MEMORY.get(variant.instance_type)
    if spec is None:
        return None
    memory_gib, workers = spec
    return MemoryLimit(
        int(memory_gib * 1024**3),
        workers,
        f"the {memory_gib:g} GiB of {variant.instance_type}",
        "choose a larger instance",
    )


def _check_variant_memory(
    settings: EndpointSettings, variant: VariantSettings, report: PreflightReport, prefix: str
) -> None:
    """Model bytes on disk, once per worker, within :data:`MEMORY_BUDGET` of the memory.

    The file size is a cheap lower bound (``pulumi preview``, ``check --static``): a model
    whose files alone do not fit is refused here. What loading really takes (decompressed
    arrays, copies made while unpickling, the serving stack) is measured by ``skdeploy check``
    in the runtime (:mod:`skdeploy.tooling.memory`).
    """
    model_bytes = sum((variant.model_dir / n).stat().st_size for n in variant.model_files)
    limit = memory_limit(settings, variant)
    if limit is None:
        report.add(
            "sizes",
            "warning",
            f"{prefix}memory of {variant.instance_type} is not in skdeploy's table: model size "
            "unchecked",
        )
        return
    needed = model_bytes * limit.workers
    if needed > limit.budget_bytes:
        copies = f"loaded by {limit.workers} workers" if limit.workers > 1 else "loaded once"
        report.add(
            "sizes",
            "error",
            f"{prefix}model files of {model_bytes / 1e6:.0f} MB {copies} need about "
            f"{needed / 1e9:.1f} GB, over {int(MEMORY_BUDGET * 100)} % of {limit.where}: "
            f"{limit.fix} (file size on disk, a lower bound of what loading takes)",
        )


def _check_sample_requests(settings: EndpointSettings, report: PreflightReport) -> None:
    """Each model folder's ``samples.json`` is valid, and its requests fit InvokeEndpoint's limit.

    The smoke test and load-and-predict send the samples in batches
    (:func:`skdeploy.core.samples.batches`), so a large file is fine; one sample too large for any
    request is not. With variants, each variant is smoke-tested against the samples of its own
    model folder.
    """
    limit = MAX_SERVERLESS_PAYLOAD_BYTES if settings.serverless is not None else MAX_PAYLOAD_BYTES
    for model_dir in dict.fromkeys(v.model_dir for v in settings.served_variants):
        path = model_dir / SAMPLES_FILE
        if not path.is_file():
            continue
        name = _project_path(path, settings) if settings.several_models else SAMPLES_FILE
        try:
            samples = load_samples(path)
        except CannotRun as exc:
            report.add("sizes", "error", f"{name} cannot be used: {exc}")
            continue
        try:
            batches(samples.instances, limit)
        except CannotRun as exc:
            report.add(
                "sizes",
                "error",
                f"{name}: {exc} of a {settings.endpoint_kind} endpoint's InvokeEndpoint "
                "request: no client can send it",
            )


def _project_path(path: Path, settings: EndpointSettings) -> str:
    return relative_to_project(path, settings.project_dir)


def assert_deployable(settings: EndpointSettings) -> PreflightReport:
    """Run the static checks; raise :class:`PreflightError` with the report if any error."""
    report = static_checks(settings)
    if not report.ok:
        raise PreflightError(report.render())
    return report
