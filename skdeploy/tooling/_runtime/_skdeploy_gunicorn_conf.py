"""gunicorn server hooks for ``skdeploy serve`` (``gunicorn -c``); runs in the runtime virtualenv.

Each worker loads the model once, when it boots (:func:`post_worker_init`); a worker whose model
fails to load exits with gunicorn's boot-error status, which stops the whole server at once.

gunicorn runs in its own session so that it can be stopped as one process group, which also
means nothing stops it if ``skdeploy serve`` dies without cleaning up (``kill -9``, a crash). So
the master watches its parent: once ``skdeploy serve`` is gone it stops itself, and removes the
temporary ``opt/ml`` directory that nobody else will remove.
"""

import json
import os
import shutil
import signal
import sys
import threading
import time

from gunicorn.arbiter import Arbiter

#: ``skdeploy serve``: gunicorn's master is its direct child, and loads this file at start.
_PARENT = os.getppid()
#: Same name as in skdeploy/tooling/local/serve.py and _skdeploy_serve_app.py.
_CONFIG_ENV = "SKDEPLOY_LOCAL_ENDPOINT"
#: Only a directory created by skdeploy serve is ever removed here.
_TEMP_PREFIX = "skdeploy-serve-"


def _orphaned():
    return os.getppid() != _PARENT


def when_ready(server):
    """Start the watch once gunicorn listens."""

    def watch():
        while not _orphaned():
            time.sleep(0.5)
        server.log.warning("skdeploy serve (pid %d) is gone: stopping", _PARENT)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="skdeploy-parent-watch", daemon=True).start()


def post_worker_init(worker):
    """Load the model in this worker before it accepts a request (see load_in_worker)."""
    # On --pythonpath; gunicorn has already imported it as the application.
    import _skdeploy_serve_app

    if not _skdeploy_serve_app.load_in_worker(worker.notify):
        # The master halts with "Worker failed to boot." and the same status.
        sys.exit(Arbiter.WORKER_BOOT_ERROR)


def on_exit(server):
    """Orphaned: remove the temporary directory skdeploy serve would have removed."""
    if not _orphaned():
        return
    temp_dir = json.loads(os.environ.get(_CONFIG_ENV, "{}")).get("temp_dir", "")
    if temp_dir and os.path.basename(temp_dir.rstrip("/")).startswith(_TEMP_PREFIX):
        shutil.rmtree(temp_dir, ignore_errors=True)
