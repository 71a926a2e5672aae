"""Benchmark 2: the local endpoint over loopback, our handlers against the container's defaults.

Two copies of the project serve the same 10-feature LinearRegression (trained in the runtime)
with ``skdeploy serve`` (sagemaker-containers under ``gunicorn -k gevent``), each with as many
workers as the container would start on this machine (one per CPU: sagemaker-containers'
default when ``SAGEMAKER_MODEL_SERVER_WORKERS`` is unset): one with our ``inference.py``, one
whose ``inference.py`` defines only ``model_fn`` so the container's default handlers do the
rest. Each is loaded by 1, 8 and 32 concurrent clients (closed loop, keep-alive, ``POST
/invocations`` as the container receives it) with JSON bodies of 1, 100 and 1,000 rows and
CSV bodies of 100 and 1,000 rows, answering JSON. Client and server share the machine's cores,
so the figures are a comparison, not a capacity plan.

A single-row CSV body is left out: the defaults answer it with a 500 (the row is squeezed to
1-D), so there is nothing to compare.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from common import (
    DEFAULT_HANDLERS_SOURCE,
    FEATURES,
    STACK,
    header,
    percentile,
    project_copy,
    runtime_python,
    train_model,
)
from loadgen import LoadResult, Request, run_load

from skdeploy.tooling.demo import background_endpoint

CONCURRENCY = (1, 8, 32)
#: What sagemaker-containers starts without SAGEMAKER_MODEL_SERVER_WORKERS: one per CPU.
WORKERS = os.cpu_count() or 1
WARM_UP_SECONDS = 0.3
#: Each figure pools ROUNDS rounds of ROUND_SECONDS, alternating between the two endpoints, so
#: that a noisy moment on a shared machine hits both sides alike.
ROUNDS = 3
ROUND_SECONDS = 1.0


def request_kinds() -> dict[str, Request]:
    """The bodies sent: 1, 100 and 1,000 rows of 10 features, 4 decimals (fixed values)."""
    row = [round(1.2345 * (i + 1), 4) for i in range(FEATURES)]
    rows = [[round(v + 0.0001 * n, 4) for v in row] for n in range(1000)]
    as_json = {"Content-Type": "application/json", "Accept": "application/json"}
    as_csv = {"Content-Type": "text/csv", "Accept": "application/json"}

    def csv_body(count: int) -> bytes:
        return ("\n".join(",".join(f"{v:.4f}" for v in r) for r in rows[:count]) + "\n").encode()

    return {
        "json 1 row": Request(json.dumps([row]).encode(), as_json),
        "json 100 rows": Request(json.dumps(rows[:100]).encode(), as_json),
        "csv 100 rows": Request(csv_body(100), as_csv),
        "json 1,000 rows": Request(json.dumps(rows).encode(), as_json),
        "csv 1,000 rows": Request(csv_body(1000), as_csv),
    }


def _checked(result: LoadResult, what: str) -> LoadResult:
    if result.errors or set(result.statuses) != {200}:
        raise SystemExit(f"{what}: statuses {result.statuses}, errors {result.errors[:3]}")
    return result


def compare(ports: dict[str, int]) -> dict[str, dict[str, dict[str, float]]]:
    """Every request kind at every concurrency, rounds alternating between the endpoints."""
    figures: dict[str, dict[str, dict[str, float]]] = {name: {} for name in ports}
    for kind, request in request_kinds().items():
        for concurrency in CONCURRENCY:
            key = f"{kind} @{concurrency}"
            pooled: dict[str, LoadResult] = {}
            for name, port in ports.items():
                run_load(port, [request], concurrency=concurrency, duration=WARM_UP_SECONDS)
                pooled[name] = LoadResult(seconds=0.0)
            for _ in range(ROUNDS):
                for name, port in ports.items():
                    result = _checked(
                        run_load(port, [request], concurrency=concurrency, duration=ROUND_SECONDS),
                        f"{name} {key}",
                    )
                    pooled[name].seconds += result.seconds
                    pooled[name].latencies += result.latencies
            for name, result in pooled.items():
                figures[name][key] = {
                    "rps": result.rate,
                    "p50_ms": percentile(result.latencies, 0.5) * 1e3,
                    "p99_ms": percentile(result.latencies, 0.99) * 1e3,
                    "requests": result.count,
                }
    return figures


def main() -> dict[str, object]:
    header(
        f"2. Local endpoint: requests/s and latency over loopback ({WORKERS} gevent workers, "
        "one per CPU as in the container)"
    )
    python = runtime_python()
    with tempfile.TemporaryDirectory(prefix="bench-endpoint-") as tmp:
        work = Path(tmp)
        model = train_model(python, work / "model.joblib", work)
        ours = project_copy(work / "ours", model=model)
        default = project_copy(
            work / "default", model=model, inference_source=DEFAULT_HANDLERS_SOURCE
        )
        workers = ("--workers", str(WORKERS))
        with (
            background_endpoint(ours, STACK, work / "ours-logs", *workers) as ours_endpoint,
            background_endpoint(
                default, STACK, work / "default-logs", *workers
            ) as default_endpoint,
        ):
            results = compare({"ours": ours_endpoint.port, "default": default_endpoint.port})
    print(
        f"  {'request @concurrency':<22} {'ours rps':>9} {'p50':>8} {'p99':>8}   "
        f"{'default rps':>11} {'p50':>8} {'p99':>8}   {'rps ratio':>9} {'p50 ratio':>9}"
    )
    for key, mine in results["ours"].items():
        theirs = results["default"][key]
        print(
            f"  {key:<22} {mine['rps']:>9.0f} {mine['p50_ms']:>6.2f}ms {mine['p99_ms']:>6.2f}ms   "
            f"{theirs['rps']:>11.0f} {theirs['p50_ms']:>6.2f}ms {theirs['p99_ms']:>6.2f}ms   "
            f"{mine['rps'] / theirs['rps']:>8.2f}x {theirs['p50_ms'] / mine['p50_ms']:>8.2f}x"
        )
    return {**results, "workers": WORKERS}


if __name__ == "__main__":
    main()
