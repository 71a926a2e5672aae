"""What the preflight tests share: a throwaway project with its own dev stack, and its checks."""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from sklearn.linear_model import LinearRegression

from skdeploy.core.constants import SAMPLES_FILE
from skdeploy.core.frameworks import DEFAULT_FRAMEWORK_VERSION, get_framework
from skdeploy.core.preflight import PreflightReport, static_checks
from skdeploy.core.settings import load_stack_settings
from skdeploy.tooling import cli
from tests.conftest import make_project

STACK = "dev"
FRAMEWORK = get_framework(DEFAULT_FRAMEWORK_VERSION)
STATIC_CHECKS = ["pickle", "handlers", "requirements", "sizes"]


def project(tmp_path: Path, config: Mapping[str, object] | None = None) -> Path:
    """A copy of the project with its own dev stack (instances, ml.m5.large) plus ``config``.

    The stack is written here rather than taken from the committed dev stack, so that these
    tests keep meaning the same thing when the committed stacks change.
    """
    values = {f"skdeploy:{key}": value for key, value in (config or {}).items()}
    return make_project(tmp_path / "project", config=values, stack=STACK)


def static(copy: Path) -> PreflightReport:
    """The static checks of the copy's dev stack, as the Pulumi program runs them."""
    return static_checks(load_stack_settings(copy, STACK))


def messages(report: PreflightReport, check: str, severity: str = "error") -> list[str]:
    """Messages of one check and severity."""
    return [f.message for f in report.findings if f.check == check and f.severity == severity]


def check_json(copy: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, Any]:
    """``skdeploy check --json`` on the copy: exit code and the printed report."""
    code = cli.main(["check", "--stack", STACK, "--project-dir", str(copy), "--json", *extra])
    return code, json.loads(capsys.readouterr().out)


def edit_handler(copy: Path, old: str, new: str) -> None:
    """Replace one unique piece of the copy's real inference.py."""
    path = copy / "inference" / "inference.py"
    source = path.read_text()
    assert source.count(old) == 1, old
    path.write_text(source.replace(old, new))


def tool_env_model(path: Path) -> None:
    """A regression fitted and dumped here: this environment's scikit-learn and numpy 2."""
    x = np.arange(1.0, 41.0).reshape(-1, 1)
    joblib.dump(LinearRegression().fit(x, 22.5 * x.ravel() + 3000.0), path)


def write_samples(copy: Path, instances: list[Any]) -> Path:
    """Replace samples.json with these instances (and one expected answer each)."""
    path = copy / "model" / SAMPLES_FILE
    path.write_text(json.dumps({"instances": instances, "predictions": [0.0] * len(instances)}))
    return path


def copy_folder(copy: Path, name: str, to: str) -> Path:
    """A second model or handler folder beside the copy's own (for a second variant)."""
    shutil.copytree(copy / name, copy / to)
    return copy / to
