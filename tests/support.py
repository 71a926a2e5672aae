"""Helpers shared by the tests: the repository's location and throwaway project copies."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]
INFERENCE_PATH = REPO / "inference" / "inference.py"
STACKS = sorted(
    p.name[len("Pulumi.") : -len(".yaml")] for p in (REPO / "stacks").glob("Pulumi.*.yaml")
)


def copy_project(dest: Path) -> Path:
    """A copy of the project's program, model, handlers and stacks, to change without harm."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy2(REPO / name, dest / name)
    for folder in ("model", "inference", "stacks"):
        shutil.copytree(REPO / folder, dest / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def load_inference(name: str = "inference") -> ModuleType:
    """Import inference.py from its path, as the container does (it is not a package)."""
    spec = importlib.util.spec_from_file_location(name, INFERENCE_PATH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
