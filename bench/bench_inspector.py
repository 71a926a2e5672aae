"""Benchmark 6: the pickle inspector's time and peak memory, on real models and worst cases.

Each case runs ``inspect_pickle`` in a fresh process that prints its wall time and peak RSS
(``VmHWM`` of ``/proc/self/status``: ``ru_maxrss`` of a child can report its parent's size); a
process that only imports the inspector gives the baseline RSS, subtracted.
Figures are per MB of the decompressed pickle stream and per MB of the file.

Cases: a random forest (100 trees on 20,000 x 10) saved plain and with zlib; a one-hot pipeline
fitted on 50,000 distinct category strings (an object array, walked opcode by opcode); and the
worst cases the default limits let through: a stream of no-op opcodes just under ``maxOpcodes``
(time) and one of memo writes just under ``maxValues`` (memory), each a few hundred KB of zlib.

Targets (the bounds the README states): any file is inspected within 60 s and 1 GiB of memory at
the default limits.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

from common import header, verdict

from skdeploy.core.pickle.inspect import InspectionLimits

TARGET_SECONDS = 60.0
TARGET_MB = 1024.0

_PROBE = """
import json, sys, time
from pathlib import Path
from skdeploy.core.pickle.inspect import PickleInspectionError, inspect_pickle
path = sys.argv[1]
started = time.perf_counter()
outcome = "passed"
if path != "-":
    try:
        report = inspect_pickle(path)
        outcome = "refused" if report.refused else "passed"
    except PickleInspectionError as exc:
        outcome = "error: " + str(exc)[-80:]
with open("/proc/self/status") as status:
    peak_kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(json.dumps({"seconds": time.perf_counter() - started, "outcome": outcome,
                  "rss_mb": peak_kib / 1024}))
"""


def probe(path: str) -> dict[str, float | str]:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, path], capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def _models(folder: Path) -> dict[str, tuple[Path, int]]:
    import io

    import joblib
    import numpy as np
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(0)
    features = rng.normal(size=(20_000, 10))
    labels = (features[:, 0] + rng.normal(size=20_000) > 0).astype(int)
    forest = RandomForestClassifier(n_estimators=100, random_state=0, n_jobs=1).fit(
        features, labels
    )
    words = np.array([f"category-{i}" for i in range(50_000)], dtype=object).reshape(-1, 1)
    onehot = make_pipeline(OneHotEncoder(handle_unknown="ignore"), LogisticRegression())
    onehot.fit(words, np.arange(50_000) % 2)
    cases = {}
    for name, model, compress in [
        ("forest, plain", forest, 0),
        ("forest, zlib 3", forest, 3),
        ("one-hot 50k strings", onehot, 0),
    ]:
        path = folder / f"{name.split(',')[0].replace(' ', '-')}-{compress}.joblib"
        joblib.dump(model, path, compress=compress)
        buffer = io.BytesIO()
        joblib.dump(model, buffer)
        cases[name] = (path, len(buffer.getvalue()))
    return cases


def _worst(folder: Path) -> dict[str, tuple[Path, int]]:
    limits = InspectionLimits()
    opcodes = limits.max_opcodes - 1000
    flood = b"\x80\x04" + b"N0" * (opcodes // 2) + b"N."
    memo = b"\x80\x04N" + b"\x94" * (limits.max_values - 1000) + b"."
    cases = {}
    for name, stream in [("no-op opcodes (maxOpcodes)", flood), ("memo writes (maxValues)", memo)]:
        path = folder / (name.split(" (")[0].replace(" ", "-") + ".joblib")
        path.write_bytes(zlib.compress(stream, 9))
        cases[name] = (path, len(stream))
    return cases


def main() -> dict[str, object]:
    header("Pickle inspector: time and peak memory per MB")
    baseline = float(probe("-")["rss_mb"])
    rows: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory(prefix="skdeploy-bench-inspector-") as tmp:
        folder = Path(tmp)
        cases = {**_models(folder), **_worst(folder)}
        for name, (path, stream_bytes) in cases.items():
            figures = probe(str(path))
            seconds, rss = float(figures["seconds"]), float(figures["rss_mb"]) - baseline
            stream_mb = stream_bytes / 2**20
            file_mb = path.stat().st_size / 2**20
            rows[name] = {
                "outcome": figures["outcome"],
                "file_mb": round(file_mb, 2),
                "stream_mb": round(stream_mb, 2),
                "seconds": round(seconds, 2),
                "s_per_stream_mb": round(seconds / stream_mb, 4),
                "peak_mb_over_baseline": round(rss, 1),
                "peak_mb_per_stream_mb": round(rss / stream_mb, 2),
            }
            print(
                f"  {name:30s} {figures['outcome']:8.8s} file {file_mb:8.2f} MB, stream "
                f"{stream_mb:8.2f} MB: {seconds:6.2f} s ({seconds / stream_mb:.3f} s/MB), "
                f"+{rss:6.1f} MB peak ({rss / stream_mb:.2f} MB/MB)"
            )
    worst_seconds = max(float(str(r["seconds"])) for r in rows.values())
    worst_mb = max(float(str(r["peak_mb_over_baseline"])) for r in rows.values())
    return {
        "cases": rows,
        "targets": [
            verdict(
                "worst inspection time",
                worst_seconds,
                f"< {TARGET_SECONDS:.0f} s",
                worst_seconds < TARGET_SECONDS,
            ),
            verdict(
                "worst inspection memory (MB)",
                worst_mb,
                f"< {TARGET_MB:.0f} MB",
                worst_mb < TARGET_MB,
            ),
        ],
    }


if __name__ == "__main__":
    main()
