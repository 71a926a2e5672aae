"""``skdeploy serve`` of a multi-model stack: every model on one port, routed by ``TargetModel``.

Each model is served exactly as a single model is, by its own ``skdeploy serve --model NAME``
child on a free port (its own runtime process: every model's handlers are a module named
``inference``, which one interpreter could import only once). In front of them, a small router
on the public port reads the ``X-Amzn-SageMaker-Target-Model`` header that boto3's
``invoke_endpoint(TargetModel=...)`` sends and forwards the request unchanged to that model's
server. A target is the model's key under the stack's S3 prefix (``<name>-<sha256>.tar.gz``, as
the deployed endpoint knows it) or, locally only, its bare name. A missing or unknown target is
answered with a ``ValidationError`` in the service's rest-json shape, which botocore raises.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TextIO

from skdeploy.core import artifact
from skdeploy.core.constants import target_model
from skdeploy.core.settings import EndpointSettings
from skdeploy.tooling.common import EXIT_FAILED, EXIT_OK, progress
from skdeploy.tooling.local.options import ServeError, ServeOptions
from skdeploy.tooling.local.process import Stopped, bind, server_url, stop_signals_stop

#: The header boto3 sends for ``TargetModel`` (botocore's sagemaker-runtime model).
TARGET_MODEL_HEADER = "X-Amzn-SageMaker-Target-Model"
_INVOKE_PATH = re.compile(r"^/endpoints/[^/]+/invocations$")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "host", "content-length"}


@dataclass
class _Child:
    """One model's own ``skdeploy serve``: its process, its ready file, then where it listens."""

    name: str
    target: str
    process: subprocess.Popen[bytes]
    ready_file: Path
    ready: dict[str, Any] = field(default_factory=dict)


def _child_command(args_stack: str, project_dir: Path, name: str, ready: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "skdeploy",
        "serve",
        "--stack",
        args_stack,
        "--project-dir",
        str(project_dir),
        "--model",
        name,
        "--port",
        "0",
        "--ready-file",
        str(ready),
    ]


def serve_models(
    settings: EndpointSettings,
    options: ServeOptions,
    *,
    extra: tuple[str, ...] = (),
    say: Callable[[str], None] = progress,
    out: TextIO | None = None,
) -> int:
    """Serve every model of the stack on ``options.port`` until stopped (0), as :func:`serve`."""
    stdout = out if out is not None else sys.stdout
    listener = bind(options.host, options.port)
    port = int(listener.getsockname()[1])
    tmp = Path(tempfile.mkdtemp(prefix="skdeploy-serve-models-"))
    children: list[_Child] = []
    router: ThreadingHTTPServer | None = None
    with stop_signals_stop():
        try:
            for name, view in settings.model_views:
                sha = artifact.build_for_settings(view).sha256
                ready = tmp / f"{name}.json"
                command = [*_child_command(settings.stack, settings.project_dir, name, ready)]
                process = subprocess.Popen([*command, *extra])
                children.append(_Child(name, target_model(name, sha), process, ready))
            _wait_until_ready(children, options.startup_timeout)
            router = _router(listener, settings, children, options.payload_limit)
            threading.Thread(target=router.serve_forever, daemon=True).start()
            url = server_url(options.host, port)
            names = ", ".join(c.name for c in children)
            print(
                f"listening on {url} (endpoint {settings.endpoint_name}, models {names})",
                file=stdout,
                flush=True,
            )
            if options.ready_file is not None:
                first = children[0].ready
                document = {**first, "url": url, "port": port, "pid": os.getpid()}
                document["models"] = {c.target: c.ready["url"] for c in children}
                artifact.write_json_atomically(options.ready_file, document)
            say("Ctrl-C stops the server")
            while all(c.process.poll() is None for c in children):
                time.sleep(0.2)
            raise ServeError(EXIT_FAILED, "a model's server exited")
        except (KeyboardInterrupt, Stopped):
            say("stopping")
            return EXIT_OK
        finally:
            if router is not None:
                router.shutdown()
            listener.close()
            _stop(children)
            if options.ready_file is not None:
                options.ready_file.unlink(missing_ok=True)


