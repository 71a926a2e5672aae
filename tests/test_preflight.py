"""Preflight (issue 5 §1): every problem found before deploying, in one report, in seconds.

Each test breaks a throwaway copy of the project in one way (a pickle, a handler, a requirement,
a size, a setting) and asserts that ``skdeploy check`` or the static checks name that problem,
and that the clean project passes. The Pulumi program runs the same static checks, so a refused
project raises :class:`PreflightError` under the mocks before any resource is declared.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
import sklearn
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from skdeploy.core.preflight import PreflightError, static_checks
from skdeploy.core.settings import load_stack_settings
from skdeploy.tooling import cli
from skdeploy.tooling.mockrun import run_program
from tests.preflight_support import (
    FRAMEWORK,
    STACK,
    STATIC_CHECKS,
    check_json,
    edit_handler,
    messages,
    project,
    static,
    tool_env_model,
)
from tests.support import REPO, STACKS


def clip_months(x: Any) -> Any:
    """A preprocessing step a training script defines for itself (pickled from ``__main__``)."""
    return np.clip(x, 0, 240)


class RunsShell:
    """A pickle payload: unpickling it calls ``os.system(command)``."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.system, (self.command,))


# --- the clean project --------------------------------------------------------------------------


def test_the_clean_project_passes_every_static_check(tmp_path: Path) -> None:
    """The committed model and handlers on instances: four checks run, nothing found."""
    report = static(project(tmp_path))
    assert report.checks_run == STATIC_CHECKS
    assert report.findings == []
    assert report.ok


@pytest.mark.parametrize("stack", STACKS)
def test_every_committed_stack_passes_the_static_checks(stack: str) -> None:
    """Each stacks/Pulumi.<stack>.yaml, as committed, deploys without an error or a warning."""
    report = static_checks(load_stack_settings(REPO, stack))
    assert report.findings == [], report.render()


def test_check_static_json_prints_the_report_and_exits_0_or_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`check --static --json`: {stack, ok, checks, findings}; exit 0 clean, 1 with an error."""
    copy = project(tmp_path)
    code, clean = check_json(copy, capsys, "--static")
    assert code == cli.EXIT_OK
    assert clean == {"stack": STACK, "ok": True, "checks": STATIC_CHECKS, "findings": []}
    edit_handler(copy, "def model_fn(", "def load_model(")
    code, refused = check_json(copy, capsys, "--static")
    assert code == cli.EXIT_FAILED
    assert refused["ok"] is False
    assert refused["checks"] == STATIC_CHECKS
    (finding,) = refused["findings"]
    assert set(finding) == {"check", "severity", "message"}
    assert finding["check"] == "handlers"
    assert finding["severity"] == "error"
    assert "defines no model_fn" in finding["message"]


def test_check_lists_every_problem_of_a_project_in_one_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Problems of different checks are all listed at once in the human report, exit 1."""
    copy = project(tmp_path)
    tool_env_model(copy / "model" / "model.joblib")
    edit_handler(
        copy, "import skdeploy_wire as wire\n", "import skdeploy_wire as wire\nimport torch\n"
    )
    (copy / "inference" / "requirements.txt").write_text("numpy==2.0.0\n")
    code = cli.main(["check", "--stack", STACK, "--project-dir", str(copy), "--static"])
    out = capsys.readouterr().out
    assert code == cli.EXIT_FAILED
    for check, text in [
        ("pickle", f"scikit-learn {sklearn.__version__}"),
        ("pickle", "numpy._core"),
        ("handlers", "imports 'torch'"),
        ("requirements", "'numpy==2.0.0' conflicts"),
    ]:
        assert any(f"[{check}]" in line and text in line for line in out.splitlines()), text
    assert "refused: 4 error(s)" in out


# --- settings -----------------------------------------------------------------------------------


