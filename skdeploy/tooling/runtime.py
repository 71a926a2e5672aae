"""The container-faithful runtime: a virtualenv per framework version that copies the container.

It has the container's Python minor version, its pinned scikit-learn/numpy/pandas/scipy and
serving pins from :mod:`skdeploy.core.frameworks`, and ``sagemaker-containers``, the serving library
the real container runs. The committed model is trained in it and the local endpoint serves in
it, so what works here works behind a real endpoint, and a model pickled by the wrong library
versions fails here in seconds instead of 20 minutes into an endpoint creation.

The virtualenv is cached under ``build/runtime/<framework>`` and rebuilt only when its pins
change. The pins install only on the container's Python: if no such interpreter is found (uv,
pyenv or PATH: :mod:`skdeploy.tooling.interpreter`), :class:`RuntimeUnavailable` says how to get
one.

A runtime is only used once it is known to work: after installing (and making the image's own
edits, :class:`~skdeploy.core.frameworks.SourcePatch`), the serving stack is imported in it
(:data:`PROBE_MODULES`), and only then is it stamped as current, with a fingerprint of the
installed files; when they change afterwards the probe runs again. A runtime that fails
the probe raises :class:`RuntimeBroken`, which names the framework and the failing import: a
fault of the runtime, never reported as one of the user's model.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from skdeploy.core.frameworks import FRAMEWORKS, Framework, SourcePatch
from skdeploy.tooling.interpreter import RuntimeUnavailable, find_python, uv_executable

__all__ = [
    "PROBE_MODULES",
    "RuntimeBroken",
    "RuntimeUnavailable",
    "apply_patch",
    "ensure_runtime",
    "fingerprint",
    "is_current",
    "probe",
    "runtime_dir",
    "runtime_python",
]

_STAMP = "skdeploy-runtime.json"
#: Fingerprint of the installed files when the probe last passed (beside the stamp, whose content
#: stays what older skdeploy versions expect, so that they do not rebuild a runtime).
_VERIFIED = "skdeploy-runtime.verified"

#: What ``skdeploy serve`` imports in the runtime, in this order: the container's serving library,
#: the libraries a model and the handlers use, and gunicorn with its gevent worker (``-k gevent``).
PROBE_MODULES: tuple[str, ...] = (
    "sagemaker_containers.beta.framework",
    "sklearn",
    "numpy",
    "pandas",
    "scipy",
    "joblib",
    "flask",
    "gunicorn",
    "gevent",
    "gunicorn.workers.ggevent",
)

#: Runs under the runtime's Python (3.8 and up): imports each module, and on the first failure
#: prints it and the traceback as JSON on stdout and exits 1.
_PROBE_SCRIPT = """\
import importlib, json, sys, traceback
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except BaseException:
        print(json.dumps({"module": name, "traceback": traceback.format_exc()}))
        sys.exit(1)
