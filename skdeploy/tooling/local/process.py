"""The gunicorn server process: its command line, the bound socket, ``/ping``, stopping, and
the signals that stop it.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import FrameType
from typing import Final

from skdeploy.tooling.common import EXIT_CANNOT_RUN, EXIT_FAILED
from skdeploy.tooling.local.options import ServeError, ServeOptions

#: The script gunicorn serves (``_skdeploy_serve_app:app``), also run as ``--prepare`` and
#: ``--measure``.
SERVE_APP: Final = Path(__file__).resolve().parents[1] / "_runtime" / "_skdeploy_serve_app.py"
#: gunicorn's hooks: stop (and clean up) if ``skdeploy serve`` dies without stopping it.
GUNICORN_CONF: Final = SERVE_APP.with_name("_skdeploy_gunicorn_conf.py")
#: What the image's ``gunicorn`` script runs. ``python -m gunicorn`` exists only from gunicorn 20.1,
#: and frameworks 0.23-1 and 1.0-1 pin 20.0.4.
GUNICORN_MAIN: Final = (
    "import sys; from gunicorn.app.wsgiapp import run; sys.argv[0] = 'gunicorn'; sys.exit(run())"
)
#: One line per request: method, path, status, milliseconds (gunicorn access-log atoms).
ACCESS_LOG_FORMAT: Final = "%(m)s %(U)s %(s)s %(M)sms"
#: Seconds gunicorn gets to stop after SIGTERM before it is killed (SageMaker allows 30).
STOP_GRACE_SECONDS: Final = 15.0
#: Signals that stop the server like Ctrl-C: SageMaker's SIGTERM, and the terminal closing.
STOP_SIGNALS: Final = (signal.SIGTERM, getattr(signal, "SIGHUP", signal.SIGTERM))


class Stopped(Exception):
    """SIGTERM or SIGHUP arrived: stop as after Ctrl-C."""


def gunicorn_command(
    python: Path, options: ServeOptions, *, code_dir: Path, listen_fd: int
) -> list[str]:
    """gunicorn as ``sagemaker_containers._server.start`` runs it, on an already bound socket."""
    return [
        str(python),
        "-c",
        GUNICORN_MAIN,
        "-c",
        str(GUNICORN_CONF),
        "--timeout",
        str(options.timeout),
        "-k",
        "gevent",
        "--pythonpath",
        f"{code_dir},{SERVE_APP.parent}",
        "-b",
        f"fd://{listen_fd}",
        "--worker-connections",
        str(1000 * options.workers),
        "-w",
        str(options.workers),
        "--log-level",
        "info",
        "--access-logfile",
        "-",
        "--access-logformat",
        ACCESS_LOG_FORMAT,
        f"{SERVE_APP.stem}:app",
    ]


def bind(host: str, port: int) -> socket.socket:
    """Listen on ``host:port`` now, so that a port in use fails before anything is built."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise ServeError(EXIT_CANNOT_RUN, f"cannot listen on {host!r}: {exc.strerror}") from None
    listener = socket.socket(family, kind, proto)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
        listener.listen(2048)
    except OSError as exc:
        listener.close()
        raise ServeError(
            EXIT_CANNOT_RUN, f"cannot listen on {host}:{port}: {exc.strerror or exc}"
        ) from None
    return listener


def server_url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def _probe_host(host: str) -> str:
    """Where to reach a server bound to ``host`` (a wildcard address is reached on loopback)."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)  # noqa: S104  # nosec B104 - maps a wildcard to loopback; binds nothing


def ping(host: str, port: int, *, timeout: float = 2.0) -> int:
    """Status of ``GET /ping`` (SageMaker gives each health check 2 s)."""
    connection = http.client.HTTPConnection(_probe_host(host), port, timeout=timeout)
    try:
        connection.request("GET", "/ping")
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def wait_until_healthy(
    server: subprocess.Popen[bytes], host: str, port: int, timeout: float
) -> float:
    """Poll ``/ping`` until it answers 200; fail if the server exits or the time runs out."""
    started = time.monotonic()
    last = "no answer yet"
    while True:
        code = server.poll()
        if code is not None:
            raise ServeError(
                EXIT_FAILED, f"the model server exited with status {code} before it was healthy"
            )
        try:
            status = ping(host, port)
        except OSError as exc:
            last = str(exc)
        else:
            if status == 200:
                return time.monotonic() - started
            last = f"/ping answered {status}"
        if time.monotonic() - started > timeout:
            raise ServeError(
                EXIT_FAILED, f"/ping did not answer 200 within {timeout:.0f} s ({last})"
            )
        time.sleep(0.1)


def stop_server(server: subprocess.Popen[bytes]) -> None:
    """SIGTERM to gunicorn's process group (as SageMaker does), SIGKILL if it lingers."""
    if server.poll() is not None:
        return
    with suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        server.wait()


@contextmanager
def ignoring_stop_signals() -> Iterator[None]:
    """Let clean-up finish: a second Ctrl-C or SIGTERM must not leave gunicorn behind."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {
        signum: signal.signal(signum, signal.SIG_IGN) for signum in (*STOP_SIGNALS, signal.SIGINT)
    }
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextmanager
def stop_signals_stop() -> Iterator[None]:
    """Turn SIGTERM/SIGHUP into :class:`Stopped` (only the main thread can set handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _raise(signum: int, frame: FrameType | None) -> None:
        raise Stopped

    previous = {signum: signal.signal(signum, _raise) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