def test_a_bad_stack_file_is_reported_by_check_with_every_settings_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bad settings: exit 1, one settings finding per problem, no other check run."""
    copy = project(
        tmp_path,
        {"instanceType": "large", "instanceCount": 0, "networkIsolation": "maybe"},
    )
    code, report = check_json(copy, capsys)
    assert code == cli.EXIT_FAILED
    assert report["checks"] == ["settings"]
    problems = [f["message"] for f in report["findings"]]
    assert [f["check"] for f in report["findings"]] == ["settings"] * 3
    for key in ("instanceType", "instanceCount", "networkIsolation"):
        assert sum(f"skdeploy:{key} =" in p for p in problems) == 1, key


def test_requirements_under_network_isolation_are_refused_through_the_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """networkIsolation: true with a requirements.txt: `skdeploy check` exits 1 and says why."""
    copy = project(tmp_path, {"networkIsolation": True})
    (copy / "inference" / "requirements.txt").write_text("lightgbm==4.3.0\n")
    code, report = check_json(copy, capsys)
    assert code == cli.EXIT_FAILED
    (finding,) = report["findings"]
    assert finding["check"] == "settings"
    assert "networkIsolation" in finding["message"]
    assert "requirements.txt" in finding["message"]


def test_the_requirements_check_refuses_isolation_itself(tmp_path: Path) -> None:
    """Settings built elsewhere (isolation on, with requirements.txt) are refused by preflight."""
    copy = project(tmp_path, {"networkIsolation": False})
    (copy / "inference" / "requirements.txt").write_text("lightgbm==4.3.0\n")
    settings = replace(load_stack_settings(copy, STACK), network_isolation=True)
    report = static_checks(settings)
    (error,) = report.errors
    assert error.check == "requirements"
    assert "network isolation" in error.message


# --- pickles ------------------------------------------------------------------------------------


def test_a_pickle_from_this_environment_is_refused_for_its_versions(tmp_path: Path) -> None:
    """scikit-learn 1.9 and numpy 2 (numpy._core) for the 1.2-1 container: two errors."""
    copy = project(tmp_path)
    tool_env_model(copy / "model" / "model.joblib")
    errors = messages(static(copy), "pickle")
    assert len(errors) == 2
    version, numpy_core = errors
    assert f"saved with scikit-learn {sklearn.__version__}" in version
    assert f"runs scikit-learn {FRAMEWORK.scikit_learn}" in version
    assert "numpy._core" in numpy_core
    assert f"numpy {FRAMEWORK.numpy}" in numpy_core


def test_allow_version_skew_warns_on_the_version_but_still_refuses_numpy_core(
    tmp_path: Path,
) -> None:
    """allowVersionSkew: true turns the version mismatch into a warning, never numpy._core."""
    copy = project(tmp_path, {"allowVersionSkew": True})
    tool_env_model(copy / "model" / "model.joblib")
    report = static(copy)
    (warning,) = messages(report, "pickle", "warning")
    assert f"saved with scikit-learn {sklearn.__version__}" in warning
    (error,) = messages(report, "pickle")
    assert "numpy._core" in error


def test_a_pickle_that_would_run_os_system_is_refused_and_never_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An os.system pickle: check and the program refuse it by name; the command never runs."""
    copy = project(tmp_path)
    marker = tmp_path / "os-system-ran"
    model = copy / "model" / "model.joblib"
    model.write_bytes(pickle.dumps(RunsShell(f"touch {marker}")))
    gadget = f"{os.system.__module__}.system"  # posix.system on Linux

    code, report = check_json(copy, capsys)  # the full check: static, then (not) load-and-predict
    assert code == cli.EXIT_FAILED
    assert "load-and-predict" not in report["checks"]
    assert [f["message"] for f in report["findings"] if f["check"] == "pickle"] == [
        f"model.joblib: {gadget}: runs shell commands and touches files"
    ]
    with pytest.raises(PreflightError, match=gadget):
        run_program(copy, STACK)
    assert not marker.exists()

    # The payload is live: a plain unpickler runs the command.
    subprocess.run(
        [sys.executable, "-c", "import pickle, sys; pickle.load(open(sys.argv[1], 'rb'))", model],
        check=True,
    )
    assert marker.exists()


def test_a_function_from_the_training_scripts_main_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pipeline holding a function defined in `python train.py` (__main__) is refused.

    The function is registered in this process's ``__main__`` while pickling, which writes the
    very bytes a training script writes, without starting an interpreter that imports sklearn.
    """
    monkeypatch.setattr(clip_months, "__module__", "__main__")
    monkeypatch.setattr(sys.modules["__main__"], "clip_months", clip_months, raising=False)
    copy = project(tmp_path)
    x = np.arange(20.0).reshape(-1, 1)
    model = make_pipeline(FunctionTransformer(clip_months), LinearRegression()).fit(x, x.ravel())
    joblib.dump(model, copy / "model" / "model.joblib")
    assert b"__main__" in (copy / "model" / "model.joblib").read_bytes()
    errors = messages(static(copy), "pickle")
    main = [e for e in errors if "__main__.clip_months" in e]
    assert len(main) == 1
    assert "defined in the training script (__main__)" in main[0]


def test_a_model_file_that_is_not_a_pickle_is_refused_under_a_pickle_name(tmp_path: Path) -> None:
    """A .joblib that is no pickle is an error; a listed data file (.json) only a warning."""
    copy = project(tmp_path, {"modelFiles": ["model.joblib", "labels.json"]})
    (copy / "model" / "labels.json").write_text('["low", "high"]')
    report = static(copy)
    assert report.ok
    (warning,) = messages(report, "pickle", "warning")
    assert warning.startswith("labels.json: not a pickle, so not inspected")
    (copy / "model" / "model.joblib").write_text('{"not": "a pickle"}')
    (error,) = messages(static(copy), "pickle")
    assert error.startswith("model.joblib: cannot be read as a joblib/pickle file")


# --- handlers -----------------------------------------------------------------------------------

MATCH_FUNCTION = '''

def _describe(value):
    """Python 3.10 syntax: the 1.2-1 container's Python 3.9 cannot parse it."""
    match value:
        case 0:
            return "zero"
        case _:
            return "other"
