"""``skdeploy serve``: the stack's endpoint on this machine, behaving like the real one, no Docker.

What runs is what runs behind a SageMaker endpoint, minus the Docker image: the stack's own
``model.tar.gz`` (built by :mod:`skdeploy.core.artifact`) extracted the way the container extracts
it, the container's environment variables (:func:`skdeploy.core.constants.container_environment`),
the container's Python and pinned packages (:mod:`skdeploy.tooling.runtime`), and its serving
library ``sagemaker-containers`` under ``gunicorn -k gevent``. In front of it, ``serve_app.py``
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
   (``serve_app.py --prepare``);
5. start gunicorn on the bound socket; each worker calls ``model_fn`` once, as it boots, and
   reports the load (time, peak RSS): a broken model stops the server in seconds with its
   traceback, where SageMaker shows failed health checks for twenty minutes;
6. once every worker has loaded the model, poll ``/ping`` until it answers 200, print where it
   listens (and write ``--ready-file``), log each request;
7. on Ctrl-C or SIGTERM, stop gunicorn's process group and remove the temporary directory.

Linux and macOS only: gunicorn does not run on Windows.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import posixpath
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import FrameType
from typing import Final, TextIO

from skdeploy.core import artifact
from skdeploy.core.constants import (
    BUILD_DIR,
    CONTAINER_MODEL_DIR,
    ENV_BASE_DIR,
    ENV_BIND_PORT,
    ENV_SUBMIT_DIRECTORY,
    ENV_TIMEOUT,
    ENV_WORKERS,
    INVOCATION_TIMEOUT_SECONDS,
    LOG_GROUP_PREFIX,
    MAX_PAYLOAD_BYTES,
    MAX_SERVERLESS_PAYLOAD_BYTES,
    REQUIREMENTS_FILE,
    container_environment,
)
from skdeploy.core.pickle.inspect import PickleInspectionError, inspect_pickle
from skdeploy.core.preflight import is_pickle_name, trusted_classes
from skdeploy.core.settings import EndpointSettings
from skdeploy.tooling import runtime
from skdeploy.tooling.common import (
    EXIT_CANNOT_RUN,
    EXIT_FAILED,
    EXIT_OK,
    add_stack_arguments,
    progress,
    stack_settings,
)

#: The script gunicorn serves (``serve_app:app``), also run as ``--prepare`` and ``--measure``.
SERVE_APP: Final = Path(__file__).resolve().parent / "_runtime" / "serve_app.py"
#: gunicorn's hooks: stop (and clean up) if ``skdeploy serve`` dies without stopping it.
GUNICORN_CONF: Final = SERVE_APP.with_name("gunicorn_conf.py")
#: What the image's ``gunicorn`` script runs. ``python -m gunicorn`` exists only from gunicorn 20.1,
#: and frameworks 0.23-1 and 1.0-1 pin 20.0.4.
GUNICORN_MAIN: Final = (
    "import sys; from gunicorn.app.wsgiapp import run; sys.argv[0] = 'gunicorn'; sys.exit(run())"
)
#: Prefix of the temporary directory; gunicorn_conf.py only ever removes one named so.
TEMP_PREFIX: Final = "skdeploy-serve-"
#: The environment variable carrying the endpoint description to ``serve_app.py`` (same name there).
CONFIG_ENV: Final = "SKDEPLOY_LOCAL_ENDPOINT"
#: The directory each worker writes its load report to (same name in ``serve_app.py``).
LOAD_REPORTS_ENV: Final = "SKDEPLOY_LOAD_REPORTS"
#: The account named in emulated error messages (moto's default account, as in the other offline
#: tools); no AWS account is involved.
LOCAL_ACCOUNT: Final = "123456789012"
#: ``/opt/ml``: the container's base directory, which ``SAGEMAKER_BASE_DIR`` replaces locally.
CONTAINER_BASE_DIR: Final = posixpath.dirname(CONTAINER_MODEL_DIR)
#: sagemaker-containers copies the submitted code to ``$SAGEMAKER_BASE_DIR/code`` and imports it
#: from there (its ``_env.code_dir``).
LIBRARY_CODE_DIR: Final = "code"
#: One line per request: method, path, status, milliseconds (gunicorn access-log atoms).
ACCESS_LOG_FORMAT: Final = "%(m)s %(U)s %(s)s %(M)sms"
#: The container's ``/ping`` must pass within 4 minutes of start by default.
DEFAULT_STARTUP_TIMEOUT: Final = 240.0
#: Seconds gunicorn gets to stop after SIGTERM before it is killed (SageMaker allows 30).
STOP_GRACE_SECONDS: Final = 15.0
#: Signals that stop the server like Ctrl-C: SageMaker's SIGTERM, and the terminal closing.
STOP_SIGNALS: Final = (signal.SIGTERM, getattr(signal, "SIGHUP", signal.SIGTERM))
#: Interpreter settings of the parent that must not leak into the container's Python.
_PARENT_ONLY_ENV: Final = ("VIRTUAL_ENV", "__PYVENV_LAUNCHER__")


class ServeError(Exception):
    """``skdeploy serve`` cannot go on; ``exit_code``: could not run (2) or failed (1)."""

    def __init__(self, exit_code: int, message: str) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class UnsafeArchiveError(ValueError):
    """A ``model.tar.gz`` member that could escape the model directory or is not a plain file."""


class _Stopped(Exception):
    """SIGTERM or SIGHUP arrived: stop as after Ctrl-C."""


@dataclass(frozen=True)
class ServeOptions:
    """How to serve: where to listen, gunicorn's settings, and the emulated endpoint's limits.

    ``serverless`` emulates a serverless endpoint (4 MB payload limit, its oversize error);
    ``max_payload_bytes`` overrides the limit either way.
    """

    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    timeout: int = INVOCATION_TIMEOUT_SECONDS
    startup_timeout: float = DEFAULT_STARTUP_TIMEOUT
    serverless: bool = False
    max_payload_bytes: int | None = None
    ready_file: Path | None = None

    @property
    def payload_limit(self) -> int:
        """Largest InvokeEndpoint body accepted, in bytes."""
        if self.max_payload_bytes is not None:
            return self.max_payload_bytes
        return MAX_SERVERLESS_PAYLOAD_BYTES if self.serverless else MAX_PAYLOAD_BYTES


# --- Artifact ------------------------------------------------------------------------------------


def _member_path(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if not name or "\\" in name or path.is_absolute() or ".." in path.parts or not path.parts:
        raise UnsafeArchiveError(f"refusing archive member {name!r}: it leaves the model directory")
    return path


def extract_artifact(archive: Path, target: Path) -> list[str]:
    """Extract ``model.tar.gz`` into ``target``, as the container does into ``/opt/ml/model``.

    Only directories and regular files are accepted, never absolute names, ``..``, links, devices
    or a member written twice: the archive is ours, but a tampered one must not write elsewhere.
    Returns the extracted file names.
    """
    target.mkdir(parents=True, exist_ok=True)
    extracted: list[str] = []
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            relative = _member_path(member.name)
            destination = target.joinpath(*relative.parts)
            if member.isdir():
                destination.mkdir(parents=True, exist_ok=True)
                continue
            if not member.isfile():
                raise UnsafeArchiveError(
                    f"refusing archive member {member.name!r}: not a regular file"
                )
            source = tar.extractfile(member)
            if source is None:  # pragma: no cover - isfile() members always have data
                raise UnsafeArchiveError(f"archive member {member.name!r} has no data")
            destination.parent.mkdir(parents=True, exist_ok=True)
            try:
                with source, destination.open("xb") as out:
                    shutil.copyfileobj(source, out)
            except FileExistsError:
                raise UnsafeArchiveError(
                    f"refusing archive member {member.name!r}: written twice"
                ) from None
            extracted.append(relative.as_posix())
    return extracted


# --- Environment ---------------------------------------------------------------------------------


def local_path(value: str, base_dir: Path) -> str:
    """Map a container path under ``/opt/ml`` to the same place under the local base directory."""
    if value == CONTAINER_BASE_DIR or value.startswith(CONTAINER_BASE_DIR + "/"):
        return str(base_dir) + value[len(CONTAINER_BASE_DIR) :]
    return value


def endpoint_description(settings: EndpointSettings, options: ServeOptions) -> dict[str, object]:
    """What ``serve_app.py`` needs to answer as SageMaker Runtime does for this endpoint."""
    return {
        "endpoint_name": settings.endpoint_name,
        "region": settings.region,
        "account": LOCAL_ACCOUNT,
        "variant": settings.serving_variant,
        "log_group": LOG_GROUP_PREFIX + settings.endpoint_name,
        "max_payload_bytes": options.payload_limit,
        "oversize_style": "validation" if options.serverless else "status",
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


# --- Process management --------------------------------------------------------------------------


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


def _url(host: str, port: int) -> str:
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
def _ignoring_stop_signals() -> Iterator[None]:
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
def _stop_signals_stop() -> Iterator[None]:
    """Turn SIGTERM/SIGHUP into :class:`_Stopped` (only the main thread can set handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _raise(signum: int, frame: FrameType | None) -> None:
        raise _Stopped

    previous = {signum: signal.signal(signum, _raise) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


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


# --- The command ---------------------------------------------------------------------------------


def _container_dirs(tmp: Path) -> tuple[Path, Path]:
    """``<tmp>/opt/ml`` and ``<tmp>/opt/ml/model``: the container's layout under ``tmp``."""
    base_dir = tmp.joinpath(*PurePosixPath(CONTAINER_BASE_DIR).parts[1:])
    model_dir = base_dir.joinpath(
        *PurePosixPath(CONTAINER_MODEL_DIR).relative_to(CONTAINER_BASE_DIR).parts
    )
    return base_dir, model_dir


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
class LoadReport:
    """One load of the model in the runtime: a gunicorn worker's, or ``serve_app.py --measure``.

    Memory is resident memory (RSS) of the loading process: ``before_bytes`` once Python and the
    serving stack (gevent, sagemaker-containers, scikit-learn) are imported, ``peak_bytes`` its
    peak (``VmHWM`` on Linux) once ``model_fn`` has returned, so the peak includes the stack.
    """

    pid: int
    model: str
    seconds: float
    before_bytes: int
    peak_bytes: int

    @classmethod
    def from_json(cls, document: Mapping[str, object]) -> LoadReport:
        """Read a report ``serve_app.py`` wrote (sizes in KiB there)."""
        return cls(
            pid=int(str(document["pid"])),
            model=str(document["model"]),
            seconds=float(str(document["seconds"])),
            before_bytes=int(str(document["before_kib"])) * 1024,
            peak_bytes=int(str(document["peak_kib"])) * 1024,
        )

    def to_json(self) -> dict[str, object]:
        """The ready file's shape."""
        return {
            "pid": self.pid,
            "model": self.model,
            "seconds": self.seconds,
            "before_bytes": self.before_bytes,
            "peak_bytes": self.peak_bytes,
        }


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
    base_dir, model_dir = _container_dirs(tmp)
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


def wait_for_loads(
    server: subprocess.Popen[bytes], reports: Path, workers: int, timeout: float
) -> list[LoadReport]:
    """Wait until each of the ``workers`` has loaded the model (one report each); fail fast.

    A worker whose load fails writes a failure report, and gunicorn then stops (its "Worker
    failed to boot"): either is the model failing to load, its traceback already on stderr.
    """
    started = time.monotonic()
    while True:
        documents = []
        for path in sorted(reports.glob("*.json")):
            with suppress(OSError, ValueError):
                documents.append(json.loads(path.read_text()))
        if any(not document.get("ok") for document in documents):
            raise ServeError(EXIT_FAILED, "the model failed to load; not serving")
        if len(documents) >= workers:
            return [LoadReport.from_json(document) for document in documents]
        code = server.poll()
        if code is not None:
            raise ServeError(
                EXIT_FAILED, f"the model server exited with status {code} before the model loaded"
            )
        if time.monotonic() - started > timeout:
            raise ServeError(
                EXIT_FAILED,
                f"model_fn did not return in every worker within {timeout:.0f} s "
                f"({len(documents)} of {workers} loaded; a load longer than the worker timeout, "
                f"{ENV_TIMEOUT}, is killed and retried, as in the container)",
            )
        time.sleep(0.1)


@dataclass
class _Served:
    """What :func:`serve` has to undo, whatever happens."""

    listener: socket.socket
    tmp: Path | None = None
    server: subprocess.Popen[bytes] | None = None
    ready_file: Path | None = None

    def clean_up(self) -> None:
        with _ignoring_stop_signals():
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
    with _stop_signals_stop():
        try:
            served.tmp = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX))
            prepared = prepare_model(settings, options, served.tmp, port=port, say=say)
            reports = served.tmp / "loads"
            reports.mkdir()
            env = {**prepared.env, LOAD_REPORTS_ENV: str(reports)}
            started = time.monotonic()
            prepare_user_code(prepared.python, env, served.tmp, options.startup_timeout)

            say(
                f"loading the model in the {settings.framework.version} runtime: model_fn, once "
                f"in each of {options.workers} worker(s)"
            )
            fd = served.listener.fileno()
            served.server = subprocess.Popen(
                gunicorn_command(
                    prepared.python,
                    options,
                    code_dir=prepared.base_dir / LIBRARY_CODE_DIR,
                    listen_fd=fd,
                ),
                env=env,
                cwd=served.tmp,
                pass_fds=(fd,),
                start_new_session=True,
            )
            served.listener.close()
            remaining = options.startup_timeout - (time.monotonic() - started)
            loads = wait_for_loads(served.server, reports, options.workers, remaining)
            remaining = options.startup_timeout - (time.monotonic() - started)
            wait_until_healthy(served.server, options.host, port, max(remaining, 1.0))
            url = _url(options.host, port)
            print(
                f"listening on {url} (endpoint {settings.endpoint_name})", file=stdout, flush=True
            )
            if options.ready_file is not None:
                artifact.write_json_atomically(
                    options.ready_file,
                    {
                        "url": url,
                        "endpoint_name": settings.endpoint_name,
                        "variant": settings.serving_variant,
                        "region": settings.region,
                        "port": port,
                        "pid": os.getpid(),
                        "server_pid": served.server.pid,
                        "base_dir": str(prepared.base_dir),
                        "loads": [load.to_json() for load in loads],
                    },
                )
                served.ready_file = options.ready_file
            say("Ctrl-C stops the server")
            code = served.server.wait()
            raise ServeError(EXIT_FAILED, f"the model server exited with status {code}")
        except (KeyboardInterrupt, _Stopped):
            say("stopping")
            return EXIT_OK
        finally:
            served.clean_up()


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        return int(raw)
    except ValueError:
        raise ServeError(EXIT_CANNOT_RUN, f"{name}={raw!r} must be a whole number") from None