def _wait_until_ready(children: list[_Child], timeout: float) -> None:
    """Every child's ready file written, within ``timeout``; a child that exits fails the lot."""
    deadline = time.monotonic() + timeout
    for child in children:
        while not child.ready_file.exists():
            if child.process.poll() is not None:
                raise ServeError(
                    EXIT_FAILED,
                    f"model {child.name}: its server exited with {child.process.returncode}",
                )
            if time.monotonic() > deadline:
                raise ServeError(EXIT_FAILED, f"model {child.name}: not healthy in {timeout} s")
            time.sleep(0.1)
        child.ready = json.loads(child.ready_file.read_text())


def _stop(children: list[_Child]) -> None:
    """SIGTERM each child (each stops its own gunicorn), then wait for it."""
    for child in children:
        if child.process.poll() is None:
            child.process.send_signal(signal.SIGTERM)
    for child in children:
        try:
            child.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.process.kill()
            child.process.wait()


def _router(
    listener: Any, settings: EndpointSettings, children: list[_Child], payload_limit: int
) -> ThreadingHTTPServer:
    """The HTTP server on the bound socket, forwarding by target model."""
    ports: dict[str, int] = {}
    for child in children:
        ports[child.target] = ports[child.name] = int(child.ready["port"])
    handler = type(
        "Router",
        (_RouterHandler,),
        {
            "ports": ports,
            "default_port": int(children[0].ready["port"]),
            "settings": settings,
            "payload_limit": payload_limit,
        },
    )
    server = ThreadingHTTPServer(listener.getsockname()[:2], handler, bind_and_activate=False)
    server.socket.close()
    server.socket = listener
    return server


class _RouterHandler(BaseHTTPRequestHandler):
    """Forwards each request to the chosen model's server; answers a bad target itself."""

    ports: Mapping[str, int]
    default_port: int
    settings: EndpointSettings
    payload_limit: int
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._forward(self.default_port)

    def do_POST(self) -> None:
        if not _INVOKE_PATH.match(self.path.split("?")[0]):
            self._forward(self.default_port)
            return
        target = self.headers.get(TARGET_MODEL_HEADER)
        if target is None:
            self._validation_error(
                "TargetModel is required: this is a multi-model endpoint (models "
                + ", ".join(sorted(t for t in self.ports if t.endswith(".tar.gz")))
                + ")"
            )
        elif target not in self.ports:
            self._validation_error(
                f"Model {target} is not a model of endpoint {self.settings.endpoint_name}; "
                "it serves " + ", ".join(sorted(t for t in self.ports if t.endswith(".tar.gz")))
            )
        else:
            self._forward(self.ports[target])

    def _declared_length(self) -> int:
        """The body's declared size (0 without one; a malformed one is over any limit)."""
        raw = (self.headers.get("Content-Length") or "0").strip()
        return int(raw) if raw.isdigit() else self.payload_limit + 1

    def _body(self) -> bytes:
        """The body, read only when its declared size is within the limit."""
        length = self._declared_length()
        if length > self.payload_limit:
            self.close_connection = True  # its body is never read, so the connection cannot go on
            return b""
        return self.rfile.read(length) if length else b""

    def _forward(self, port: int) -> None:
        """Relay to the model's server. A declared size over the limit goes with its headers only:
        the server answers its 413 from them, as nginx does, and the body is never read here."""
        body = self._body()
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        try:
            connection.putrequest(self.command, self.path, skip_accept_encoding=True)
            for key, value in headers.items():
                connection.putheader(key, value)
            declared = self._declared_length()
            connection.putheader("Content-Length", str(len(body) if body else declared))
            connection.endheaders(body or None)
            response = connection.getresponse()
            answer = response.read()
            self.send_response(response.status, response.reason)
            for key, value in response.getheaders():
                if key.lower() not in _HOP_BY_HOP:
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)
        finally:
            connection.close()

    def _validation_error(self, message: str) -> None:
        """The service's rest-json error, as ``_skdeploy_serve_runtime.service_error`` writes it."""
        self._body()
        answer = json.dumps({"message": message}).encode("utf-8")
        self.send_response(400, "Bad Request")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        self.send_header("x-amzn-ErrorType", "ValidationError")
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        """Each child logs its own requests; the router stays quiet."""
