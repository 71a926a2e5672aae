"""Keys that name the project's files: directories that must exist, model files inside them."""

from __future__ import annotations

from pathlib import Path

from skdeploy.core.constants import PROGRAM
from skdeploy.core.settings._coerce import as_object
from skdeploy.core.settings._patterns import MODEL_FILE_PATTERN
from skdeploy.core.settings.errors import Problems


def relative_to_project(path: Path, project_dir: Path) -> str:
    """``path`` as a stack file spells it: relative to the project when it is inside it."""
    try:
        return str(path.relative_to(project_dir.resolve()))
    except ValueError:
        return str(path)


def directory(problems: Problems, key: str, value: object, project_dir: Path) -> Path | None:
    """The existing directory ``value`` names, relative to the project."""
    if not isinstance(value, str) or not value:
        problems.add(key, value, "must be a directory path")
        return None
    path = (project_dir / value).resolve()
    if not path.is_dir():
        problems.add(key, value, f"directory {path} does not exist")
        return None
    return path


def model_files(
    problems: Problems, value: object, model_dir: Path | None, key: str = "modelFiles"
) -> tuple[str, ...]:
    """The listed model files (each inside ``model_dir``), or its ``*.joblib`` files if none."""
    value = as_object(value)
    if value is None:
        if model_dir is None:
            return ()
        found = tuple(sorted(p.name for p in model_dir.glob("*.joblib") if p.is_file()))
        if not found:
            problems.add(key, "(default)", f"no *.joblib file in {model_dir}")
        return found
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        problems.add(key, value, "must be a non-empty list of file names")
        return ()
    names: list[str] = value
    for name in names:
        if not MODEL_FILE_PATTERN.match(name):
            problems.add(key, name, "must be a plain file name inside modelDir")
        elif model_dir is not None and not (model_dir / name).is_file():
            problems.add(key, name, f"file {model_dir / name} does not exist")
    if len(set(names)) != len(names):
        problems.add(key, value, "lists a file twice")
    return tuple(sorted(set(names)))


def handler_directory(
    problems: Problems, key: str, value: object, project_dir: Path
) -> Path | None:
    """The existing directory ``value`` names, which must hold the handler program."""
    path = directory(problems, key, value, project_dir)
    if path is not None and not (path / PROGRAM).is_file():
        problems.add(key, value, f"has no {PROGRAM}")
    return path
