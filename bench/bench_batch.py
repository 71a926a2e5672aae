"""Benchmark 8: local batch transform throughput (rows/s), against row-by-row calls and predict.

The project serving the 10-feature LinearRegression (trained in the runtime) runs under
``skdeploy serve`` with one gunicorn worker per CPU; ``skdeploy batch``'s local run
(:func:`skdeploy.tooling.batch.run_local_batch`, the stack's default ``batch`` settings:
MultiRecord up to 6 MB, as many requests in flight as workers) scores 100,000 rows as CSV and
as JSON Lines. Two references: calling the endpoint one row per request (a sample of
``ROW_SAMPLE`` rows sent one after the other, extrapolated to rows/s: sending all 100,000 would
take minutes and say nothing more), and plain ``model.predict`` on the whole file in the
runtime's Python (the array already parsed: the ceiling, without HTTP or codecs). Client and
server share the machine's cores, so the figures are a comparison, not a capacity plan.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

from common import (
    FEATURES,
    STACK,
    header,
    project_copy,
    runtime_env,
    runtime_python,
    train_model,
)

from skdeploy.core.settings import BatchSettings
from skdeploy.tooling.batch import CSV, JSONLINES, Endpoint, run_local_batch
from skdeploy.tooling.demo import background_endpoint

ROWS = 100_000
ROW_SAMPLE = 2_000
WORKERS = os.cpu_count() or 1

#: Runs in the runtime: seconds of model.predict over the whole CSV (parsed before the clock).
PREDICT = (
    "import json, sys, time, joblib, numpy as np\n"
    "model = joblib.load(sys.argv[1])\n"
    "rows = np.loadtxt(sys.argv[2], delimiter=',', ndmin=2)\n"
    "started = time.perf_counter()\n"
    "model.predict(rows)\n"
    "print(json.dumps(time.perf_counter() - started))\n"
)


def rows() -> list[list[float]]:
    """ROWS rows of FEATURES values, 4 decimals (fixed values)."""
    return [[round(1.2345 * (f + 1) + 0.0001 * n, 4) for f in range(FEATURES)] for n in range(ROWS)]


def write_inputs(folder: Path, data: list[list[float]]) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    csv_file, jsonl_file = folder / "rows.csv", folder / "rows.jsonl"
    csv_file.write_text("".join(",".join(f"{v:.4f}" for v in r) + "\n" for r in data))
    jsonl_file.write_text("".join(json.dumps(r) + "\n" for r in data))
    return csv_file, jsonl_file


def batch_rate(endpoint: Endpoint, data: Path, out: Path) -> float:
    """Rows/s of the local batch over one file (every row must be answered)."""
    settings = BatchSettings(max_concurrent_transforms=WORKERS)
    summary = run_local_batch([data], out, settings, endpoint.invoke, concurrency=WORKERS)
    if summary.failures or summary.written != ROWS:
        raise SystemExit(f"batch over {data.name}: {summary.text()}")
    return summary.records / summary.seconds


def row_by_row_rate(endpoint: Endpoint, data: list[list[float]]) -> float:
    """Rows/s sending ROW_SAMPLE rows one request each, one after the other (extrapolated)."""
    started = time.perf_counter()
    for row in data[:ROW_SAMPLE]:
        answer = endpoint.invoke((",".join(f"{v:.4f}" for v in row) + "\n").encode(), CSV, CSV)
        if answer.status != 200:
            raise SystemExit(f"row-by-row: HTTP {answer.status}: {answer.body[:200]!r}")
    return ROW_SAMPLE / (time.perf_counter() - started)


def predict_rate(python: Path, model: Path, data: Path, work: Path) -> float:
    """Rows/s of model.predict over the whole file in the runtime's Python."""
    result = subprocess.run(
        [str(python), "-c", PREDICT, str(model), str(data)],
        capture_output=True,
        text=True,
        check=True,
        env=runtime_env(work),
    )
    return ROWS / float(json.loads(result.stdout))


def main() -> dict[str, object]:
    header(f"8. Local batch transform: rows/s over {ROWS:,} rows ({WORKERS} workers)")
    python = runtime_python()
    data = rows()
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        work = Path(tmp)
        model = train_model(python, work / "model.joblib", work)
        project = project_copy(work / "project", model=model)
        csv_file, jsonl_file = write_inputs(work / "in", data)
        # The transform agent is not held to InvokeEndpoint's payload limit (the dev stack is
        # serverless: 4 MB); the server takes MaxPayloadInMB, as `skdeploy batch` starts it.
        payload = str(BatchSettings().max_payload_bytes)
        workers = ("--workers", str(WORKERS), "--max-payload-bytes", payload)
        with background_endpoint(project, STACK, work / "logs", *workers) as running:
            endpoint = Endpoint(running.url)
            figures = {
                "batch csv rows/s": batch_rate(endpoint, csv_file, work / "out"),
                "batch jsonl rows/s": batch_rate(endpoint, jsonl_file, work / "out"),
                "row by row rows/s (sampled)": row_by_row_rate(endpoint, data),
            }
        figures["model.predict rows/s"] = predict_rate(python, model, csv_file, work)
    for name, value in figures.items():
        print(f"  {name:<30} {value:>12,.0f}")
    print(
        f"  (row by row: {ROW_SAMPLE:,} rows sent one request each, extrapolated; "
        "model.predict: the parsed array, no HTTP or codecs)"
    )
    print(f"  ({JSONLINES} answers one JSON object per row; CSV one line)")
    return {**figures, "rows": ROWS, "row_sample": ROW_SAMPLE, "workers": WORKERS}


if __name__ == "__main__":
    main()
