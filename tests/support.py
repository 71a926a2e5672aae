"""Helpers shared by the tests: the repository's location and throwaway project copies."""

from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
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
