"""Run every benchmark (``make bench``), print a summary of the targets, save the figures.

The figures go to ``build/bench/results.json`` (git-ignored) with the machine they were taken
on; ``bench/README.md`` holds a dated copy. Targets are reported as PASS or MISS and never fail
the run: absolute times depend on the machine, and the suite's tests do not assert them. A
benchmark that breaks is reported, the others still run, and the exit status is 1.

``python bench/run.py handlers plan`` runs only the named benchmarks.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_artifact
import bench_batch
import bench_endpoint
import bench_handlers
import bench_inspector
import bench_memory
import bench_plan
from common import REPO, machine

BENCHMARKS: dict[str, Callable[[], dict[str, object]]] = {
    "handlers": bench_handlers.main,
    "endpoint": bench_endpoint.main,
    "artifact": bench_artifact.main,
    "plan": bench_plan.main,
    "memory": bench_memory.main,
    "load-memory": bench_memory.load_main,
    "inspector": bench_inspector.main,
    "batch": bench_batch.main,
}


def main(names: list[str]) -> int:
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        print(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
        return 2
    info = machine()
    print("machine: " + "; ".join(f"{k} {v}" for k, v in info.items()))
    started = time.perf_counter()
    results: dict[str, object] = {"machine": info}
    failed = []
    for name, run in BENCHMARKS.items():
        if names and name not in names:
            continue
        try:
            results[name] = run()
        except Exception:  # one broken benchmark must not hide the others' figures
            traceback.print_exc()
            print(f"  [ERROR] benchmark {name} did not run to the end")
            failed.append(name)
    elapsed = time.perf_counter() - started
    print(f"\n== Targets ({elapsed:.0f} s in all) ==")
    for name in BENCHMARKS:
        figures = results.get(name)
        if not isinstance(figures, dict):
            continue
        for target in figures.get("targets", []):
            outcome, what, value, goal = (target[k] for k in ("outcome", "target", "value", "goal"))
            print(f"  [{outcome}] {name}: {what} = {value} ({goal})")
    out = REPO / "build" / "bench" / "results.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str))
    print(f"figures saved to {out.relative_to(REPO)}")
    if failed:
        print(f"benchmarks that failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
