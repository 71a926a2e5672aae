"""Shared by the benchmarks: the machine, timing, verdicts, the runtime and throwaway projects.

Every benchmark prints its own figures and returns them as a dict, so ``run.py`` can run them all
and collect the results. Ratios are the claims (a machine twice as fast makes both sides twice
as fast); absolute times are printed together with the machine they were taken on.
"""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from skdeploy.core.constants import BUILD_DIR
from skdeploy.core.frameworks import DEFAULT_FRAMEWORK_VERSION, get_framework
from skdeploy.tooling.runtime import ensure_runtime

REPO = Path(__file__).resolve().parents[1]
BENCH_DIR = REPO / "bench"
#: The stack every local-endpoint benchmark serves (its settings come from stacks/).
STACK = "dev"
#: The 10-feature model every serving benchmark uses; trained in the runtime (sklearn 1.2.1).
FEATURES = 10
#: Script run by the runtime's Python (3.9): the handler benchmark and the model training.
RUNTIME_SCRIPT = BENCH_DIR / "handlers_runtime.py"


def machine() -> dict[str, str]:
    """What the figures were measured on: CPU, cores, memory, OS, Python and how busy it was."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    try:
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        load = "unknown"
    return {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "cpu": model,
        "nproc": str(os.cpu_count()),
        "memory": memory,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "load average (1, 5, 15 min) at start": load,
    }


def best_of(function: Callable[[], object], *, repeat: int = 5, min_time: float = 0.05) -> float:
    """Seconds per call: the fastest of ``repeat`` samples, each looping for >= ``min_time``.

    The minimum is the least disturbed measurement on a shared machine; looping makes calls of a
    few microseconds measurable.
    """
    start = time.perf_counter()
    function()
    once = time.perf_counter() - start
    loops = max(1, int(min_time / max(once, 1e-7)))
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(loops):
            function()
        samples.append((time.perf_counter() - start) / loops)
    return min(samples)


def percentile(values: list[float], share: float) -> float:
    """The ``share`` quantile (0.5 = median) by nearest rank, of a non-empty list."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(share * len(ordered) + 0.5) - 1))
    return ordered[index]


def median(values: list[float]) -> float:
    return statistics.median(values)


def verdict(name: str, value: float, target: str, passed: bool) -> dict[str, object]:
    """Print and return one target's outcome: PASS or MISS, never an exception."""
    outcome = "PASS" if passed else "MISS"
    print(f"  [{outcome}] {name}: {value:.2f} (target {target})")
    return {"target": name, "value": round(value, 3), "goal": target, "outcome": outcome}


def runtime_python() -> Path:
    """The 1.2-1 runtime interpreter, built under build/ if needed (``skdeploy runtime``)."""
    return ensure_runtime(get_framework(DEFAULT_FRAMEWORK_VERSION), REPO / BUILD_DIR)


def runtime_env(work: Path) -> dict[str, str]:
    """A clean environment for the runtime's Python: sagemaker-containers' paths under ``work``."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(work),
        "SAGEMAKER_BASE_DIR": str(work / "opt_ml"),
        "SAGEMAKER_CONTAINER_LOG_LEVEL": "40",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def train_model(python: Path, out: Path, work: Path) -> Path:
    """Fit the 10-feature LinearRegression in the runtime and write it to ``out`` (joblib)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [str(python), str(RUNTIME_SCRIPT), "train", str(out)],
        env=runtime_env(work),
        check=True,
        timeout=120,
    )
    return out


def project_copy(dest: Path, *, model: Path, inference_source: str | None = None) -> Path:
    """A copy of the project serving ``model``; ``inference_source`` replaces inference.py.

    ``build/runtime`` links to the repository's, so the runtime virtualenv is built only once.
    """
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy2(REPO / name, dest / name)
    for folder in ("model", "inference", "stacks"):
        shutil.copytree(REPO / folder, dest / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(model, dest / "model" / "model.joblib")
    if inference_source is not None:
        (dest / "inference" / "inference.py").write_text(inference_source)
    shared = REPO / BUILD_DIR / "runtime"
    shared.mkdir(parents=True, exist_ok=True)
    (dest / BUILD_DIR).mkdir(exist_ok=True)
    (dest / BUILD_DIR / "runtime").symlink_to(shared, target_is_directory=True)
    return dest


#: inference.py of a project that keeps the container's default input, predict and output
#: handlers: what a user who writes only model_fn gets.
DEFAULT_HANDLERS_SOURCE = (
    "import glob, os, joblib\n"
    "def model_fn(model_dir):\n"
    "    return joblib.load(glob.glob(os.path.join(model_dir, '*.joblib'))[0])\n"
)


def header(title: str) -> None:
    print(f"\n== {title} ==")
