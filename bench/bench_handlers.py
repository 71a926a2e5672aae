"""Benchmark 1: decode + predict + encode per request, our handlers against the container's.

Both run in the 1.2-1 runtime (Python 3.9, scikit-learn 1.2.1, numpy 1.24.1, sagemaker-containers
2.8.6.post2), in one process, on the same 10-feature LinearRegression and the same rows (4
decimals), for text/csv, application/json and application/x-npy bodies of 1, 100 and 10,000
rows, answering application/json. The work is done by ``handlers_runtime.py``; this side
prints the ratios and checks them against the targets:

- CSV at 10,000 rows at least 5x faster than the defaults (fastest loop of each side);
- JSON at 10,000 rows at least 1.8x faster;
- a single row, CSV and JSON, at least 1.1x faster at p50 and no slower (1.0x) at p99, over
  single requests timed one by one, the two sides in turns (the 100-row p50 and p99 are
  printed beside them, with no target).
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
PERCENTILES = ("ours_p50", "ours_p99", "default_p50", "default_p99")


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


def best_table(rows: list[dict[str, Any]]) -> dict[tuple[str, int], dict[str, float]]:
    """Print the fastest loop of each body, both sides; return the figures by (type, rows)."""
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
    return by_key


def latency_table(rows: list[dict[str, Any]]) -> dict[tuple[str, int], dict[str, float]]:
    """Print p50 and p99 of single requests, both sides; return them by (type, rows)."""
    print(
        f"\n  single requests, the two sides in turns:\n  {'body':<6} {'rows':>6} "
        f"{'requests':>9} {'ours p50':>10} {'default':>10} {'ratio':>7}   "
        f"{'ours p99':>10} {'default':>10} {'ratio':>7}"
    )
    by_key: dict[tuple[str, int], dict[str, float]] = {}
    for row in rows:
        key = (str(row["content_type"]), int(row["rows"]))
        figures = {name: float(row[name]) for name in PERCENTILES}
        figures["p50_ratio"] = figures["default_p50"] / figures["ours_p50"]
        figures["p99_ratio"] = figures["default_p99"] / figures["ours_p99"]
        by_key[key] = figures
        print(
            f"  {SHORT[key[0]]:<6} {key[1]:>6} {row['requests']:>9} "
            f"{figures['ours_p50'] * 1e3:>8.3f}ms {figures['default_p50'] * 1e3:>8.3f}ms "
            f"{figures['p50_ratio']:>6.2f}x   {figures['ours_p99'] * 1e3:>8.3f}ms "
            f"{figures['default_p99'] * 1e3:>8.3f}ms {figures['p99_ratio']:>6.2f}x"
        )
    return by_key


def targets(
    best: dict[tuple[str, int], dict[str, float]], latency: dict[tuple[str, int], dict[str, float]]
) -> list[dict[str, object]]:
    """The issue's targets: bulk speed-ups (fastest loops), one row at p50 and p99."""
    outcomes = []
    for content_type, goal in ((CSV, 5.0), (JSON, 1.8)):
        ratio = best[(content_type, 10_000)]["ratio"]
        name = f"{SHORT[content_type].upper()} 10,000 rows speed-up"
        outcomes.append(verdict(name, ratio, f">= {goal:g}x", ratio >= goal))
    for content_type in (CSV, JSON):
        one = latency[(content_type, 1)]
        name = f"{SHORT[content_type].upper()} one row"
        outcomes.append(
            verdict(f"{name} p50 speed-up", one["p50_ratio"], ">= 1.1x", one["p50_ratio"] >= 1.1)
        )
        outcomes.append(
            verdict(f"{name} p99 speed-up", one["p99_ratio"], ">= 1.0x", one["p99_ratio"] >= 1.0)
        )
    return outcomes


def main() -> dict[str, object]:
    header("1. Handlers: decode + predict + encode per request (runtime 1.2-1, Accept JSON)")
    measured = measure()
    best = best_table(measured["results"])
    npy_lane = best[(CSV, 10_000)]["ours"] / best[(NPY, 10_000)]["ours"]
    npy_json = best[(JSON, 10_000)]["ours"] / best[(NPY, 10_000)]["ours"]
    print(
        f"  x-npy fast lane at 10,000 rows: {npy_lane:.1f}x faster than CSV, {npy_json:.1f}x JSON"
    )
    latency = latency_table(measured["latency"])
    return {
        "runtime_python": measured["python"],
        "cases": {f"{SHORT[k[0]]}-{k[1]}": v for k, v in best.items()},
        "latency": {f"{SHORT[k[0]]}-{k[1]}": v for k, v in latency.items()},
        "npy_vs_csv_10k": npy_lane,
        "npy_vs_json_10k": npy_json,
        "targets": targets(best, latency),
    }


if __name__ == "__main__":
    main()
