"""The server side of ``skdeploy serve``: what runs behind a SageMaker scikit-learn endpoint.

This file runs INSIDE the runtime virtualenv (the container's Python and its pinned packages),
never in skdeploy's own interpreter: it must not import skdeploy and keeps to Python 3.9 syntax.
``skdeploy.tooling.local`` starts it and passes everything it needs through environment variables:
the container's own (``SAGEMAKER_*``, with ``SAGEMAKER_BASE_DIR`` pointing at a temporary
``opt/ml``) and one JSON document in ``SKDEPLOY_LOCAL_ENDPOINT`` describing the emulated endpoint.

Three layers, outermost first, each copying one real component:

1. **SageMaker Runtime** (``POST /endpoints/<name>/invocations``, what boto3's
   ``sagemaker-runtime`` client calls): unknown endpoint names, oversize bodies and container
   errors are answered with the service's error shapes, so that botocore raises the same
   exceptions (``ValidationError``, ``ModelError`` with ``OriginalStatusCode``...) as against AWS.
   ``/endpoints/<name>/invocations-response-stream`` (InvokeEndpointWithResponseStream) is a
   ``ValidationError`` saying the scikit-learn container does not stream.
   ``/endpoints/<name>/async-invocations`` (InvokeEndpointAsync) reads its input from and writes
   its result to a local folder standing for S3 (``_skdeploy_serve_async.py``).
2. **nginx** (``sagemaker_containers/etc/nginx.conf.template``): only paths matching
   ``^/(ping|invocations|execution-parameters)`` reach the model server; anything else is a 404
   with the body ``{}``. Two deliberate differences, because here these paths are reachable
   directly rather than only through SageMaker Runtime: a body over the endpoint's payload limit
   (the one layer 1 enforces) is refused with a 413 JSON error before it is read, where the real
   nginx has no limit (``client_max_body_size 0``) but never receives more than SageMaker Runtime
   forwards; and Flask's HTML 404/405 pages (a path under those prefixes that the container does
   not route, a wrong method) are answered as JSON errors.
3. **The container's serving module** (``sagemaker_sklearn_container/serving.py``, which is not
   on PyPI, so its behaviour is reproduced here on top of the library it wraps,
   ``sagemaker_containers.beta.framework``): the user module is imported and ``model_fn``
   called lazily, on the first request each gunicorn worker receives; handlers are resolved with
   ``getattr(user_module, name, default)``; ``transform_fn`` may not be combined with the other
   three (``UserError``); the library's ``transformer.Transformer`` and ``worker.Worker`` do
   the rest, including their quirks (every handler error becomes a 500).

Layer 2 and the start-up are in this file; layer 1 is ``_skdeploy_serve_runtime.py`` (and
``_skdeploy_serve_async.py``) and layer
3 ``_skdeploy_serve_container.py``, beside it. They are imported by those names, which no user
module is likely to have: this directory comes after the user's code directory on ``sys.path``
(gunicorn's ``--pythonpath``), and a user module named like a sibling would replace it.

Run by gunicorn, the WSGI callable is :func:`app`. One deliberate difference from the container:
each worker loads the model when it boots (:func:`load_in_worker`, called by
_skdeploy_gunicorn_conf.py's
``post_worker_init``), not on its first request, and exactly once. The container's lazy load
has no guard: in a gevent worker, a request that arrives while ``model_fn`` waits on anything
gevent patches (a socket, a subprocess, a sleep) starts a second load of its own. The load still
counts against gunicorn's ``--timeout``, as it does in the container; a model that fails to load
stops the server at once (gunicorn's "Worker failed to boot") with its traceback, where SageMaker
fails health checks for twenty minutes. Each worker writes a load report (seconds, peak RSS) for
``skdeploy serve`` to show.

Two more modes, run with the runtime's Python outside gunicorn:

- ``python _skdeploy_serve_app.py --prepare``: what ``server.start`` does before it starts
  gunicorn: copy the code into the code directory and import the user module (so an import error
  fails here);
- ``python _skdeploy_serve_app.py --measure REPORT``: load the model as a worker does (gevent
  patched, the
  serving stack and scikit-learn imported, then the user module imported and ``model_fn`` called
  through the library's Transformer) and write the process's RSS before the load and its peak
  after it (:func:`peak_rss_kib`) to ``REPORT`` as JSON: what ``skdeploy check`` compares with
  the endpoint's memory.
"""

import importlib
import io
import json
import logging
import os
import re
import resource
import sys
import time
import traceback
from urllib.parse import unquote