"""

#: Lines of the probe's traceback that a :class:`RuntimeBroken` message carries.
_TRACEBACK_TAIL_LINES = 12
#: Seconds the import probe may take (a cold disk cache makes the first imports slow).
_PROBE_TIMEOUT = 300


class RuntimeBroken(RuntimeUnavailable):
    """The runtime's own serving stack does not import: the runtime is at fault, not the model.

    ``framework`` is the framework version, ``module`` the module that failed (to import, or to
    take the image's edit: ``problem`` says which) and ``detail`` the tail of its traceback or
    the reason.
    """

    def __init__(
        self,
        framework: str,
        where: Path,
        module: str,
        detail: str,
        remedy: str,
        *,
        problem: str | None = None,
    ) -> None:
        what = problem or f"`import {module}` fails in it"
        super().__init__(
            f"the local runtime for framework {framework} ({where}) is broken: {what}. This is a "
            f"fault of the runtime, not of your model or handlers: {remedy}\n{detail}"
        )
        self.framework = framework
        self.module = module
        self.detail = detail


def runtime_dir(framework: Framework, build_dir: Path) -> Path:
    """Where the runtime virtualenv of ``framework`` lives."""
    return build_dir / "runtime" / framework.version


def runtime_python(framework: Framework, build_dir: Path) -> Path:
    """The interpreter of the runtime virtualenv (which may not be built yet)."""
    return runtime_dir(framework, build_dir) / "bin" / "python"


def _wanted_stamp(framework: Framework) -> dict[str, object]:
    wanted: dict[str, object] = {
        "framework": framework.version,
        "requirements": framework.runtime_requirements(),
    }
    if framework.source_patches:  # absent otherwise, so that older stamps still match
        wanted["patches"] = [[p.module, p.old, p.new] for p in framework.source_patches]
    return wanted


def is_current(framework: Framework, build_dir: Path) -> bool:
    """Whether the cached runtime was built, and passed the probe, with the framework's pins."""
    stamp = runtime_dir(framework, build_dir) / _STAMP
    if not stamp.is_file() or not runtime_python(framework, build_dir).exists():
        return False
    try:
        recorded = json.loads(stamp.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return bool(recorded == _wanted_stamp(framework))


def _verified_unchanged(target: Path) -> bool:
    """Whether the installed files are the ones the probe last passed on."""
    try:
        return (target / _VERIFIED).read_text().strip() == fingerprint(target)
    except OSError:
        return False


def fingerprint(target: Path) -> str:
    """A digest of the runtime's installed files: names, sizes and modification times.

    Byte-code caches are left out (the runtime's Python writes them as it runs). Any other
    change, an edited, removed or added file, changes the digest.
    """
    digest = hashlib.sha256()
    for top in ("lib", "pyvenv.cfg"):
        root = target / top
        if root.is_file():
            stat = root.stat()
            digest.update(f"{top}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            for name in sorted(filenames):
                path = os.path.join(dirpath, name)
                stat = os.lstat(path)
                relative = os.path.relpath(path, target)
                digest.update(f"{relative}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    temporary.replace(path)


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
    """Build the runtime virtualenv if it is missing or stale; return its interpreter.

    Raises :class:`RuntimeUnavailable` when it cannot be built here, and :class:`RuntimeBroken`
    when it was built (now or earlier) but its serving stack does not import.
    """
    if not framework.local_runtime:
        local = ", ".join(v for v, f in FRAMEWORKS.items() if f.local_runtime)
        raise RuntimeUnavailable(
            f"framework {framework.version} has no local runtime: {framework.refusal}. "
            f"Use one of {local} to run the model locally."
        )
    target = runtime_dir(framework, build_dir)
    python = runtime_python(framework, build_dir)
    with _locked(target.parent / f".{framework.version}.lock"):
        if is_current(framework, build_dir):
            if not _verified_unchanged(target):
                probe(
                    framework,
                    python,
                    remedy=(
                        f"its files changed after it was built and checked. Remove {target} "
                        "and run the command again to rebuild it."
                    ),
                )
                _write_atomically(target / _VERIFIED, fingerprint(target))
            return python
        _build(framework, target, python, progress or (lambda _msg: None))
        return python


def _build(framework: Framework, target: Path, python: Path, say: Callable[[str], None]) -> None:
    """Create the virtualenv, install the pins, make the image's edits, probe, then stamp it."""
    interpreter = find_python(framework.python)
    say(
        f"building the {framework.version} runtime (Python {framework.python}, "
        f"scikit-learn {framework.scikit_learn}) in {target}; later runs reuse it"
    )
    shutil.rmtree(target, ignore_errors=True)
    uv = uv_executable()
    _run(
        [uv, "venv", "--quiet", "--python", str(interpreter), str(target)],
        "create the virtualenv",
    )
    _run(
        [
            uv,
            "pip",
            "install",
            "--quiet",
            "--python",
            str(python),
            *framework.runtime_requirements(),
        ],
        "install the container's pinned packages",
    )
    for patch in framework.source_patches:
        apply_patch(framework, python, patch)
    probe(
        framework,
        python,
        remedy=(
            "its pinned packages were installed but do not import together here. Nothing "
            "in your project can fix that; the framework table (skdeploy/core/frameworks.py) "
            "must, or use another framework version."
        ),
    )
    _write_atomically(target / _VERIFIED, fingerprint(target))
    _write_atomically(target / _STAMP, json.dumps(_wanted_stamp(framework), indent=2))
    say(f"runtime {framework.version} ready")


def probe(framework: Framework, python: Path, *, remedy: str) -> None:
    """Import :data:`PROBE_MODULES` in the runtime; raise :class:`RuntimeBroken` if one fails."""
    where = python.parent.parent
    try:
        result = subprocess.run(
            [str(python), "-I", "-c", _PROBE_SCRIPT, *PROBE_MODULES],
            capture_output=True,
            text=True,
            cwd=where,
            timeout=_PROBE_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise RuntimeBroken(
            framework.version,
            where,
            " ".join(PROBE_MODULES),
            f"the imports did not finish within {_PROBE_TIMEOUT} s",
            remedy,
        ) from None
    except OSError as exc:
        raise RuntimeBroken(
            framework.version, where, " ".join(PROBE_MODULES), f"{python}: {exc}", remedy
        ) from None
    if result.returncode == 0:
        return
    lines = result.stdout.strip().splitlines()
    try:
        failure = json.loads(lines[-1])
        module, trace = str(failure["module"]), str(failure["traceback"])
    except (IndexError, ValueError, KeyError, TypeError):
        module = " ".join(PROBE_MODULES)
        trace = (result.stderr or result.stdout).strip() or f"exit status {result.returncode}"
    tail = "\n".join(trace.strip().splitlines()[-_TRACEBACK_TAIL_LINES:])
    raise RuntimeBroken(framework.version, where, module, tail, remedy)


def _module_file(python: Path, module: str) -> Path:
    """The ``.py`` file of ``module`` in the runtime's site-packages (without importing it)."""
    result = subprocess.run(
        [str(python), "-I", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeUnavailable(f"{python} does not run: {result.stderr.strip()[-2000:]}")
    return Path(result.stdout.strip()).joinpath(*module.split(".")).with_suffix(".py")


def apply_patch(framework: Framework, python: Path, patch: SourcePatch) -> None:
    """Make one of the image's edits in the runtime (a new file: never the cached original).

    uv links installed files to its cache, so the file is replaced, not written in place.
    """
    path = _module_file(python, patch.module)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RuntimeBroken(
            framework.version,
            python.parent.parent,
            patch.module,
            f"cannot read {path}: {exc}",
            "the framework table names a module its pinned packages do not have.",
            problem=f"the image's edit to {patch.module} cannot be made",
        ) from None
    if patch.old not in text:
        raise RuntimeBroken(
            framework.version,
            python.parent.parent,
            patch.module,
            f"{path} has no {patch.old!r} to replace ({patch.reason})",
            "the edit does not fit the installed version; the framework table must change.",
            problem=f"the image's edit to {patch.module} cannot be made",
        )
    replacement = path.with_name(f".{path.name}.skdeploy-tmp")
    replacement.write_text(text.replace(patch.old, patch.new), encoding="utf-8")
    replacement.replace(path)


def _run(argv: list[str], what: str) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip()[-2000:]
        raise RuntimeUnavailable(f"could not {what}: {detail}")
