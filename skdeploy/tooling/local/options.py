"""How to serve (:class:`ServeOptions`), and the error that stops ``skdeploy serve``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from skdeploy.core.constants import (
    INVOCATION_TIMEOUT_SECONDS,
    MAX_PAYLOAD_BYTES,
    MAX_SERVERLESS_PAYLOAD_BYTES,
)

#: The container's ``/ping`` must pass within 4 minutes of start by default.
DEFAULT_STARTUP_TIMEOUT: Final = 240.0


class ServeError(Exception):
    """``skdeploy serve`` cannot go on; ``exit_code``: could not run (2) or failed (1)."""

    def __init__(self, exit_code: int, message: str) -> None:
        super().__init__(message)
        self.exit_code = exit_code


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
    #: The folder standing for S3 in InvokeEndpointAsync: ``s3://bucket/key`` is
    #: ``<s3_dir>/bucket/key`` (``--s3-dir``).
    s3_dir: Path | None = None

    @property
    def payload_limit(self) -> int:
        """Largest InvokeEndpoint body accepted, in bytes."""
        if self.max_payload_bytes is not None:
            return self.max_payload_bytes
        return MAX_SERVERLESS_PAYLOAD_BYTES if self.serverless else MAX_PAYLOAD_BYTES