def options_from_args(args: argparse.Namespace, settings: EndpointSettings) -> ServeOptions:
    """Command-line flags, then the container's environment variables, then the defaults."""
    workers = args.workers if args.workers is not None else _env_int(ENV_WORKERS, 1)
    timeout = _env_int(ENV_TIMEOUT, INVOCATION_TIMEOUT_SECONDS)
    serverless = bool(args.serverless or settings.serverless is not None)
    problems = []
    if not 0 <= args.port <= 65535:
        problems.append(f"--port {args.port} is not a port number (0 picks a free one)")
    if workers < 1:
        problems.append(f"workers must be at least 1, got {workers}")
    if timeout < 1:
        problems.append(f"{ENV_TIMEOUT} must be at least 1 second, got {timeout}")
    if args.startup_timeout <= 0:
        problems.append("--startup-timeout must be positive")
    if args.max_payload_bytes is not None and args.max_payload_bytes < 1:
        problems.append("--max-payload-bytes must be positive")
    ready = args.ready_file
    if ready is not None:  # found out now, not after a build and a model load
        # Missing folders are created when the file is written: the nearest existing one counts
        # (a dangling symlink exists for mkdir, which then fails).
        folder = next(p for p in (ready.parent, *ready.parents) if p.exists() or p.is_symlink())
        if ready.is_dir():
            problems.append(f"--ready-file {ready} is a directory")
        elif not folder.is_dir():
            problems.append(f"--ready-file {ready}: {folder} is not a directory")
        elif not os.access(folder, os.W_OK | os.X_OK):
            problems.append(f"--ready-file {ready}: {folder} is not writable")
    if problems:
        raise ServeError(EXIT_CANNOT_RUN, "; ".join(problems))
    return ServeOptions(
        host=args.host,
        port=args.port,
        workers=workers,
        timeout=timeout,
        startup_timeout=args.startup_timeout,
        serverless=serverless,
        max_payload_bytes=args.max_payload_bytes,
        ready_file=args.ready_file,
    )


