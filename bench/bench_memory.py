"""Benchmark 5: resident memory of the local endpoint's gunicorn processes under load; and 5b,
memory from a real load (``load-memory``: :func:`load_main`, described there).

The endpoint serves the 10-feature model with our handlers. RSS is read from
``/proc/<pid>/status`` (VmRSS) for gunicorn's master (``server_pid``) and every descendant
(the worker), at three moments: healthy (the first ``/ping`` has loaded the model), after a
short warm-up (the first requests of each kind import and allocate lazily), and after a load of
mixed requests: 1-row and 1,000-row JSON, 1,000-row CSV, malformed and wrong-width bodies,
from 8 threads. A leak shows as growth from warm-up to the end of the load.

Target: growth under the load below 10 %.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from pathlib import Path

from bench_endpoint import request_kinds
from common import (
    REPO,
    STACK,
    header,
    project_copy,
    runtime_env,
    runtime_python,
    train_model,
    verdict,
)
from loadgen import Request, run_load

from skdeploy.core import artifact
from skdeploy.core.constants import BUILD_DIR
from skdeploy.core.preflight import memory_limit
from skdeploy.core.settings import load_stack_settings
from skdeploy.tooling import memory
from skdeploy.tooling.demo import background_endpoint

WARM_UP_REQUESTS = 40
LOAD_REQUESTS = 3000
CONCURRENCY = 8
TARGET_GROWTH = 0.10


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it, from /proc (psutil is not in the tool env)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: fields start after the last ')'.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def rss_kib(pid: int) -> int:
    """VmRSS of one process in KiB (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return 0
    return 0


def tree_rss(pid: int) -> dict[int, int]:
    return {p: rss_kib(p) for p in descendants(pid)}


def mixed_requests() -> list[Request]:
    kinds = list(request_kinds().values())
    bad = [
        Request(b"[[1, 2", {"Content-Type": "application/json"}),
        Request(b"1,2,3\n", {"Content-Type": "text/csv"}),
        Request(b"\x00\x01", {"Content-Type": "application/x-npy"}),
    ]
    return kinds + bad


def main() -> dict[str, object]:
    header("5. Memory: RSS of the endpoint's gunicorn processes (VmRSS from /proc)")
    python = runtime_python()
    requests = mixed_requests()
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        work = Path(tmp)
        model = train_model(python, work / "model.joblib", work)
        project = project_copy(work / "ours", model=model)
        with background_endpoint(project, STACK, work / "logs") as endpoint:
            started = tree_rss(endpoint.server_pid)
            run_load(endpoint.port, requests, concurrency=1, total=WARM_UP_REQUESTS)
            warm = tree_rss(endpoint.server_pid)
            load = run_load(endpoint.port, requests, concurrency=CONCURRENCY, total=LOAD_REQUESTS)
            after = tree_rss(endpoint.server_pid)
    if load.errors or set(load.statuses) - {200, 400}:
        raise SystemExit(f"unexpected answers under load: {load.statuses} {load.errors[:3]}")
    totals = {
        name: sum(v.values()) for name, v in (("start", started), ("warm", warm), ("after", after))
    }
    growth = totals["after"] / totals["warm"] - 1
    since_start = totals["after"] / totals["start"] - 1
    for name, snapshot in (("healthy", started), ("after warm-up", warm), ("after load", after)):
        parts = ", ".join(
            f"pid {pid}: {kib / 1024:.1f} MiB" for pid, kib in sorted(snapshot.items())
        )
        print(f"  {name:<14} total {sum(snapshot.values()) / 1024:7.1f} MiB ({parts})")
    print(
        f"  load: {load.count} requests ({load.statuses}) at concurrency {CONCURRENCY} in "
        f"{load.seconds:.1f} s; growth {growth * 100:+.1f} % "
        f"(since healthy {since_start * 100:+.1f} %)"
    )
    target = verdict("RSS growth under load (%)", growth * 100, "< 10 %", growth < TARGET_GROWTH)
    return {
        "rss_mib": {k: v / 1024 for k, v in totals.items()},
        "growth": growth,
        "growth_since_healthy": since_start,
        "requests": load.count,
        "statuses": load.statuses,
        "targets": [target],
    }


# --- 5b. Memory from a real load -----------------------------------------------------------------

#: Random forests (trees, rows of 10 features) of about 10 MB, 200 MB and 1 GB on disk.
FORESTS = ((3, 40_000), (50, 50_000), (250, 50_000))
#: Trained forests are kept here between runs (git-ignored): training the largest takes a minute.
FOREST_CACHE = REPO / BUILD_DIR / "bench" / "forests"
#: The measurement must agree with a serving worker's own peak within this share.
TARGET_AGREEMENT = 0.10

_TRAIN_FOREST = """
import sys, joblib, numpy as np
from sklearn.ensemble import RandomForestRegressor
trees, rows, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rng = np.random.default_rng(0)
x = rng.normal(size=(rows, 10))
y = x @ rng.normal(size=10) + rng.normal(size=rows)
joblib.dump(RandomForestRegressor(n_estimators=trees, random_state=0, n_jobs=2).fit(x, y), out)
"""


def forest(python: Path, trees: int, rows: int, work: Path) -> Path:
    """A RandomForestRegressor fitted and dumped by the runtime's scikit-learn (cached)."""
    path = FOREST_CACHE / f"forest-{trees}x{rows}.joblib"
    if not path.is_file():
        FOREST_CACHE.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        subprocess.run(
            [str(python), "-c", _TRAIN_FOREST, str(trees), str(rows), str(partial)],
            env=runtime_env(work),
            check=True,
            timeout=900,
        )
        partial.replace(path)
    return path


def _one_forest(python: Path, trees: int, rows: int, work: Path) -> dict[str, object]:
    model = forest(python, trees, rows, work)
    project = project_copy(work / f"forest-{trees}", model=model)
    settings = load_stack_settings(project, STACK)
    variant = settings.served_variants[0]
    limit = memory_limit(settings, variant)
    assert limit is not None
    started = time.perf_counter()
    artifact.build_for_settings(settings)
    build_seconds = time.perf_counter() - started
    started = time.perf_counter()
    measured = memory.measure(settings, variant, timeout=600)
    measure_seconds = time.perf_counter() - started
    started = time.perf_counter()
    with background_endpoint(project, STACK, work / f"logs-{trees}"):
        ready_seconds = time.perf_counter() - started
        ready = json.loads((work / f"logs-{trees}" / "ready.json").read_text())
    loads = ready["loads"]
    file_bytes = model.stat().st_size
    static_bytes = file_bytes * limit.workers
    static_fits = static_bytes <= limit.budget_bytes
    measured_fits = memory.Verdict(measured, limit).fits
    worker_peak = int(loads[0]["peak_bytes"])
    mib = 1024**2
    print(
        f"  {trees:3d} trees x {rows:,} rows: file {file_bytes / 1e6:7.1f} MB; static estimate "
        f"{static_bytes / mib:6.0f} MiB ({'fits' if static_fits else 'refused'}); measured peak "
        f"{measured.peak_bytes / mib:6.0f} MiB ({measured.before_bytes / mib:.0f} before model_fn; "
        f"{'fits' if measured_fits else 'refused'}), a serving worker's own {worker_peak / mib:.0f}"
        f" MiB; measuring {measure_seconds:.1f} s (model_fn {measured.seconds:.1f} s); serve "
        f"ready in {ready_seconds:.1f} s ({len(loads)} worker, {len(loads)} load; the artifact "
        f"cached, built in {build_seconds:.1f} s before)"
    )
    return {
        "trees": trees,
        "rows": rows,
        "file_mb": round(file_bytes / 1e6, 1),
        "static_estimate_mib": round(static_bytes / mib),
        "static_fits": static_fits,
        "measured_peak_mib": round(measured.peak_bytes / mib),
        "measured_before_mib": round(measured.before_bytes / mib),
        "measured_fits": measured_fits,
        "worker_peak_mib": round(worker_peak / mib),
        "model_fn_seconds": round(measured.seconds, 2),
        "measure_seconds": round(measure_seconds, 2),
        "build_seconds": round(build_seconds, 2),
        "serve_ready_seconds": round(ready_seconds, 2),
        "serve_loads": len(loads),
    }


def load_main() -> dict[str, object]:
    """5b. Memory from a real load: random forests of about 10 MB, 200 MB and 1 GB on disk.

    For each: the file size, the static estimate (``sizes``: file size x workers, here the dev
    stack's serverless endpoint of 2048 MB, one worker), the peak ``skdeploy check`` measures
    (``memory``: ``_skdeploy_serve_app.py --measure``, serving stack included) and the verdict of
    each, the peak the serving worker itself reports, and the serve-ready time: ``skdeploy serve``
    started until ``/ping`` answers 200 (artifact already built and cached; each worker loads
    the model once).

    Target: the measurement agrees with a serving worker's own peak within 10 %.
    """
    header("5b. Memory from a real load: random forests, file size vs measured peak")
    python = runtime_python()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-load-memory-") as tmp:
        for trees, count in FORESTS:
            rows.append(_one_forest(python, trees, count, Path(tmp)))
    worst = max(
        abs(int(str(r["measured_peak_mib"])) - int(str(r["worker_peak_mib"])))
        / int(str(r["worker_peak_mib"]))
        for r in rows
    )
    target = verdict(
        "measured peak vs a serving worker's (%)",
        worst * 100,
        "within 10 %",
        worst <= TARGET_AGREEMENT,
    )
    return {"forests": rows, "targets": [target]}


if __name__ == "__main__":
    main()
    load_main()
