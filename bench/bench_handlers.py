"""Benchmark 1: decode + predict + encode per request, our handlers against the container's.

Both run in the 1.2-1 runtime (Python 3.9, scikit-learn 1.2.1, numpy 1.24.1, sagemaker-containers
2.8.6.post2), in one process, on the same 10-feature LinearRegression and the same rows (4
decimals), for text/csv, application/json and application/x-npy bodies of 1, 100 and 10,000
rows, answering application/json. The work is done by ``handlers_runtime.py``; this side
prints the ratios and checks them against the targets:

- CSV at 10,000 rows at least 5x faster than the defaults;
- JSON at 10,000 rows at least 1.8x faster;
- a single row no slower (ratio >= 1.0 for CSV and JSON, within 5 % for timer noise).
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from common import RUNTIME_SCRIPT, header, runtime_env, runtime_python, verdict

CSV, JSON, NPY = "text/csv", "application/json", "application/x-npy"
SHORT = {CSV: "csv", JSON: "json", NPY: "x-npy"}


def measure() -> dict[str, Any]:
    """Run the timing script in the runtime and return its JSON."""
    python = runtime_python()
    with tempfile.TemporaryDirectory(prefix="bench-handlers-") as work:
        completed = subprocess.run(
            [str(python), str(RUNTIME_SCRIPT), "handlers"],
            env=runtime_env(Path(work)),
            capture_output=True,
            text=True,
            check=True,
            timeout=600,
        )
    result: dict[str, Any] = json.loads(completed.stdout)
    return result


def main() -> dict[str, object]:
    header("1. Handlers: decode + predict + encode per request (runtime 1.2-1, Accept JSON)")
    measured = measure()
    rows: list[dict[str, Any]] = measured["results"]
    print(
        f"  {'body':<6} {'rows':>6} {'bytes':>9} {'ours':>10} {'default':>10} "
        f"{'speed-up':>8} {'outside predict (ours / default)':>34}"
    )
    by_key: dict[tuple[str, int], dict[str, float]] = {}
    for row in rows:
        ours, default = float(row["ours"]), float(row["default"])
        ours_out = 1 - float(row["ours_predict"]) / ours
        default_out = 1 - float(row["default_predict"]) / default
        key = (str(row["content_type"]), int(row["rows"]))
        by_key[key] = {
            "ours": ours,
            "default": default,
            "ratio": default / ours,
            "ours_outside_predict": ours_out,
            "default_outside_predict": default_out,
        }
        print(
            f"  {SHORT[key[0]]:<6} {key[1]:>6} {row['bytes']:>9} {ours * 1e3:>8.3f}ms "
            f"{default * 1e3:>8.3f}ms {default / ours:>7.2f}x "
            f"{ours_out * 100:>20.0f}% / {default_out * 100:.0f}%"
        )
    npy_lane = by_key[(CSV, 10_000)]["ours"] / by_key[(NPY, 10_000)]["ours"]
    npy_json = by_key[(JSON, 10_000)]["ours"] / by_key[(NPY, 10_000)]["ours"]
    print(
        f"  x-npy fast lane at 10,000 rows: {npy_lane:.1f}x faster than CSV, {npy_json:.1f}x JSON"
    )
    targets = [
        verdict(
            "CSV 10,000 rows speed-up",
            by_key[(CSV, 10_000)]["ratio"],
            ">= 5x",
            by_key[(CSV, 10_000)]["ratio"] >= 5,
        ),
        verdict(
            "JSON 10,000 rows speed-up",
            by_key[(JSON, 10_000)]["ratio"],
            ">= 1.8x",
            by_key[(JSON, 10_000)]["ratio"] >= 1.8,
        ),
        verdict(
            "CSV one row speed-up",
            by_key[(CSV, 1)]["ratio"],
            ">= 0.95x (no slower)",
            by_key[(CSV, 1)]["ratio"] >= 0.95,
        ),
        verdict(
            "JSON one row speed-up",
            by_key[(JSON, 1)]["ratio"],
            ">= 0.95x (no slower)",
            by_key[(JSON, 1)]["ratio"] >= 0.95,
        ),
    ]
    return {
        "runtime_python": measured["python"],
        "cases": {f"{SHORT[k[0]]}-{k[1]}": v for k, v in by_key.items()},
        "npy_vs_csv_10k": npy_lane,
        "npy_vs_json_10k": npy_json,
        "targets": targets,
    }


if __name__ == "__main__":
    main()