def _one_variant(settings: EndpointSettings, name: str | None) -> EndpointSettings:
    """The stack narrowed to the variant to serve: ``--variant``, else the first production one."""
    if name is None and not settings.several_models:
        return settings
    try:
        narrowed = settings.only_variant(name)
    except ValueError as exc:
        raise ServeError(EXIT_CANNOT_RUN, str(exc)) from None
    names = ", ".join(v.name for v in settings.served_variants)
    progress(f"serving variant {name or settings.served_variants[0].name} (the stack has {names})")
    return narrowed


def _serve_command(args: argparse.Namespace) -> int:
    if sys.platform == "win32":
        print(
            "skdeploy: serve needs Linux or macOS (gunicorn does not run on Windows)",
            file=sys.stderr,
        )
        return EXIT_CANNOT_RUN
    settings = stack_settings(args)
    try:
        settings = _one_variant(settings, args.variant)
        framework = settings.framework
        if not framework.local_runtime:
            raise ServeError(
                EXIT_CANNOT_RUN,
                f"framework {framework.version} cannot be served locally: {framework.refusal}",
            )
        return serve(settings, options_from_args(args, settings))
    except ServeError as exc:
        print(f"skdeploy: {exc}", file=sys.stderr)
        return exc.exit_code
    except UnsafeArchiveError as exc:
        print(f"skdeploy: {exc}", file=sys.stderr)
        return EXIT_FAILED


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``skdeploy serve``."""
    parser = sub.add_parser(
        "serve",
        help="serve the stack's model locally, like the real endpoint (no Docker)",
        description=(
            "Build the stack's model.tar.gz and serve it with the container's Python, packages "
            "and serving library. Answers /ping, /invocations and the SageMaker Runtime route "
            "POST /endpoints/<name>/invocations (point boto3 at it with endpoint_url=). "
            "Exit codes: 0 stopped, 1 the model failed to load or the server died, 2 cannot run."
        ),
    )
    add_stack_arguments(parser)
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=8080,
        help="port to listen on; 0 picks a free one (default: 8080)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help=f"gunicorn workers (default: ${ENV_WORKERS}, else 1)",
    )
    parser.add_argument(
        "--startup-timeout",
        type=float,
        default=DEFAULT_STARTUP_TIMEOUT,
        help="seconds to wait for model_fn and the first healthy /ping (default: 240)",
    )
    parser.add_argument(
        "--serverless",
        action="store_true",
        help="emulate a serverless endpoint: 4 MB payload limit and its oversize error",
    )
    parser.add_argument(
        "--max-payload-bytes",
        type=int,
        default=None,
        help="override the InvokeEndpoint body limit (default: 6 MiB, serverless 4 MB)",
    )
    parser.add_argument(
        "--variant",
        default=None,
        help="the production or shadow variant to serve (default: the first production one)",
    )
    parser.add_argument(
        "--ready-file",
        type=Path,
        default=None,
        help='write {"url", "endpoint_name", "pid", ...} as JSON here once healthy',
    )
    parser.set_defaults(handler=_serve_command)
