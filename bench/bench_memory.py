"""Benchmark 5: resident memory of the local endpoint's gunicorn processes under load.

The endpoint serves the 10-feature model with our handlers. RSS is read from
``/proc/<pid>/status`` (VmRSS) for gunicorn's master (``server_pid``) and every descendant
(the worker), at three moments: healthy (the first ``/ping`` has loaded the model), after a
short warm-up (the first requests of each kind import and allocate lazily), and after a load of
mixed requests: 1-row and 1,000-row JSON, 1,000-row CSV, malformed and wrong-width bodies,
from 8 threads. A leak shows as growth from warm-up to the end of the load.

Target: growth under the load below 10 %.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench_endpoint import request_kinds
from common import STACK, header, project_copy, runtime_python, train_model, verdict
from loadgen import Request, run_load

from skdeploy.demo import background_endpoint

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


if __name__ == "__main__":
    main()