'''

TRANSFORM_FN = '''

def transform_fn(model, body, content_type, accept):
    """Does everything at once: the container refuses it next to predict_fn."""
    return predict_fn(input_fn(body, content_type), model)
'''


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        pytest.param(
            "\ndef model_fn(",
            MATCH_FUNCTION + "\n\ndef model_fn(",
            "does not parse under Python 3.9 (the 1.2-1 container's): Pattern matching",
            id="match-statement",
        ),
        pytest.param(
            "def model_fn(", "def load_model(", "inference.py defines no model_fn", id="no-model_fn"
        ),
        pytest.param(
            "\ndef model_fn(",
            TRANSFORM_FN + "\n\ndef model_fn(",
            "inference.py defines transform_fn together with input_fn, output_fn, predict_fn",
            id="transform_fn-and-predict_fn",
        ),
        pytest.param(
            "import skdeploy_wire as wire\n",
            "import skdeploy_wire as wire\nimport torch\n",
            "inference.py imports 'torch', which the container does not have",
            id="missing-package",
        ),
    ],
)
def test_a_broken_handler_is_refused_by_name(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    """Newer syntax, no model_fn, transform_fn with the others, an import the container lacks."""
    copy = project(tmp_path)
    edit_handler(copy, old, new)
    report = static(copy)
    (error,) = report.errors
    assert error.check == "handlers"
    assert expected in error.message


@pytest.mark.parametrize("shipped", ["_skdeploy_serve_app.py", "_skdeploy_mine/__init__.py"])
def test_a_handler_module_with_the_local_servers_prefix_is_refused(
    tmp_path: Path, shipped: str
) -> None:
    """A module or package named _skdeploy_* would share an import path with the local server."""
    copy = project(tmp_path)
    path = copy / "inference" / shipped
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("VALUE = 1\n")
    (message,) = messages(static(copy), "handlers")
    assert message.startswith(f"{shipped.split('/')[0].removesuffix('.py')}: handler module")
    assert "reserved for skdeploy's local server" in message


def test_model_fn_bound_under_a_top_level_if_counts(tmp_path: Path) -> None:
    """A model_fn bound at import time inside a top-level `if` is found, as getattr finds it."""
    copy = project(tmp_path)
    edit_handler(copy, "def model_fn(", "def _load(")
    assert messages(static(copy), "handlers")  # no model_fn at all: refused
    path = copy / "inference" / "inference.py"
    path.write_text(path.read_text() + "\n\nif os.name:\n    model_fn = _load\n")
    assert messages(static(copy), "handlers") == []


def test_an_import_listed_in_requirements_is_allowed_without_isolation(tmp_path: Path) -> None:
    """`import torch` passes once torch is in requirements.txt (networkIsolation false)."""
    copy = project(tmp_path, {"networkIsolation": False})
    edit_handler(
        copy, "import skdeploy_wire as wire\n", "import skdeploy_wire as wire\nimport torch\n"
    )
    assert "imports 'torch'" in messages(static(copy), "handlers")[0]
    (copy / "inference" / "requirements.txt").write_text("torch==2.3.1  # CPU wheels\n")
    report = static(copy)
    assert report.ok
    assert messages(report, "handlers") == []
    (warning,) = messages(report, "requirements", "warning")
    assert "installed at every container start" in warning


def test_requirements_in_a_vpc_warn_that_they_need_a_nat(tmp_path: Path) -> None:
    """requirements.txt with a VPC: a warning that start-up pip needs a NAT (unknowable here)."""
    vpc = {"subnetIds": ["subnet-0abc"], "securityGroupIds": ["sg-0abc"]}
    copy = project(tmp_path, {"vpc": vpc})
    assert static(copy).findings == []
    (copy / "inference" / "requirements.txt").write_text("lightgbm==4.3.0\n")
    report = static(copy)
    assert report.ok
    assert sum("NAT gateway" in m for m in messages(report, "requirements", "warning")) == 1


# --- requirements -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "severity", "expected"),
    [
        ("numpy==2.0.0", "error", "'numpy==2.0.0' conflicts with the container's numpy=="),
        ("Scikit_Learn>=1.3", "error", "conflicts with the container's scikit-learn=="),
        ("numpy==1.24.1", "warning", "numpy is already in the container (numpy==1.24.1)"),
    ],
)
def test_a_requirement_against_a_container_pin(
    tmp_path: Path, line: str, severity: str, expected: str
) -> None:
    """A pin the container contradicts is refused; one it already satisfies only warns."""
    copy = project(tmp_path, {"networkIsolation": False})
    (copy / "inference" / "requirements.txt").write_text(f"{line}\n")
    report = static(copy)
    found = [m for m in messages(report, "requirements", severity) if expected in m]
    assert len(found) == 1, report.render()
    assert report.ok is (severity == "warning")
