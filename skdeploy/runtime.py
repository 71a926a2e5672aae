"""The container-faithful runtime: a virtualenv per framework version that copies the container.

It has the container's Python minor version, its pinned scikit-learn/numpy/pandas/scipy and
serving pins from :mod:`skdeploy.frameworks`, and ``sagemaker-containers``, the serving library
the real container runs. The committed model is trained in it and the local endpoint serves in
it, so what works here works behind a real endpoint, and a model pickled by the wrong library
versions fails here in seconds instead of 20 minutes into an endpoint creation.

The virtualenv is cached under ``build/runtime/<framework>`` and rebuilt only when its pins
change. The pins install only on the container's Python: if no such interpreter is found (uv,
pyenv or PATH), :class:`RuntimeUnavailable` says how to get one.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from skdeploy.frameworks import Framework

_STAMP = "skdeploy-runtime.json"


class RuntimeUnavailable(RuntimeError):
    """The runtime cannot be built on this machine; the message says why and what to do."""


def _python_version(executable: Path) -> str | None:
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


def _uv() -> str:
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
            [_uv(), "python", "find", "--no-project", minor],
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
        if candidate.is_file() and _python_version(candidate) == minor:
            return candidate
    raise RuntimeUnavailable(
        f"no Python {minor} interpreter found (looked in uv, pyenv and PATH). The container's "
        f"pins only install on Python {minor}: install it with `uv python install {minor}` "
        f"or `pyenv install {minor}`, then run the command again."
    )


def runtime_dir(framework: Framework, build_dir: Path) -> Path:
    """Where the runtime virtualenv of ``framework`` lives."""
    return build_dir / "runtime" / framework.version


def runtime_python(framework: Framework, build_dir: Path) -> Path:
    """The interpreter of the runtime virtualenv (which may not be built yet)."""
    return runtime_dir(framework, build_dir) / "bin" / "python"


def _wanted_stamp(framework: Framework) -> dict[str, object]:
    return {"framework": framework.version, "requirements": framework.runtime_requirements()}


def is_current(framework: Framework, build_dir: Path) -> bool:
    """Whether the cached runtime has exactly the framework's pins."""
    stamp = runtime_dir(framework, build_dir) / _STAMP
    if not stamp.is_file() or not runtime_python(framework, build_dir).exists():
        return False
    try:
        recorded = json.loads(stamp.read_text())
    except json.JSONDecodeError:
        return False
    return bool(recorded == _wanted_stamp(framework))


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One builder at a time per runtime (tests and the CLI may race for it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_runtime(
    framework: Framework,
    build_dir: Path,
    *,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Build the runtime virtualenv if it is missing or stale; return its interpreter."""
    if not framework.local_runtime:
        raise RuntimeUnavailable(
            f"framework {framework.version} has no local runtime: {framework.refusal}. "
            "Use framework 1.2-1 or 1.4-2 to run the model locally."
        )
    target = runtime_dir(framework, build_dir)
    with _locked(target.parent / f".{framework.version}.lock"):
        if is_current(framework, build_dir):
            return runtime_python(framework, build_dir)
        python = find_python(framework.python)
        say = progress or (lambda _msg: None)
        say(
            f"building the {framework.version} runtime (Python {framework.python}, "
            f"scikit-learn {framework.scikit_learn}) in {target}; later runs reuse it"
        )
        shutil.rmtree(target, ignore_errors=True)
        uv = _uv()
        _run([uv, "venv", "--quiet", "--python", str(python), str(target)], "create the virtualenv")
        _run(
            [
                uv,
                "pip",
                "install",
                "--quiet",
                "--python",
                str(runtime_python(framework, build_dir)),
                *framework.runtime_requirements(),
            ],
            "install the container's pinned packages",
        )
        (target / _STAMP).write_text(json.dumps(_wanted_stamp(framework), indent=2))
        say(f"runtime {framework.version} ready")
        return runtime_python(framework, build_dir)


def _run(argv: list[str], what: str) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip()[-2000:]
        raise RuntimeUnavailable(f"could not {what}: {detail}")
