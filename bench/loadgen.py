"""A small closed-loop HTTP load generator: threads, one keep-alive connection each.

Used by the endpoint and memory benchmarks (``tests/test_reliability.py`` has its own, so that
the tests never import from bench/). Each thread sends its next request as soon as the previous
answer is read, for a fixed time or a fixed number of requests; latencies are measured per
request on the client, over loopback.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Request:
    """One request to send: path, body and headers."""

    body: bytes
    headers: dict[str, str]
    path: str = "/invocations"
    method: str = "POST"


@dataclass
class LoadResult:
    """What a load run measured."""

    seconds: float
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        """Requests per second over the whole run."""
        return self.count / self.seconds if self.seconds else 0.0


def run_load(
    port: int,
    requests: Sequence[Request],
    *,
    concurrency: int,
    duration: float | None = None,
    total: int | None = None,
    timeout: float = 60.0,
) -> LoadResult:
    """Send ``requests`` in turn from ``concurrency`` threads, for ``duration`` s or ``total``."""
    if (duration is None) == (total is None):
        raise ValueError("give exactly one of duration and total")
    lock = threading.Lock()
    counter = iter(range(total if total is not None else 1 << 62))
    result = LoadResult(seconds=0.0)
    start = time.perf_counter()
    deadline = start + duration if duration is not None else float("inf")

    def worker() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        latencies: list[float] = []
        statuses: dict[int, int] = {}
        try:
            while time.perf_counter() < deadline:
                with lock:
                    index = next(counter, None)
                if index is None:
                    break
                request = requests[index % len(requests)]
                sent = time.perf_counter()
                try:
                    connection.request(
                        request.method, request.path, body=request.body, headers=request.headers
                    )
                    response = connection.getresponse()
                    response.read()
                except (OSError, http.client.HTTPException) as exc:
                    with lock:
                        result.errors.append(f"{type(exc).__name__}: {exc}")
                    connection.close()
                    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
                    continue
                latencies.append(time.perf_counter() - sent)
                statuses[response.status] = statuses.get(response.status, 0) + 1
        finally:
            connection.close()
            with lock:
                result.latencies.extend(latencies)
                for status, count in statuses.items():
                    result.statuses[status] = result.statuses.get(status, 0) + count

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.seconds = time.perf_counter() - start
    return result
