"""Finding the container's Python on this machine, and the uv that builds the runtime with it.

The container's pinned packages only install on its own Python minor version, so an interpreter
is looked for where developers keep them: uv's managed Pythons, pyenv, then ``PATH``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path


class RuntimeUnavailable(RuntimeError):
    """The runtime cannot be built on this machine; the message says why and what to do."""


def python_version(executable: Path) -> str | None:
    """``major.minor`` of an interpreter, or None if it does not run."""
    try:
        result = subprocess.run(
            [str(executable), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def uv_executable() -> str:
    """The uv executable: the one installed with skdeploy, else the one on PATH."""
    beside = Path(sys.executable).with_name("uv")
    if beside.is_file():
        return str(beside)
    found = shutil.which("uv")
    if found is None:
        raise RuntimeUnavailable("uv is not installed: run `make test` or `pip install uv`")
    return found


def python_candidates(minor: str) -> Iterator[Path]:
    """Interpreters that may be Python ``minor``: uv's own, pyenv's, then PATH."""
    try:
        found = subprocess.run(
            [uv_executable(), "python", "find", "--no-project", minor],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if found.returncode == 0 and found.stdout.strip():
            yield Path(found.stdout.strip())
    except (OSError, subprocess.TimeoutExpired, RuntimeUnavailable):
        pass
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    for version_dir in sorted((pyenv_root / "versions").glob(f"{minor}.*"), reverse=True):
        yield version_dir / "bin" / f"python{minor}"
    on_path = shutil.which(f"python{minor}")
    if on_path:
        yield Path(on_path)


def find_python(minor: str) -> Path:
    """An interpreter whose version is exactly ``minor``, or :class:`RuntimeUnavailable`."""
    for candidate in python_candidates(minor):
        if candidate.is_file() and python_version(candidate) == minor:
            return candidate
    raise RuntimeUnavailable(
        f"no Python {minor} interpreter found (looked in uv, pyenv and PATH). The container's "
        f"pins only install on Python {minor}: install it with `uv python install {minor}` "
        f"or `pyenv install {minor}`, then run the command again."
    )