from _skdeploy_serve_async import ASYNC_ROUTE, invoke_endpoint_async
from _skdeploy_serve_container import container_app, framework, model_type, worker_app
from _skdeploy_serve_runtime import (
    RUNTIME_ROUTE,
    STREAM_ROUTE,
    header,
    invoke_endpoint,
    payload_limit,
    read_body,
    refuse_stream,
)

# The container's serving.py configures logging at import, before the library does.
logging.basicConfig(format="%(asctime)s %(levelname)s - %(name)s - %(message)s", level=logging.INFO)

#: The directory each worker writes its load report to (``<pid>.json``); set by
#: skdeploy.tooling.local.
LOAD_REPORTS_ENV = "SKDEPLOY_LOAD_REPORTS"

#: nginx's ``location ~ ^/(ping|invocations|execution-parameters)``: a prefix match, as nginx does.
FORWARDED_PATHS = re.compile(r"^/(ping|invocations|execution-parameters)")


# --- Layer 2: nginx ------------------------------------------------------------------------------


def app(environ, start_response):
    """What listens on the port: the runtime route, nginx's allowed paths, else nginx's 404."""
    path = environ.get("PATH_INFO", "")
    if FORWARDED_PATHS.match(path):
        return container_route(environ, start_response)
    route = RUNTIME_ROUTE.match(path)
    if route and environ.get("REQUEST_METHOD") == "POST":
        return invoke_endpoint(environ, start_response, unquote(route.group(1)))
    stream = STREAM_ROUTE.match(path)
    if stream and environ.get("REQUEST_METHOD") == "POST":
        return refuse_stream(start_response, unquote(stream.group(1)))
    queued = ASYNC_ROUTE.match(path)
    if queued and environ.get("REQUEST_METHOD") == "POST":
        return invoke_endpoint_async(environ, start_response, unquote(queued.group(1)))
    start_response(
        "404 Not Found", [("Content-Type", "application/octet-stream"), ("Content-Length", "2")]
    )
    return [b"{}"]


