"""Preflight where it runs: the Pulumi program raises check's report, and the full check's
load-and-predict in the local runtime."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from skdeploy.core.constants import SAMPLES_FILE
from skdeploy.core.preflight import PreflightError
from skdeploy.tooling import cli, mockrun
from skdeploy.tooling.mockrun import run_program
from tests.preflight_support import (
    STACK,
    STATIC_CHECKS,
    check_json,
    copy_folder,
    edit_handler,
    project,
    static,
    tool_env_model,
)
from tests.support import shift_predictions

# --- the Pulumi program -------------------------------------------------------------------------


def test_the_program_raises_the_same_report_and_declares_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under the mocks, a refused project raises PreflightError with check's report: no resource."""
    copy = project(tmp_path, {"allowVersionSkew": True})
    monitors: list[mockrun.RecordingMonitor] = []

    class Watched(mockrun.RecordingMonitor):
        def __init__(self, mocks: mockrun.ProviderMocks) -> None:
            super().__init__(mocks)
            monitors.append(self)

    monkeypatch.setattr(mockrun, "RecordingMonitor", Watched)
    assert run_program(copy, STACK).resources  # the clean copy declares its resources
    tool_env_model(copy / "model" / "model.joblib")
    edit_handler(copy, "def model_fn(", "def load_model(")
    with pytest.raises(PreflightError) as caught:
        run_program(copy, STACK)
    expected = static(copy)
    assert str(caught.value) == expected.render()
    assert len(expected.errors) == 2  # numpy._core and model_fn; the version only warns
    clean, refused = monitors
    assert clean.declared
    assert refused.declared == []


# --- load and predict (the local runtime) -------------------------------------------------------


def test_full_check_loads_and_predicts_the_clean_project(
    runtime_python: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`skdeploy check`: static checks, then samples.json predicted in the runtime; exit 0."""
    copy = project(tmp_path)
    code, report = check_json(copy, capsys)
    assert code == cli.EXIT_OK, report
    assert report["checks"] == [*STATIC_CHECKS, "memory", "load-and-predict"]
    assert report["findings"] == []


def test_full_check_serves_each_variant_against_its_own_samples(
    runtime_python: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each variant and the shadow are served in turn; only the one off its samples is named."""
    variants = [
        {"name": "champion"},
        {"name": "challenger", "modelDir": "model2", "inferenceDir": "handlers2"},
    ]
    shadow = {"name": "quiet", "modelDir": "model2"}  # model2's samples, plain handlers: off
    copy = project(tmp_path, {"variants": variants, "shadow": shadow})
    model2 = copy_folder(copy, "model", "model2")
    samples = json.loads((model2 / SAMPLES_FILE).read_text())
    samples["predictions"] = [p + 1000.0 for p in samples["predictions"]]
    samples["targets"] = [t + 1000.0 for t in samples["targets"]]
    (model2 / SAMPLES_FILE).write_text(json.dumps(samples))
    handlers = copy_folder(copy, "inference", "handlers2")
    shift_predictions(handlers, 1000.0)
    code = cli.main(["check", "--stack", STACK, "--project-dir", str(copy), "--json"])
    captured = capsys.readouterr()
    assert code == cli.EXIT_FAILED
    (finding,) = json.loads(captured.out)["findings"]
    assert finding["check"] == "load-and-predict"
    assert finding["message"].startswith("quiet: 40/40 wrong")
    for name in ("champion", "challenger", "quiet"):  # a line for each few-second step
        assert f"load-and-predict of {name}: serving the model" in captured.err


def test_full_check_refuses_answers_that_differ_from_samples(
    runtime_python: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Expected predictions moved by +100: static checks pass, load-and-predict fails, exit 1."""
    copy = project(tmp_path)
    path = copy / "model" / SAMPLES_FILE
    samples = json.loads(path.read_text())
    samples["predictions"] = [p + 100 for p in samples["predictions"]]
    path.write_text(json.dumps(samples))
    code, report = check_json(copy, capsys)
    assert code == cli.EXIT_FAILED
    assert report["checks"] == [*STATIC_CHECKS, "memory", "load-and-predict"]
    (finding,) = report["findings"]
    assert finding["check"] == "load-and-predict"
    count = len(samples["predictions"])
    assert finding["message"].startswith(f"{count}/{count} wrong")


def test_full_check_cannot_run_without_a_local_runtime(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], deploy_only_framework: str
) -> None:
    """A deploy-only framework: load-and-predict cannot run, exit 2, "deploy only" and why."""
    copy = project(tmp_path, {"frameworkVersion": deploy_only_framework, "allowVersionSkew": True})
    code = cli.main(["check", "--stack", STACK, "--project-dir", str(copy)])
    captured = capsys.readouterr()
    assert code == cli.EXIT_CANNOT_RUN
    assert "load-and-predict cannot run here" in captured.err
    assert "framework 1.0-1 is deploy only, no local run: a made-up reason" in captured.err
    assert cli.main(["check", "--stack", STACK, "--project-dir", str(copy), "--static"]) == 0


def test_check_of_a_stack_without_a_file_cannot_run(tmp_path: Path) -> None:
    """A stack with no stack file is exit 2 (cannot run), like plan, serve and smoke."""
    assert cli.main(["check", "--stack", "nosuch", "--static", "--project-dir", str(tmp_path)]) == 2
