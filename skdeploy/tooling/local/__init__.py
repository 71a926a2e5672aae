"""``skdeploy serve``: the stack's endpoint on this machine, behaving like the real one, no Docker.

What runs is what runs behind a SageMaker endpoint, minus the Docker image: the stack's own
``model.tar.gz`` (built by :mod:`skdeploy.core.artifact`) extracted the way the container extracts
it, the container's environment variables (:func:`skdeploy.core.constants.container_environment`),
the container's Python and pinned packages (:mod:`skdeploy.tooling.runtime`), and its serving
library ``sagemaker-containers`` under ``gunicorn -k gevent``. In front of it,
``_skdeploy_serve_app.py``
copies nginx's routing and the SageMaker Runtime API, so that an unchanged boto3
``sagemaker-runtime`` client (``endpoint_url=http://127.0.0.1:PORT``) gets the answers, headers and
exceptions it gets from AWS.

Steps, each failing fast with its own exit code (0 stopped normally, 1 the model failed to load
or the server died, 2 cannot run):

1. bind the port (``--port 0`` picks a free one), so a port in use fails before any work;
2. build the artifact and the runtime virtualenv (both cached);
3. extract the artifact to ``<tmp>/opt/ml/model`` and serve with ``SAGEMAKER_BASE_DIR=<tmp>/opt/ml``
   (sagemaker-containers takes every path from it outside a container);
4. copy the code and import the user module, as the container does before gunicorn
   (``_skdeploy_serve_app.py --prepare``);
5. start gunicorn on the bound socket; each worker calls ``model_fn`` once, as it boots, and
   reports the load (time, peak RSS): a broken model stops the server in seconds with its
   traceback, where SageMaker shows failed health checks for twenty minutes;
6. once every worker has loaded the model, poll ``/ping`` until it answers 200, print where it
   listens (and write ``--ready-file``), log each request;
7. on Ctrl-C or SIGTERM, stop gunicorn's process group and remove the temporary directory.

Linux and macOS only: gunicorn does not run on Windows.

The package: :mod:`.options` (how to serve, :class:`ServeError`), :mod:`.extract` (the archive),
:mod:`.environment` (the container's variables, mapped locally), :mod:`.model` (steps 2-4),
:mod:`.loads` (each worker's load), :mod:`.process` (gunicorn, ``/ping``, stopping, signals),
:mod:`.serve` (the steps in order) and :mod:`.command` (``register``). Import from the package.
"""

from __future__ import annotations

from skdeploy.tooling.local.command import one_variant, options_from_args, register
from skdeploy.tooling.local.environment import (
    CONFIG_ENV,
    LOAD_REPORTS_ENV,
    endpoint_description,
    local_path,
    server_environment,
)
from skdeploy.tooling.local.extract import UnsafeArchiveError, extract_artifact
from skdeploy.tooling.local.loads import LoadReport, wait_for_loads
from skdeploy.tooling.local.model import (
    PreparedModel,
    install_requirements,
    prepare_model,
    prepare_user_code,
    refuse_unsafe_pickles,
)
from skdeploy.tooling.local.options import DEFAULT_STARTUP_TIMEOUT, ServeError, ServeOptions
from skdeploy.tooling.local.process import (
    GUNICORN_CONF,
    SERVE_APP,
    STOP_SIGNALS,
    bind,
    gunicorn_command,
    ping,
    stop_server,
    wait_until_healthy,
)
from skdeploy.tooling.local.serve import TEMP_PREFIX, serve

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_STARTUP_TIMEOUT",
    "GUNICORN_CONF",
    "LOAD_REPORTS_ENV",
    "SERVE_APP",
    "STOP_SIGNALS",
    "TEMP_PREFIX",
    "LoadReport",
    "PreparedModel",
    "ServeError",
    "ServeOptions",
    "UnsafeArchiveError",
    "bind",
    "endpoint_description",
    "extract_artifact",
    "gunicorn_command",
    "install_requirements",
    "local_path",
    "one_variant",
    "options_from_args",
    "ping",
    "prepare_model",
    "prepare_user_code",
    "refuse_unsafe_pickles",
    "register",
    "serve",
    "server_environment",
    "stop_server",
    "wait_for_loads",
    "wait_until_healthy",
]
