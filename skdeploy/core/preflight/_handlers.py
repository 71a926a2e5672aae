"""The handler check: what ships in ``code/`` parses under the container's Python, defines
``model_fn`` and imports only what the container has."""

from __future__ import annotations

import ast
import gc
import os
import sys
from collections.abc import Iterable
from pathlib import Path

from skdeploy.core.artifact import handler_files
from skdeploy.core.constants import (
    CONTAINER_MODULES,
    PROGRAM,
    REQUIREMENTS_FILE,
    RESERVED_MODULE_PREFIX,
)
from skdeploy.core.frameworks import Framework
from skdeploy.core.preflight._report import PreflightReport
from skdeploy.core.preflight._requirements import requirement_names
from skdeploy.core.settings import EndpointSettings, VariantSettings

__all__ = ["check_handlers", "python_minor", "shipped_code"]


def shipped_code(inference_dir: Path, project_dir: Path) -> list[str]:
    """Names below ``code/`` that the artifact ships from ``inference_dir``."""
    root = Path(os.path.realpath(project_dir))
    return [name for name, _ in handler_files(inference_dir, root)]


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


def python_minor(framework: Framework) -> tuple[int, int]:
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
    version = python_minor(settings.framework)
    inference_dir = variant.inference_dir
    shipped = [n for n in shipped_code(inference_dir, settings.project_dir) if n.endswith(".py")]
    # What ``code/`` makes importable: its modules and its packages, by top-level name.
    local_modules = {n.split("/")[0].removesuffix(".py") for n in shipped}
    required = requirement_names(inference_dir / REQUIREMENTS_FILE)
    prefix = f"{variant.name}/" if settings.several_models else ""
    for module in sorted(m for m in local_modules if m.startswith(RESERVED_MODULE_PREFIX)):
        report.add(
            "handlers",
            "error",
            f"{prefix}{module}: handler module names starting with {RESERVED_MODULE_PREFIX!r} are "
            "reserved for skdeploy's local server, which shares their import path; rename it",
        )
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
