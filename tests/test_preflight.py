"""Preflight (issue 5 §1): every problem found before deploying, in one report, in seconds.

Each test breaks a throwaway copy of the project in one way (a pickle, a handler, a requirement,
a size, a setting) and asserts that ``skdeploy check`` or the static checks name that problem,
and that the clean project passes. The Pulumi program runs the same static checks, so a refused
project raises :class:`PreflightError` under the mocks before any resource is declared.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from collections.abc import Mapping
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

from skdeploy.core.constants import MAX_PAYLOAD_BYTES, MAX_SERVERLESS_PAYLOAD_BYTES, SAMPLES_FILE
from skdeploy.core.frameworks import DEFAULT_FRAMEWORK_VERSION, get_framework
from skdeploy.core.preflight import PreflightError, PreflightReport, static_checks
from skdeploy.core.settings import load_stack_settings
from skdeploy.tooling import cli, mockrun
from skdeploy.tooling.mockrun import run_program
from tests.conftest import make_project
from tests.support import REPO, STACKS, shift_predictions

STACK = "dev"
FRAMEWORK = get_framework(DEFAULT_FRAMEWORK_VERSION)
STATIC_CHECKS = ["pickle", "handlers", "requirements", "sizes"]


def clip_months(x: Any) -> Any:
    """A preprocessing step a training script defines for itself (pickled from ``__main__``)."""
    return np.clip(x, 0, 240)


class RunsShell:
    """A pickle payload: unpickling it calls ``os.system(command)``."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.system, (self.command,))


# --- helpers ------------------------------------------------------------------------------------


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


# --- sizes --------------------------------------------------------------------------------------

#: Bytes the model file is padded to: over 70 % of 4 GiB once per each of 2 workers (ml.t2.medium)
#: and of a 2048 MB serverless endpoint, under it for ml.r5.2xlarge and 3072 MB.
PADDED_MODEL_BYTES = 1_600_000_000


@pytest.mark.parametrize(
    ("config", "refusal"),
    [
        ({"instanceType": "ml.t2.medium"}, "loaded by 2 workers need about 3.2 GB"),
        ({"instanceType": "ml.r5.2xlarge"}, None),
        ({"serverless": {"memoryMb": 2048}}, "of the 2048 MB of the serverless endpoint"),
        ({"serverless": {"memoryMb": 3072}}, None),
    ],
)
def test_a_model_too_large_for_the_endpoint_memory_is_refused(
    tmp_path: Path, config: dict[str, object], refusal: str | None
) -> None:
    """1.6 GB of model: refused on ml.t2.medium and 2 GB serverless, fine on bigger memory.

    The committed joblib is padded with a sparse hole (joblib and the inspection stop at the
    pickle's STOP opcode), so the file really is 1.6 GB, against the real memory table, without
    writing 1.6 GB.
    """
    copy = project(tmp_path, config)
    os.truncate(copy / "model" / "model.joblib", PADDED_MODEL_BYTES)
    report = static(copy)
    assert messages(report, "pickle") == []  # still a valid joblib
    errors = messages(report, "sizes")
    if refusal is None:
        assert errors == []
    else:
        (error,) = errors
        assert "model files of 1600 MB" in error
        assert refusal in error


def copy_folder(copy: Path, name: str, to: str) -> Path:
    """A second model or handler folder beside the copy's own (for a second variant)."""
    shutil.copytree(copy / name, copy / to)
    return copy / to


def test_each_variant_is_held_to_its_own_instance_memory(tmp_path: Path) -> None:
    """The 1.6 GB challenger on ml.t2.medium is refused by name; the champion on its own is fine."""
    variants = [
        {"name": "champion", "instanceType": "ml.t2.medium"},
        {"name": "challenger", "modelDir": "big", "instanceType": "ml.t2.medium"},
    ]
    copy = project(tmp_path, {"variants": variants})
    os.truncate(copy_folder(copy, "model", "big") / "model.joblib", PADDED_MODEL_BYTES)
    (error,) = messages(static(copy), "sizes")
    assert error.startswith("challenger: model files of 1600 MB loaded by 2 workers")
    shadow = {"name": "shadow", "modelDir": "big", "instanceType": "ml.r5.2xlarge"}
    roomy = [{**variants[0]}, {**variants[1], "instanceType": "ml.r5.2xlarge"}]
    copy = project(tmp_path / "roomy", {"variants": roomy, "shadow": shadow})
    os.truncate(copy_folder(copy, "model", "big") / "model.joblib", PADDED_MODEL_BYTES)
    assert messages(static(copy), "sizes") == []


def test_each_variants_samples_are_checked_before_the_deploy(tmp_path: Path) -> None:
    """A challenger's unusable samples.json is found statically, named by its folder."""
    variants = [{"name": "champion"}, {"name": "challenger", "modelDir": "model2"}]
    copy = project(tmp_path, {"variants": variants})
    (copy_folder(copy, "model", "model2") / SAMPLES_FILE).write_text('{"instances": 3}')
    (error,) = messages(static(copy), "sizes")
    assert error.startswith("model2/samples.json cannot be used")


def test_a_variants_requirements_turn_isolation_off_or_refuse_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """requirements.txt in a variant's handlers: isolation defaults off, and `true` is refused."""
    variants = [{"name": "champion"}, {"name": "challenger", "inferenceDir": "handlers2"}]
    copy = project(tmp_path, {"variants": variants})
    handlers = copy_folder(copy, "inference", "handlers2")
    (handlers / "requirements.txt").write_text("lightgbm==4.3.0\n")
    assert not load_stack_settings(copy, STACK).network_isolation
    warnings = messages(static(copy), "requirements", "warning")
    assert any(w.startswith("handlers2/requirements.txt is installed") for w in warnings)

    copy = project(tmp_path / "isolated", {"variants": variants, "networkIsolation": True})
    (copy_folder(copy, "inference", "handlers2") / "requirements.txt").write_text("lightgbm\n")
    code, report = check_json(copy, capsys)
    assert code == cli.EXIT_FAILED
    (finding,) = report["findings"]
    assert "networkIsolation" in finding["message"]
    assert "requirements.txt exists in handlers2" in finding["message"]


@pytest.mark.parametrize(
    ("config", "row_bytes", "limit"),
    [
        ({}, MAX_PAYLOAD_BYTES + 100, MAX_PAYLOAD_BYTES),
        ({}, MAX_SERVERLESS_PAYLOAD_BYTES + 100, None),
        ({"serverless": {"memoryMb": 2048}}, MAX_SERVERLESS_PAYLOAD_BYTES + 100, 4_000_000),
    ],
)
def test_a_sample_too_large_for_one_request_is_refused(
    tmp_path: Path, config: dict[str, object], row_bytes: int, limit: int | None
) -> None:
    """A sample over 6 MiB (instances) or 4 MB (serverless) cannot be sent: refused by name."""
    copy = project(tmp_path, config)
    write_samples(copy, [[0.5] * (row_bytes // 4)])  # "0.5," per feature
    errors = messages(static(copy), "sizes")
    if limit is None:
        assert errors == []
    else:
        (error,) = errors
        assert f"samples.json: sample 0 alone is over the {limit}-byte payload limit" in error


def test_a_large_samples_file_is_fine_when_its_requests_fit(tmp_path: Path) -> None:
    """A samples.json over 6 MiB of small rows passes: it is sent in several requests."""
    copy = project(tmp_path)
    path = write_samples(copy, [[1.5] * 1000] * 1700)  # 1,700 rows of 4 kB
    assert path.stat().st_size > MAX_PAYLOAD_BYTES
    assert messages(static(copy), "sizes") == []


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
