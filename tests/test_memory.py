"""Memory from a real load (issue 14, part 3), and a served model loaded once per worker.

The ``memory`` check of ``skdeploy check`` loads the model in the runtime as a serving worker
does and compares the measured peak, times the workers, with the endpoint's memory. The models
here are the project's own regression, written by the runtime's scikit-learn with one fitted
attribute it never reads at predict time (``singular_``) grown to a large array of zeros and
saved with ``compress=3``: a file of a few MB that expands to hundreds of MB or a GiB when
loaded, which the static file-size check cannot see.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
from pathlib import Path

import pytest

from skdeploy.core.preflight import MemoryLimit, PreflightReport
from skdeploy.core.settings import load_stack_settings
from skdeploy.tooling import cli, local, memory
from tests.conftest import make_project, running_serve
from tests.support import REPO

STACK = "dev"
#: Arrays a 1024 MB serverless endpoint cannot hold (70 % of it is 717 MiB), and one it can.
TOO_LARGE_MIB = 1024
FITTING_MIB = 200

_PAD = """
import sys, joblib, numpy as np
model = joblib.load(sys.argv[1])
model.singular_ = np.zeros(int(sys.argv[3]) * 1024 * 1024 // 8)  # unused by predict
joblib.dump(model, sys.argv[2], compress=3)
"""


def padded_project(tmp_path: Path, runtime_python: Path, mib: int, memory_mb: int) -> Path:
    """A project on a serverless stack of ``memory_mb`` whose model loads ``mib`` MiB more."""
    project = make_project(
        tmp_path / "project", config={"skdeploy:serverless": {"memoryMb": memory_mb}}
    )
    model = project / "model" / "model.joblib"
    subprocess.run(
        [
            str(runtime_python),
            "-c",
            _PAD,
            str(REPO / "model" / "model.joblib"),
            str(model),
            str(mib),
        ],
        check=True,
        timeout=120,
    )
    assert model.stat().st_size < 10_000_000  # a few MB on disk
    return project


def check_json(
    project: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, dict[str, object], str]:
    """``skdeploy check --json``: exit code, the printed report and what went to stderr."""
    code = cli.main(["check", "--stack", STACK, "--project-dir", str(project), "--json", *extra])
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.err


def peak_mib(text: str) -> int:
    """The measured peak a memory message or progress line gives, in MiB."""
    match = re.search(r"a serving worker peaked at ([\d,]+) MiB", text)
    assert match, text
    return int(match.group(1).replace(",", ""))


# --- the check, through the real command ---------------------------------------------------------


def test_a_model_whose_load_outgrows_a_1024_mb_serverless_endpoint_is_refused_though_its_file_fits(
    tmp_path: Path, runtime_python: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 5 MB file that loads 1 GiB of arrays: --static passes it, the measured load refuses it."""
    project = padded_project(tmp_path, runtime_python, TOO_LARGE_MIB, 1024)
    code, report, _ = check_json(project, capsys, "--static")
    assert (code, report["findings"]) == (cli.EXIT_OK, [])  # the file size fits
    code, report, _ = check_json(project, capsys)
    assert code == cli.EXIT_FAILED
    assert report["checks"] == ["pickle", "handlers", "requirements", "sizes", "memory"]
    (finding,) = report["findings"]  # type: ignore[misc]
    assert (finding["check"], finding["severity"]) == ("memory", "error")
    message = finding["message"]
    assert message.startswith("model.joblib (")
    assert peak_mib(message) > TOO_LARGE_MIB  # a real load: the arrays and the serving stack
    assert "1 worker: " in message
    assert "over 70 % of the 1024 MB of the serverless endpoint (717 MiB)" in message
    assert message.endswith(
        "raise serverless.memoryMb (at most 6144) or use instances, or make the model smaller"
    )


def test_a_model_that_fits_once_loaded_passes_with_its_measured_peak_shown(
    tmp_path: Path, runtime_python: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """200 MiB of arrays in 1024 MB serverless: measured, within budget, then load-and-predict."""
    project = padded_project(tmp_path, runtime_python, FITTING_MIB, 1024)
    code, report, err = check_json(project, capsys)
    assert code == cli.EXIT_OK, report
    assert report["checks"] == [
        "pickle",
        "handlers",
        "requirements",
        "sizes",
        "memory",
        "load-and-predict",
    ]
    assert report["findings"] == []
    (line,) = [line for line in err.splitlines() if "within 70 %" in line]
    assert line.startswith("skdeploy: memory of model.joblib (")
    assert FITTING_MIB < peak_mib(line) < 717
    assert "of the 1024 MB of the serverless endpoint" in line


def test_a_model_fn_that_raises_is_a_memory_error_with_its_traceback(
    tmp_path: Path, runtime_python: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nothing to measure when model_fn raises: refused with the traceback, nothing served."""
    project = make_project(tmp_path / "project")
    (project / "inference" / "inference.py").write_text(
        "def model_fn(model_dir):\n    raise RuntimeError('no model for ' + model_dir)\n"
    )
    code, report, _ = check_json(project, capsys)
    assert code == cli.EXIT_FAILED
    assert "load-and-predict" not in report["checks"]
    (finding,) = report["findings"]  # type: ignore[misc]
    assert finding["check"] == "memory"
    assert "the model does not load in the runtime" in finding["message"]
    assert "RuntimeError: no model for" in finding["message"]


# --- the comparison: workers, instance types, variants (measurement stubbed) --------------------


def load_report(peak_mib: int) -> local.LoadReport:
    """A measured load peaking at ``peak_mib`` MiB."""
    return local.LoadReport(
        pid=1,
        model="RandomForestRegressor",
        seconds=1.0,
        before_bytes=130 << 20,
        peak_bytes=peak_mib << 20,
    )


def test_each_worker_of_an_instance_counts_and_each_variant_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """1,500 MiB a worker: 2 workers overflow ml.t2.medium, 4 fit ml.r5.xlarge; named by variant."""
    variants = [
        {"name": "small", "instanceType": "ml.t2.medium"},
        {"name": "roomy", "instanceType": "ml.r5.xlarge"},
    ]
    project = make_project(tmp_path / "project", config={"skdeploy:variants": variants})
    settings = load_stack_settings(project, STACK)
    measured: list[str] = []

    def measure(settings: object, variant: object, *, timeout: float) -> local.LoadReport:
        measured.append(variant.name)  # type: ignore[attr-defined]
        return load_report(1500)

    monkeypatch.setattr(memory, "measure", measure)
    report = PreflightReport(STACK)
    lines: list[str] = []
    memory.check_memory(settings, report, say=lines.append)
    assert measured == ["small"]  # the same model and handlers are measured once
    (error,) = report.errors
    assert error.message.startswith("small: model.joblib (")
    assert (
        "2 workers per instance (one per vCPU): 3,000 MiB, over 70 % of the 4 GiB of "
        "ml.t2.medium (2,867 MiB)" in error.message
    )
    assert error.message.endswith("choose a larger instance, or make the model smaller")
    (fits,) = [line for line in lines if "within" in line]
    assert fits.startswith("memory of roomy: ")
    assert (
        "4 workers per instance (one per vCPU): 6,000 MiB, within 70 % of the 32 GiB of "
        "ml.r5.xlarge" in fits
    )


def test_serverless_counts_one_worker() -> None:
    """A serverless endpoint holds one copy: 700 MiB fits 1024 MB, 720 MiB does not."""
    limit = MemoryLimit(1024 << 20, 1, "the 1024 MB of the serverless endpoint", "fix")
    assert memory.Verdict(load_report(700), limit).fits
    assert not memory.Verdict(load_report(720), limit).fits


# --- serve loads the model once per worker --------------------------------------------------------

#: Appended to the project's inference.py: each model_fn call appends its pid to a file, after a
#: pause that gevent (patched in a worker) spends serving other requests.
COUNTING_MODEL_FN = """

import os as _os
import time as _time

_counted_model_fn = model_fn


def model_fn(model_dir):
    with open({log!r}, "a") as _log:
        _log.write("%d\\n" % _os.getpid())
    _time.sleep(1.0)
    return _counted_model_fn(model_dir)
"""

WORKERS = 3


def test_serve_loads_the_model_exactly_once_per_worker(
    tmp_path: Path, runtime_python: Path
) -> None:
    """With 3 workers, model_fn runs 3 times, once in each, however many requests arrive."""
    project = make_project(tmp_path / "project")
    log = tmp_path / "model_fn.log"
    inference = project / "inference" / "inference.py"
    inference.write_text(inference.read_text() + COUNTING_MODEL_FN.format(log=str(log)))
    with running_serve(project, tmp_path / "logs", "--workers", str(WORKERS)) as endpoint:
        loads = log.read_text().split()
        ready = json.loads((tmp_path / "logs" / "ready.json").read_text())
        pings = [
            threading.Thread(target=local.ping, args=("127.0.0.1", endpoint.port))
            for _ in range(30)
        ]
        for thread in pings:
            thread.start()
        for thread in pings:
            thread.join()
        after = log.read_text().split()
    assert len(loads) == WORKERS
    assert len(set(loads)) == WORKERS  # each in its own worker
    assert sorted(str(load["pid"]) for load in ready["loads"]) == sorted(loads)
    assert after == loads


def test_the_measurement_matches_what_a_serving_worker_reports(
    tmp_path: Path, runtime_python: Path
) -> None:
    """check's measured peak and a gunicorn worker's own peak agree within 10 %."""
    project = padded_project(tmp_path, runtime_python, FITTING_MIB, 1024)
    settings = load_stack_settings(project, STACK)
    measured = memory.measure(settings, settings.served_variants[0], timeout=120)
    with running_serve(project, tmp_path / "logs"):
        ready = json.loads((tmp_path / "logs" / "ready.json").read_text())
    (worker,) = ready["loads"]
    assert measured.peak_bytes > FITTING_MIB << 20
    assert abs(measured.peak_bytes - worker["peak_bytes"]) < 0.1 * worker["peak_bytes"]
