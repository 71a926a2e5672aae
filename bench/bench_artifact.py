"""Benchmark 3: building model.tar.gz against ``tar -czf`` of the same files, and a cache hit.

The "models" are files of random bytes named ``model.joblib`` (10 MB and 200 MB): only their
size matters to the build, and random bytes are the worst case for gzip (they do not compress,
so the sizes below are about the input size; a real joblib file of float arrays compresses
somewhat). Our build does more than tar: it hashes the inputs (cache key), hashes the tar
stream (content address), writes a fixed, reproducible header and fsyncs before the atomic
rename. ``tar -czf`` runs tar and gzip as two processes.

Targets: a build at most 1.2x the time of ``tar -czf``; a cache hit at 200 MB within 0.2 s.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from common import REPO, header, verdict

from skdeploy.core.artifact import build_artifact

SIZES_MB = (10, 200)
#: Timed builds per size, alternating ours and tar; the fastest counts (both sides alike). One
#: at 200 MB keeps ``make bench`` short.
REPEAT = {10: 3, 200: 1}


def random_file(path: Path, megabytes: int) -> None:
    """``megabytes`` MB of random bytes, written in 4 MB chunks."""
    with path.open("wb") as out:
        for _ in range(megabytes // 4):
            out.write(os.urandom(4_000_000))
        out.write(os.urandom(megabytes % 4 * 1_000_000))


def timed(function: Callable[[], object]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def stage(work: Path, megabytes: int, inference: Path) -> tuple[Path, Path]:
    """A model folder with a random-byte model, and the same files laid out for tar."""
    model_dir = work / f"model-{megabytes}"
    model_dir.mkdir()
    random_file(model_dir / "model.joblib", megabytes)
    # tar gets the same files (the model, the handler modules) in the same layout.
    staging = work / f"staging-{megabytes}"
    (staging / "code").mkdir(parents=True)
    os.link(model_dir / "model.joblib", staging / "model.joblib")
    for module in sorted(inference.glob("*.py")):
        shutil.copy2(module, staging / "code" / module.name)
    return model_dir, staging


def measure(work: Path, megabytes: int, inference: Path) -> dict[str, float]:
    """Our build against tar -czf (fastest of REPEAT), a cache hit, and both sizes."""
    model_dir, staging = stage(work, megabytes, inference)
    ours_times, tar_times = [], []
    for attempt in range(REPEAT[megabytes]):
        build_dir = work / f"build-{megabytes}-{attempt}"
        ours_times.append(
            timed(partial(build_artifact, model_dir, inference, ["model.joblib"], build_dir))
        )
        tarball = work / f"tar-{megabytes}-{attempt}.tar.gz"
        tar_command = ["tar", "-czf", str(tarball), "-C", str(staging), "model.joblib", "code"]
        tar_times.append(timed(partial(subprocess.run, tar_command, check=True)))
    build_dir = work / f"build-{megabytes}-0"
    rebuild = partial(build_artifact, model_dir, inference, ["model.joblib"], build_dir)
    hit = min(timed(rebuild) for _ in range(3))
    built = build_artifact(model_dir, inference, ["model.joblib"], build_dir)
    tar_bytes = (work / f"tar-{megabytes}-0.tar.gz").stat().st_size
    for path in (model_dir, staging):
        shutil.rmtree(path)
    ours, theirs = min(ours_times), min(tar_times)
    return {
        "build_s": ours,
        "tar_czf_s": theirs,
        "time_ratio": ours / theirs,
        "cache_hit_s": hit,
        "bytes": built.bytes,
        "tar_bytes": tar_bytes,
        "size_ratio": built.bytes / tar_bytes,
    }


def main() -> dict[str, object]:
    header("3. Artifact: build vs tar -czf (random-byte model.joblib), cache hit, size")
    results: dict[str, object] = {}
    targets = []
    with tempfile.TemporaryDirectory(prefix="bench-artifact-") as tmp:
        for megabytes in SIZES_MB:
            figures = measure(Path(tmp), megabytes, REPO / "inference")
            results[f"{megabytes} MB"] = figures
            ratio, hit = figures["time_ratio"], figures["cache_hit_s"]
            print(
                f"  {megabytes:>3} MB: build {figures['build_s']:.2f} s, tar -czf "
                f"{figures['tar_czf_s']:.2f} s ({ratio:.2f}x); cache hit {hit * 1e3:.0f} ms; "
                f"size {figures['bytes']:,.0f} vs {figures['tar_bytes']:,.0f} bytes "
                f"({figures['size_ratio']:.4f}x)"
            )
            targets.append(
                verdict(f"{megabytes} MB build / tar -czf", ratio, "<= 1.2x", ratio <= 1.2)
            )
            if megabytes == 200:
                targets.append(verdict("200 MB cache hit (s)", hit, "<= 0.2 s", hit <= 0.2))
    results["targets"] = targets
    return results


if __name__ == "__main__":
    main()