def container_route(environ, start_response):
    """A request nginx forwards: the payload limit first, then the container, with JSON errors.

    A Content-Length over the limit is answered at once, without reading the body. A body
    without one (chunked) is read here, and refused as soon as it passes the limit. gunicorn
    discards whatever the client still sends before it reads the next request on the
    connection, for at most its keep-alive timeout, which is what lets a client that sends the
    whole body before reading (most do) still get the 413.
    """
    limit = payload_limit()
    length = environ.get("CONTENT_LENGTH") or ""
    if length.isdigit() and int(length) > limit:
        return _too_large(start_response, limit)
    if not length and "HTTP_TRANSFER_ENCODING" in environ:
        body = read_body(environ, limit)
        if body is None:
            return _too_large(start_response, limit)
        environ = dict(environ)
        del environ["HTTP_TRANSFER_ENCODING"]
        environ.update({"CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body)})
    replaced = []

    def json_errors(status, headers, exc_info=None):
        # Flask's routing errors are HTML pages; any other answer passes through unchanged.
        content_type = header(headers, "Content-Type") or ""
        if status[:3] in ("404", "405") and content_type.startswith("text/html"):
            body, headers = _routing_error(environ, status, header(headers, "Allow"))
            replaced.append(body)
        return start_response(status, headers, exc_info)

    result = container_app(environ, json_errors)
    if not replaced:
        return result
    close = getattr(result, "close", None)
    if close is not None:
        close()
    return replaced


def _routing_error(environ, status, allow):
    """The JSON body and headers for a path the container does not serve or a wrong method."""
    method = environ.get("REQUEST_METHOD", "")
    path = environ.get("PATH_INFO", "")
    if status.startswith("405"):
        message = f"{method} is not allowed on {path}; allowed: {allow or 'none'}"
    else:
        message = (
            f"no route for {method} {path}; the container serves GET /ping, "
            "POST /invocations and GET /execution-parameters"
        )
    body = json.dumps({"error": message}).encode("utf-8")
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    if allow:
        headers.append(("Allow", allow))
    return body, headers


def _too_large(start_response, limit):
    """The 413 for a body over the payload limit on the container's own route."""
    body = json.dumps(
        {"error": f"the request body is larger than {limit} bytes (the endpoint's payload limit)"}
    ).encode("utf-8")
    start_response(
        "413 Request Entity Too Large",
        [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
    )
    return [body]


# --- Start-up, loading and measuring ------------------------------------------------------------

LOAD_FAILED = (
    "skdeploy: the model failed to load in the container runtime (import of the user module or "
    "model_fn raised, see above); behind a real endpoint this fails the health checks and the "
    "endpoint goes to Failed after many minutes\n"
)


def prepare_code():
    """Copy the submitted code into the code directory, as ``server.start`` does before gunicorn.

    The container then pip-installs it as a package; here it is put on ``sys.path`` instead (and
    gunicorn gets it with ``--pythonpath``), so the shared runtime virtualenv is never modified.
    """
    library = framework()
    serving_env = library.env.ServingEnv()
    code_dir = library.env.code_dir
    library.files.download_and_extract(serving_env.module_dir, code_dir)
    if code_dir not in sys.path:
        sys.path.insert(0, code_dir)
    return serving_env.module_name


def import_serving_stack():
    """What a worker holds before model_fn: sagemaker-containers (Flask, ...) and scikit-learn."""
    import sklearn  # noqa: F401 - the user module imports it, or joblib.load does

    framework()


def peak_rss_kib():
    """This process's peak resident memory so far, in KiB.

    Linux: ``VmHWM`` of ``/proc/self/status``, the high-water mark of this program's own memory.
    Not ``ru_maxrss``: Linux carries the RSS the process had before ``exec`` into it, so a
    small program started by a large one reports the large one's size (seen here: 504 MB for
    a 13 MB child of a 500 MB parent). Elsewhere ``ru_maxrss`` (bytes on macOS).
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak


def _loaded(started, before_kib):
    """The load report of this process once the model is loaded."""
    return {
        "pid": os.getpid(),
        "ok": True,
        "model": model_type(),
        "seconds": round(time.time() - started, 3),
        "before_kib": before_kib,
        "peak_kib": peak_rss_kib(),
    }


def _write_json(path, document):
    """Write ``document`` to ``path`` atomically (a reader never sees half a report)."""
    partial = path + ".partial"
    with open(partial, "w") as out:
        json.dump(document, out)
    os.replace(partial, path)


def load_in_worker(notify):
    """Load the model in this gunicorn worker before it serves; False if that failed.

    ``notify`` is the worker's heartbeat: called first, so that a load longer than ``--timeout``
    gets the worker killed (and restarted) as the container's first request would. The report
    goes to ``$SKDEPLOY_LOAD_REPORTS/<pid>.json``.
    """
    reports = os.environ.get(LOAD_REPORTS_ENV)
    notify()
    try:
        import_serving_stack()
        before_kib = peak_rss_kib()
        started = time.time()
        worker_app()
    except Exception as exc:  # any failure here is the model failing to load
        sys.stderr.write(traceback.format_exc())
        sys.stderr.write(LOAD_FAILED)
        if reports:
            _write_json(
                os.path.join(reports, f"{os.getpid()}.json"),
                {"pid": os.getpid(), "ok": False, "error": f"{type(exc).__name__}: {exc}"},
            )
        return False
    report = _loaded(started, before_kib)
    sys.stderr.write(
        f"skdeploy: worker {report['pid']}: model_fn returned {report['model']} in "
        f"{report['seconds']:.1f} s; peak RSS {report['peak_kib'] / 1024:.0f} MiB\n"
    )
    if reports:
        _write_json(os.path.join(reports, f"{os.getpid()}.json"), report)
    return True


def prepare():
    """``--prepare``: copy the code and import the user module, as ``server.start`` does."""
    try:
        importlib.import_module(prepare_code())
    except BaseException:  # any failure here is the user module failing to import
        sys.stderr.write(traceback.format_exc())
        sys.stderr.write(LOAD_FAILED)
        return 1
    return 0


def measure(report_path):
    """``--measure REPORT``: load the model as a gunicorn gevent worker does; report its memory.

    The serving stack a worker has before model_fn is imported first (gevent patched, gunicorn's
    gevent worker, sagemaker-containers, scikit-learn), so the peak counts it too.
    """
    from gevent import monkey

    monkey.patch_all()
    import gunicorn.workers.ggevent  # noqa: F401 - what a worker has imported

    try:
        import_serving_stack()
        before_kib = peak_rss_kib()
        started = time.time()
        prepare_code()
        worker_app()
    except BaseException:  # any failure here is the model failing to load
        sys.stderr.write(traceback.format_exc())
        sys.stderr.write(LOAD_FAILED)
        return 1
    _write_json(report_path, _loaded(started, before_kib))
    return 0


def main(argv):
    if argv == ["--prepare"]:
        return prepare()
    if len(argv) == 2 and argv[0] == "--measure":
        return measure(argv[1])
    sys.stderr.write(
        "usage: _skdeploy_serve_app.py --prepare | --measure REPORT"
        " (gunicorn serves _skdeploy_serve_app:app)\n"
    )
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
