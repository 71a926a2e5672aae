"""POST a request body to a local endpoint's ``/invocations`` over kept-alive connections.

One ``http.client`` connection per thread, reused for every request that thread sends, as
SageMaker's transform agent reuses its connections to the container; a dropped connection is
opened again once.
"""

from __future__ import annotations

import http.client
import json
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

#: Seconds one request may take: the container's own invocation timeout is 60.
REQUEST_TIMEOUT_SECONDS = 120.0


@dataclass(frozen=True)
class Answer:
    """What the endpoint answered: its status and body."""

    status: int
    body: bytes


class Endpoint:
    """A local endpoint at ``url`` (``http://127.0.0.1:PORT``), shared by the batch's threads."""

    def __init__(self, url: str) -> None:
        parsed = urlparse(url)
        if parsed.scheme != "http" or not parsed.hostname:
            raise ValueError(f"--endpoint-url {url!r} must be http://HOST:PORT")
        self.url = url.rstrip("/")
        self._host = parsed.hostname
        self._port = parsed.port or 80
        self._local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = http.client.HTTPConnection(
                self._host, self._port, timeout=REQUEST_TIMEOUT_SECONDS
            )
            self._local.connection = connection
        return connection

    def request(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str]
    ) -> Answer:
        """One request; a connection the server closed meanwhile is reopened and tried again."""
        for attempt in (1, 2):
            connection = self._connection()
            try:
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                return Answer(response.status, response.read())
            except (http.client.HTTPException, ConnectionError):
                connection.close()
                self._local.connection = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def invoke(self, body: bytes, content_type: str, accept: str) -> Answer:
        """``POST /invocations``, as the transform agent calls the container."""
        headers = {"Content-Type": content_type, "Accept": accept}
        return self.request("POST", "/invocations", body, headers)

    def execution_parameters(self) -> dict[str, Any] | None:
        """``GET /execution-parameters``, or None when the container does not answer it."""
        answer = self.request("GET", "/execution-parameters", None, {})
        if answer.status != 200:
            return None
        document = json.loads(answer.body)
        return document if isinstance(document, dict) else None
