"""Serving the stack's model until stopped: prepare, start gunicorn, wait for the loads and
``/ping``, clean up whatever happens.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TextIO

from skdeploy.core import artifact
from skdeploy.core.settings import EndpointSettings
from skdeploy.tooling.common import EXIT_FAILED, EXIT_OK, progress
from skdeploy.tooling.local.environment import LIBRARY_CODE_DIR, LOAD_REPORTS_ENV
from skdeploy.tooling.local.loads import LoadReport, wait_for_loads
from skdeploy.tooling.local.model import PreparedModel, prepare_model, prepare_user_code
from skdeploy.tooling.local.options import ServeError, ServeOptions
from skdeploy.tooling.local.process import (
    Stopped,
    bind,
    gunicorn_command,
    ignoring_stop_signals,
    server_url,
    stop_server,
    stop_signals_stop,
    wait_until_healthy,
)

#: Prefix of the temporary directory; _skdeploy_gunicorn_conf.py only ever removes one named so.
TEMP_PREFIX: Final = "skdeploy-serve-"


@dataclass
class _Served:
    """What :func:`serve` has to undo, whatever happens."""

    listener: socket.socket
    tmp: Path | None = None
    server: subprocess.Popen[bytes] | None = None
    ready_file: Path | None = None

    def clean_up(self) -> None:
        with ignoring_stop_signals():
            self.listener.close()
            if self.server is not None:
                stop_server(self.server)
            if self.ready_file is not None:
                self.ready_file.unlink(missing_ok=True)
            if self.tmp is not None:
                shutil.rmtree(self.tmp, ignore_errors=True)


def serve(
    settings: EndpointSettings,
    options: ServeOptions,
    *,
    say: Callable[[str], None] = progress,
    out: TextIO | None = None,
) -> int:
    """Serve the stack's model until stopped; return 0 once stopped by Ctrl-C or SIGTERM.

    Each gunicorn worker loads the model once, when it boots; the server counts as started
    once every worker has loaded it and ``/ping`` answers 200. Raises :class:`ServeError` when
    it cannot run (2) or the model or server fails (1), and lets
    :class:`~skdeploy.tooling.runtime.RuntimeUnavailable` and
    :class:`~skdeploy.core.artifact.ArtifactError` through for the command line to report.
    """
    stdout = out if out is not None else sys.stdout
    served = _Served(bind(options.host, options.port))
    port = int(served.listener.getsockname()[1])
    with stop_signals_stop():
        try:
            served.tmp = tmp = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX))
            prepared = prepare_model(settings, options, tmp, port=port, say=say)
            server, loads = _start(served, tmp, prepared, settings, options, say)
            url = server_url(options.host, port)
            print(
                f"listening on {url} (endpoint {settings.endpoint_name})", file=stdout, flush=True
            )
            if options.ready_file is not None:
                ready = _ready_document(settings, url, port, server, prepared, loads)
                artifact.write_json_atomically(options.ready_file, ready)
                served.ready_file = options.ready_file
            say("Ctrl-C stops the server")
            code = server.wait()
            raise ServeError(EXIT_FAILED, f"the model server exited with status {code}")
        except (KeyboardInterrupt, Stopped):
            say("stopping")
            return EXIT_OK
        finally:
            served.clean_up()


def _start(
    served: _Served,
    tmp: Path,
    prepared: PreparedModel,
    settings: EndpointSettings,
    options: ServeOptions,
    say: Callable[[str], None],
) -> tuple[subprocess.Popen[bytes], list[LoadReport]]:
    """Import the user module, start gunicorn on the bound socket, and wait until every worker
    has loaded the model and ``/ping`` answers 200, all within ``--startup-timeout``."""
    reports = tmp / "loads"
    reports.mkdir()
    env = {**prepared.env, LOAD_REPORTS_ENV: str(reports)}
    started = time.monotonic()
    prepare_user_code(prepared.python, env, tmp, options.startup_timeout)

    say(
        f"loading the model in the {settings.framework.version} runtime: model_fn, once "
        f"in each of {options.workers} worker(s)"
    )
    fd = served.listener.fileno()
    port = int(served.listener.getsockname()[1])
    served.server = server = subprocess.Popen(
        gunicorn_command(
            prepared.python, options, code_dir=prepared.base_dir / LIBRARY_CODE_DIR, listen_fd=fd
        ),
        env=env,
        cwd=tmp,
        pass_fds=(fd,),
        start_new_session=True,
    )
    served.listener.close()
    remaining = options.startup_timeout - (time.monotonic() - started)
    loads = wait_for_loads(server, reports, options.workers, remaining)
    remaining = options.startup_timeout - (time.monotonic() - started)
    wait_until_healthy(server, options.host, port, max(remaining, 1.0))
    return server, loads


def _ready_document(
    settings: EndpointSettings,
    url: str,
    port: int,
    server: subprocess.Popen[bytes],
    prepared: PreparedModel,
    loads: list[LoadReport],
) -> dict[str, object]:
    """What ``--ready-file`` holds once the server is healthy."""
    return {
        "url": url,
        "endpoint_name": settings.endpoint_name,
        "variant": settings.serving_variant,
        "region": settings.region,
        "port": port,
        "pid": os.getpid(),
        "server_pid": server.pid,
        "base_dir": str(prepared.base_dir),
        "loads": [load.to_json() for load in loads],
    }
