"""The pickle check: each model file inspected without unpickling it, against the framework."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from skdeploy.core.pickle.inspect import PickleInspectionError, check_compatibility, inspect_pickle
from skdeploy.core.preflight._handlers import shipped_code
from skdeploy.core.preflight._report import PreflightReport
from skdeploy.core.preflight._trust import trusted_classes
from skdeploy.core.settings import EndpointSettings, VariantSettings
from skdeploy.core.trusted import TrustedClasses

__all__ = ["PICKLE_SUFFIXES", "check_pickles", "is_pickle_name"]

#: Names under which model files are pickles that ``joblib.load`` would read (joblib's own
#: compressed suffixes included). Any other model file that does not inspect as a pickle is a
#: data file the handler reads itself: a warning, not a refusal.
PICKLE_SUFFIXES = (".joblib", ".pkl", ".pickle", ".sav")
_COMPRESSED_SUFFIXES = (".z", ".gz", ".bz2", ".xz", ".lzma", ".lz4")


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
