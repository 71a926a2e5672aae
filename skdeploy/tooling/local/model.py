"""Preparing the model for the runtime: build, inspect the pickles, extract, install the
requirements, import the user module.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from skdeploy.core import artifact
from skdeploy.core.constants import (
    BUILD_DIR,
    ENV_SUBMIT_DIRECTORY,
    REQUIREMENTS_FILE,
    container_environment,
)
from skdeploy.core.pickle.inspect import PickleInspectionError, inspect_pickle
from skdeploy.core.preflight import is_pickle_name, trusted_classes
from skdeploy.core.settings import EndpointSettings
from skdeploy.tooling import runtime
from skdeploy.tooling.common import EXIT_CANNOT_RUN, EXIT_FAILED, progress
from skdeploy.tooling.local.environment import container_dirs, local_path, server_environment
from skdeploy.tooling.local.extract import extract_artifact
from skdeploy.tooling.local.options import ServeError, ServeOptions
from skdeploy.tooling.local.process import SERVE_APP


def install_requirements(
    python: Path, requirements: Path, target: Path, say: Callable[[str], None]
) -> None:
    """Install ``code/requirements.txt`` into ``target`` (the container pip-installs it at start).

    A separate target directory, put on ``PYTHONPATH``, keeps the shared runtime virtualenv as
    the container image has it.
    """
    say(f"installing {requirements.name} into {target} (the container does this at every start)")
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if uv is None:
        raise ServeError(EXIT_CANNOT_RUN, f"uv is needed to install {requirements}")
    result = subprocess.run(
        [
            uv,
            "pip",
            "install",
            "--quiet",
            "--python",
            str(python),
            "--target",
            str(target),
            "-r",
            str(requirements),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise ServeError(
            EXIT_FAILED,
            f"installing {requirements} failed: {(result.stderr or result.stdout).strip()}",
        )


def refuse_unsafe_pickles(settings: EndpointSettings) -> None:
    """Inspect the model files before the runtime unpickles them on this machine.

    Serving runs ``model_fn`` (``joblib.load``) here: a pickle that imports ``os.system`` would
    run it on the developer's machine. The allow-list and the inspector's limits are enforced;
    version findings are left to ``skdeploy check`` (serving is how one sees what a skewed
    pickle does). The gate fails closed: a pickle-named file the inspector cannot read (or can
    only read past a limit) is not loaded either, since what it would do is unknown. Other
    files (a handler's own data) are left to the handlers, as ``check`` says.
    """
    unsafe: list[str] = []
    for variant in settings.served_variants:
        trusted, problems = trusted_classes(settings, variant.inference_dir)
        unsafe.extend(problems)
        for name in variant.model_files:
            try:
                refused = inspect_pickle(
                    variant.model_dir / name, limits=settings.pickle_limits, trusted=trusted.classes
                ).refused
            except PickleInspectionError as exc:
                if is_pickle_name(name):
                    unsafe.append(f"{name}: cannot be inspected, so it is not loaded: {exc}")
                continue
            unsafe.extend(f"{name}: {message}" for message in refused)
    if unsafe:
        raise ServeError(EXIT_FAILED, "not loading the model: " + "; ".join(unsafe))


@dataclass(frozen=True)
class PreparedModel:
    """A stack's artifact extracted as the container has it, and how to run the runtime on it."""

    python: Path
    env: dict[str, str]
    base_dir: Path


def prepare_model(
    settings: EndpointSettings,
    options: ServeOptions,
    tmp: Path,
    *,
    port: int,
    say: Callable[[str], None] = progress,
) -> PreparedModel:
    """Everything before the runtime loads the model, under ``tmp`` (``<tmp>/opt/ml``).

    Build the artifact (the builder refuses files outside the project before anything reads
    them), inspect the model files (nothing is unpickled that the inspector refuses), get the
    runtime, extract the artifact as the container does, install ``requirements.txt`` as the
    container does at start, and set the container's environment.
    """
    built = artifact.build_for_settings(settings, progress=say)
    refuse_unsafe_pickles(settings)
    python = runtime.ensure_runtime(
        settings.framework, settings.project_dir / BUILD_DIR, progress=say
    )
    base_dir, model_dir = container_dirs(tmp)
    extract_artifact(built.path, model_dir)
    submit_dir = Path(
        local_path(container_environment(settings.region)[ENV_SUBMIT_DIRECTORY], base_dir)
    )
    extra_path: Path | None = None
    if (submit_dir / REQUIREMENTS_FILE).is_file():
        extra_path = tmp / "requirements"
        install_requirements(python, submit_dir / REQUIREMENTS_FILE, extra_path, say)
    env = server_environment(
        settings, options, base_dir=base_dir, port=port, temp_dir=tmp, extra_path=extra_path
    )
    return PreparedModel(python, env, base_dir)


def prepare_user_code(python: Path, env: Mapping[str, str], cwd: Path, timeout: float) -> None:
    """Copy the code and import the user module, as the container does before gunicorn starts.

    An import error fails here, with its traceback on stderr; ``model_fn`` runs in the workers.
    """
    try:
        prepared = subprocess.run(
            [str(python), str(SERVE_APP), "--prepare"],
            env=env,
            cwd=cwd,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ServeError(
            EXIT_FAILED, f"the user module did not import within {timeout:.0f} s"
        ) from None
    if prepared.returncode != 0:
        raise ServeError(EXIT_FAILED, "the model failed to load (its module does not import)")
