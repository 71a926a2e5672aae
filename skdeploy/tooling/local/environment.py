"""The runtime processes' environment: the Model resource's variables, mapped under a local
base directory.
"""

from __future__ import annotations

import json
import os
import posixpath
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Final

from skdeploy.core.constants import (
    CONTAINER_MODEL_DIR,
    ENV_BASE_DIR,
    ENV_BIND_PORT,
    ENV_TIMEOUT,
    ENV_WORKERS,
    LOG_GROUP_PREFIX,
    container_environment,
)
from skdeploy.core.settings import EndpointSettings
from skdeploy.tooling.local.options import ServeOptions

#: The environment variable carrying the endpoint description to ``_skdeploy_serve_app.py`` (same
#: name there).
CONFIG_ENV: Final = "SKDEPLOY_LOCAL_ENDPOINT"
#: The directory each worker writes its load report to (same name in ``_skdeploy_serve_app.py``).
LOAD_REPORTS_ENV: Final = "SKDEPLOY_LOAD_REPORTS"
#: The account named in emulated error messages (moto's default account, as in the other offline
#: tools); no AWS account is involved.
LOCAL_ACCOUNT: Final = "123456789012"
#: ``/opt/ml``: the container's base directory, which ``SAGEMAKER_BASE_DIR`` replaces locally.
CONTAINER_BASE_DIR: Final = posixpath.dirname(CONTAINER_MODEL_DIR)
#: sagemaker-containers copies the submitted code to ``$SAGEMAKER_BASE_DIR/code`` and imports it
#: from there (its ``_env.code_dir``).
LIBRARY_CODE_DIR: Final = "code"
#: Interpreter settings of the parent that must not leak into the container's Python.
_PARENT_ONLY_ENV: Final = ("VIRTUAL_ENV", "__PYVENV_LAUNCHER__")


def local_path(value: str, base_dir: Path) -> str:
    """Map a container path under ``/opt/ml`` to the same place under the local base directory."""
    if value == CONTAINER_BASE_DIR or value.startswith(CONTAINER_BASE_DIR + "/"):
        return str(base_dir) + value[len(CONTAINER_BASE_DIR) :]
    return value


def endpoint_description(settings: EndpointSettings, options: ServeOptions) -> dict[str, object]:
    """What ``_skdeploy_serve_app.py`` needs to answer as SageMaker Runtime does for this one."""
    return {
        "endpoint_name": settings.endpoint_name,
        "region": settings.region,
        "account": LOCAL_ACCOUNT,
        "variant": settings.serving_variant,
        "log_group": LOG_GROUP_PREFIX + settings.endpoint_name,
        "max_payload_bytes": options.payload_limit,
        "oversize_style": "validation" if options.serverless else "status",
        "s3_dir": None if options.s3_dir is None else str(options.s3_dir.resolve()),
        "async": _async_description(settings),
    }


def _async_description(settings: EndpointSettings) -> dict[str, str | None] | None:
    """The stack's asynchronous inference paths, for InvokeEndpointAsync (None: not async)."""
    asynchronous = settings.async_inference
    if asynchronous is None:
        return None
    return {
        "input_path": asynchronous.input_path,
        "output_path": asynchronous.output_path,
        "failure_path": asynchronous.failure_path,
    }


def server_environment(
    settings: EndpointSettings,
    options: ServeOptions,
    *,
    base_dir: Path,
    port: int,
    temp_dir: Path | None = None,
    extra_path: Path | None = None,
    parent: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of the runtime processes: the Model resource's variables, mapped locally.

    The parent's environment is kept (so ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT`` and friends set
    in the shell reach the server, as they would when set on the Model), except the parent
    interpreter's own ``PYTHON*``/virtualenv settings.
    """
    source = os.environ if parent is None else parent
    env = {
        key: value
        for key, value in source.items()
        if not key.startswith("PYTHON") and key not in _PARENT_ONLY_ENV
    }
    for key, value in container_environment(settings.region, settings.handler_environment).items():
        env[key] = local_path(value, base_dir)
    description = endpoint_description(settings, options)
    if temp_dir is not None:
        description["temp_dir"] = str(temp_dir)
    env.update(
        {
            ENV_BASE_DIR: str(base_dir),
            ENV_BIND_PORT: str(port),
            ENV_WORKERS: str(options.workers),
            ENV_TIMEOUT: str(options.timeout),
            # The container image sets both.
            "PYTHONUNBUFFERED": "TRUE",
            "PYTHONDONTWRITEBYTECODE": "TRUE",
            CONFIG_ENV: json.dumps(description),
        }
    )
    if extra_path is not None:
        env["PYTHONPATH"] = str(extra_path)
    return env


def container_dirs(tmp: Path) -> tuple[Path, Path]:
    """``<tmp>/opt/ml`` and ``<tmp>/opt/ml/model``: the container's layout under ``tmp``."""
    base_dir = tmp.joinpath(*PurePosixPath(CONTAINER_BASE_DIR).parts[1:])
    model_dir = base_dir.joinpath(
        *PurePosixPath(CONTAINER_MODEL_DIR).relative_to(CONTAINER_BASE_DIR).parts
    )
    return base_dir, model_dir
