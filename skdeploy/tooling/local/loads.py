"""Each worker's load of the model: its report, and waiting until every worker has loaded."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from skdeploy.core.constants import ENV_TIMEOUT
from skdeploy.tooling.common import EXIT_FAILED
from skdeploy.tooling.local.options import ServeError


@dataclass(frozen=True)
class LoadReport:
    """One load of the model in the runtime: a gunicorn worker's, or ``_skdeploy_serve_app.py
    --measure``.

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
        """Read a report ``_skdeploy_serve_app.py`` wrote (sizes in KiB there)."""
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
