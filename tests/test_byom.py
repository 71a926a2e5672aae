"""Bring your own model: the models users have, through check → serve → smoke → plan.

Each model is trained by ``model/byom/train.py`` in the container-faithful runtime, as a user
trains for the container, into a throwaway copy of the project:

- ``custom``: a Pipeline with the user's own transformers from ``inference/`` (a module and a
  package), admitted by ``skdeploy:trustedModules``;
- ``classifier``: string labels, probabilities and accuracy;
- ``mixed``: a ColumnTransformer over named numeric and text columns.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from skdeploy.core.artifact import build_for_settings
from skdeploy.core.settings import load_stack_settings
from skdeploy.core.trusted import TRUSTED_TAG
from skdeploy.tooling import cli
from skdeploy.tooling.plan import build_plan, diff_plans
from tests.conftest import TEST_STACK, make_project, running_serve
from tests.support import REPO, WIRE_MEMBERS

BYOM = REPO / "model" / "byom"
TRUST = ["my_features", "featurelib"]
MODEL = "aws:sagemaker/model:Model"


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``skdeploy ARGV`` in this process: exit code, stdout, stderr."""
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def trained(
    runtime_python: Path, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], Path]:
    """``trained(kind)``: a folder with model.joblib and samples.json, trained once per kind."""
    root = tmp_path_factory.mktemp("byom-models")
    handlers = root / "inference"
    handlers.mkdir()
    shutil.copy2(BYOM / "my_features.py", handlers)
    shutil.copytree(BYOM / "featurelib", handlers / "featurelib")
    done: dict[str, Path] = {}

    def train(kind: str) -> Path:
        if kind not in done:
            out = root / kind
            subprocess.run(
                [str(runtime_python), str(BYOM / "train.py"), kind, str(out), str(handlers)],
                check=True,
                capture_output=True,
            )
            done[kind] = out
        return done[kind]

    return train


def byom_project(
    tmp_path: Path, model: Path, config: dict[str, object] | None = None, *, modules: bool = True
) -> Path:
    """A project copy serving ``model``, with the user's modules in ``inference/``."""
    project = make_project(tmp_path / "project", config=config)
    for name in ("model.joblib", "samples.json"):
        shutil.copy2(model / name, project / "model" / name)
    if modules:
        shutil.copy2(BYOM / "my_features.py", project / "inference")
        shutil.copytree(BYOM / "featurelib", project / "inference" / "featurelib")
    return project


def check_json(capsys: pytest.CaptureFixture[str], project: Path, *extra: str) -> Any:
    code, out, err = run_cli(
        capsys, "check", "--stack", TEST_STACK, "--project-dir", str(project), "--json", *extra
    )
    report = json.loads(out)
    report["exit_code"] = code
    report["stderr"] = err
    return report


def messages(report: Any, severity: str) -> list[str]:
    return [f["message"] for f in report["findings"] if f["severity"] == severity]


def smoke_json(capsys: pytest.CaptureFixture[str], project: Path, url: str, *extra: str) -> Any:
    """``skdeploy smoke --json`` against a local endpoint; the report with its exit code."""
    code, out, _ = run_cli(
        capsys,
        "smoke",
        "--stack",
        TEST_STACK,
        "--project-dir",
        str(project),
        "--endpoint-url",
        url,
        "--calls",
        "3",
        "--json",
        *extra,
    )
    report = json.loads(out)
    report["exit_code"] = code
    return report


def statuses(report: Any) -> dict[str, str]:
    return {c["name"]: c["status"] for c in report["checks"]}


# --- Custom transformers: trustedModules -------------------------------------------------------


def test_a_custom_transformer_is_refused_until_its_module_is_trusted(
    trained: Callable[[str], Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without trustedModules the check names each class and says how to trust its module."""
    project = byom_project(tmp_path, trained("custom"))

    report = check_json(capsys, project, "--static")

    assert report["exit_code"] == 1
    errors = messages(report, "error")
    assert any("my_features.AddRatio" in m and "trustedModules" in m for m in errors), errors
    assert any(
        "featurelib.clip.ClipToTrainingRange" in m and "trustedModules" in m for m in errors
    ), errors


def test_a_trusted_custom_pipeline_goes_through_check_serve_and_smoke(
    trained: Callable[[str], Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Trusted: check loads and predicts it, lists what it admits; serve and smoke pass."""
    project = byom_project(tmp_path, trained("custom"), {"skdeploy:trustedModules": TRUST})

    report = check_json(capsys, project)

    assert report["exit_code"] == 0, report
    notes = messages(report, "info")
    assert any("my_features (code/my_features.py): AddRatio" in m for m in notes), notes
    assert any(
        "featurelib.clip (code/featurelib/clip.py): ClipToTrainingRange" in m for m in notes
    ), notes
    assert "load-and-predict" in report["checks"]
    with running_serve(project, tmp_path / "logs") as endpoint:
        smoke = smoke_json(capsys, project, endpoint.url)
    assert smoke["exit_code"] == 0, smoke
    assert statuses(smoke)["predictions"] == "PASS"
    assert statuses(smoke)["metrics"] == "PASS"


def test_the_artifact_ships_the_module_and_the_package(
    trained: Callable[[str], Path], tmp_path: Path
) -> None:
    """code/ holds inference.py, skdeploy_wire/'s, my_features.py and featurelib/'s files."""
    project = byom_project(tmp_path, trained("custom"), {"skdeploy:trustedModules": TRUST})
    (project / "inference" / "notebooks").mkdir()
    (project / "inference" / "notebooks" / "scratch.py").write_text("x = 1\n")
    (project / "inference" / "featurelib" / "__pycache__").mkdir()
    (project / "inference" / "featurelib" / "__pycache__" / "clip.cpython-39.pyc").write_bytes(b"")
    settings = load_stack_settings(project, TEST_STACK)

    built = build_for_settings(settings)

    with tarfile.open(built.path) as archive:
        names = sorted(archive.getnames())
    assert [n for n in names if n.startswith("code/")] == [
        "code/featurelib/__init__.py",
        "code/featurelib/clip.py",
        "code/inference.py",
        "code/my_features.py",
        *WIRE_MEMBERS,
    ]


def test_serve_refuses_an_untrusted_custom_class_before_loading_it(
    trained: Callable[[str], Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """serve inspects first: an untrusted class is not unpickled on this machine."""
    project = byom_project(tmp_path, trained("custom"))

    code, _, err = run_cli(
        capsys, "serve", "--stack", TEST_STACK, "--project-dir", str(project), "--port", "0"
    )

    assert code == cli.EXIT_FAILED
    assert "not loading the model" in err
    assert "my_features.AddRatio" in err


def test_the_plan_shows_the_trust_on_the_model(
    trained: Callable[[str], Path], tmp_path: Path
) -> None:
    """Trusting one more module is a visible change of the Model in the plan diff."""
    project = byom_project(tmp_path, trained("custom"), {"skdeploy:trustedModules": TRUST})
    (project / "inference" / "extras.py").write_text("class Extra:\n    pass\n")
    base = build_plan(project, TEST_STACK)
    stack_file = project / "stacks" / f"Pulumi.{TEST_STACK}.yaml"
    config = yaml.safe_load(stack_file.read_text())
    config["config"]["skdeploy:trustedModules"] = [*TRUST, "extras"]
    stack_file.write_text(yaml.safe_dump(config))

    diff = diff_plans(base, build_plan(project, TEST_STACK, previous=base))

    (model,) = [c for c in diff.resources if c.resource.type == MODEL]
    assert model.action == "update"
    assert model.detail_lines() == [
        f'tags["{TRUSTED_TAG}"]: "my_features featurelib" → "my_features featurelib extras"'
    ]


def test_pulumi_up_refuses_an_untrusted_custom_class(
    trained: Callable[[str], Path], tmp_path: Path
) -> None:
    """The program (what pulumi up runs) refuses the model before declaring anything."""
    from skdeploy.core.preflight import PreflightError

    project = byom_project(tmp_path, trained("custom"))

    with pytest.raises(PreflightError, match=r"my_features\.AddRatio"):
        build_plan(project, TEST_STACK)


# --- What trust does not admit (an attacker's pickle, a user's odd setting) --------------------


def _pickle_naming(module: str, name: str) -> bytes:
    """A protocol-2 pickle that calls ``module.name()`` on load (GLOBAL + REDUCE)."""
    return b"\x80\x02c" + f"{module}\n{name}\n".encode() + b")R."


@pytest.mark.parametrize(
    ("source", "name"),
    [
        ("def make_features():\n    return 1\n", "make_features"),  # a function
        ("from os import system\n", "system"),  # an imported name
        ("import os\nrun = os.system\n", "run"),  # an assignment
        ("if True:\n    class Hidden:\n        pass\n", "Hidden"),  # not at the top level
        ("class Thing:\n    pass\n", "Thing.__init__"),  # an attribute path
        # A class name rebound to something else after the class statement:
        ("import os\nclass Thing:\n    pass\nThing = os.system\n", "Thing"),
        ("import os\nclass Thing:\n    pass\ndef f():\n    global Thing\n", "Thing"),
        ("class Thing:\n    pass\ntry:\n    pass\nexcept Exception as Thing:\n    pass\n", "Thing"),
        ("class Thing:\n    pass\nfrom os import *\n", "Thing"),  # a star import
        # A decorator may return anything in place of the class:
        ("import os\n@(lambda c: os.system)\nclass Thing:\n    pass\n", "Thing"),
        ("import functools\n@functools.lru_cache\nclass Thing:\n    pass\n", "Thing"),
        ("import os\nclass Thing:\n    pass\nglobals()['Thing'] = os.system\n", "Thing"),
        (
            "import sys, os\nclass Thing:\n    pass\n"
            "setattr(sys.modules[__name__], 'Thing', os.system)\n",
            "Thing",
        ),
        ("import os, my_features as me\nclass Thing:\n    pass\nme.Thing = os.system\n", "Thing"),
    ],
)
def test_trust_admits_top_level_classes_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], source: str, name: str
) -> None:
    """A trusted module's functions, imported names and attributes stay refused."""
    project = make_project(
        tmp_path / "project", config={"skdeploy:trustedModules": ["my_features"]}
    )
    (project / "inference" / "my_features.py").write_text(source + "\nclass Ok:\n    pass\n")
    module, _, attribute = f"my_features.{name}".partition(".")
    (project / "model" / "model.joblib").write_bytes(_pickle_naming(module, attribute))

    report = check_json(capsys, project, "--static")

    assert report["exit_code"] == 1
    assert any(f"my_features.{name}" in m for m in messages(report, "error")), report


def test_a_trusted_class_passes_the_inspector(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Control for the test above: the same pickle naming a top-level class passes."""
    project = make_project(
        tmp_path / "project", config={"skdeploy:trustedModules": ["my_features"]}
    )
    (project / "inference" / "my_features.py").write_text(
        "from dataclasses import dataclass\n@dataclass\nclass Ok:\n    pass\n"
    )
    (project / "model" / "model.joblib").write_bytes(_pickle_naming("my_features", "Ok"))

    report = check_json(capsys, project, "--static")

    assert not [m for m in messages(report, "error") if "pickle" in m or "my_features" in m]
    assert any("my_features (code/my_features.py): Ok" in m for m in messages(report, "info"))


def test_a_trusted_module_that_does_not_ship_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A name with no file in inference/ (or a folder without __init__.py) is refused by name."""
    project = make_project(
        tmp_path / "project", config={"skdeploy:trustedModules": ["my_features", "loose"]}
    )
    (project / "inference" / "loose").mkdir()
    (project / "inference" / "loose" / "thing.py").write_text("class Thing:\n    pass\n")

    report = check_json(capsys, project, "--static")

    errors = messages(report, "error")
    assert report["exit_code"] == 1
    assert any("my_features does not ship" in m for m in errors), errors
    assert any("loose does not ship" in m for m in errors), errors


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("os", "only the user's own modules"),
        ("sklearn", "only the user's own modules"),
        ("numpy.linalg", "only the user's own modules"),
        ("inference", "only the user's own modules"),
        ("skdeploy_wire", "only the user's own modules"),
        ("dateutil", "only the user's own modules"),  # pandas needs the container's
        ("jinja2.sandbox", "only the user's own modules"),
        ("1bad", "not a dotted Python module name"),
        ("", "must be a module name"),
    ],
)
def test_trusting_the_standard_library_or_the_container_is_a_settings_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, why: str
) -> None:
    """Only the user's own modules can be trusted, even when a file of that name ships in code/
    (it would shadow the container's own module): the setting names the value and why."""
    project = make_project(tmp_path / "project", config={"skdeploy:trustedModules": [name]})
    shipped = project / "inference" / f"{name}.py"
    if name.isidentifier() and not shipped.exists():
        shipped.write_text("class Thing:\n    pass\n")

    report = check_json(capsys, project, "--static")

    assert report["exit_code"] == 1
    assert any("trustedModules" in m and why in m for m in messages(report, "error")), report


def test_a_package_module_s_own_imports_are_checked_against_the_container(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A module inside a shipped package that imports what the container lacks is an error."""
    project = make_project(tmp_path / "project")
    package = project / "inference" / "featurelib"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "text.py").write_text("import lightgbm\n")

    report = check_json(capsys, project, "--static")

    assert any("featurelib/text.py imports 'lightgbm'" in m for m in messages(report, "error")), (
        report
    )


# --- Classifiers -------------------------------------------------------------------------------


def test_a_string_label_classifier_reports_accuracy_and_checks_probabilities(
    trained: Callable[[str], Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Labels, probabilities and accuracy with per-class counts, through check, serve, smoke."""
    project = byom_project(tmp_path, trained("classifier"))
    samples = json.loads((project / "model" / "samples.json").read_text())

    report = check_json(capsys, project)
    assert report["exit_code"] == 0, report
    with running_serve(project, tmp_path / "logs") as endpoint:
        smoke = smoke_json(capsys, project, endpoint.url)
        # One true label changed: the accuracy recomputed from the answers drops below the record.
        wrong = next(c for c in samples["classes"] if c != samples["predictions"][0])
        worse = dict(samples, targets=[wrong, *samples["targets"][1:]])
        (tmp_path / "worse.json").write_text(json.dumps(worse))
        worse_smoke = smoke_json(
            capsys, project, endpoint.url, "--samples", str(tmp_path / "worse.json")
        )

    assert smoke["exit_code"] == 0, smoke
    checks = {c["name"]: c for c in smoke["checks"]}
    assert checks["predictions"]["status"] == "PASS"
    assert checks["probabilities"]["status"] == "PASS", checks["probabilities"]
    assert "3 class probabilities" in checks["probabilities"]["detail"]
    assert checks["metrics"]["status"] == "PASS", checks["metrics"]
    detail = checks["metrics"]["detail"]
    assert f"accuracy {samples['metrics']['accuracy']:.6g}" in detail
    assert "per class (right/total)" in detail
    assert '"setosa" ' in detail
    assert worse_smoke["exit_code"] == 1
    assert statuses(worse_smoke)["metrics"] == "FAIL"


#: Trains a LogisticRegression in the runtime, then drops ``multi_class`` from it, as a pickle of
#: a scikit-learn that no longer has it (1.5+) looks to 1.2.1: predict works, predict_proba fails.
_SKEWED_CLASSIFIER = """
import json, sys
import joblib, numpy as np
from sklearn.linear_model import LogisticRegression
rng = np.random.default_rng(7)
X = rng.normal(size=(200, 3))
y = np.where(X[:, 0] + X[:, 1] > 0, "yes", "no")
model = LogisticRegression().fit(X, y)
del model.multi_class
joblib.dump(model, sys.argv[1] + "/model.joblib")
rows = X[:10]
json.dump({"instances": rows.tolist(), "predictions": [str(p) for p in model.predict(rows)]},
          open(sys.argv[1] + "/samples.json", "w"))
"""


def test_a_classifier_whose_probabilities_fail_is_refused_by_check_and_smoke(
    runtime_python: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """predict works but predict_proba raises: check and smoke fail on it, not only predict."""
    project = make_project(tmp_path / "project")
    subprocess.run(
        [str(runtime_python), "-c", _SKEWED_CLASSIFIER, str(project / "model")], check=True
    )

    report = check_json(capsys, project)
    with running_serve(project, tmp_path / "logs") as endpoint:
        smoke = smoke_json(capsys, project, endpoint.url)

    assert report["exit_code"] == 1, report
    errors = messages(report, "error")
    assert any("probabilities" in m and "500" in m for m in errors), errors
    checks = {c["name"]: c for c in smoke["checks"]}
    assert smoke["exit_code"] == 1
    assert checks["predictions"]["status"] == "PASS"
    assert checks["probabilities"]["status"] == "FAIL"
    assert "multi_class" in checks["probabilities"]["detail"]


# --- DataFrame models: CSV with a header, text columns, JSON Lines -----------------------------


def _invoke(client: Any, body: str, content_type: str, accept: str = "application/json") -> Any:
    """One invocation through boto3: (status, body text), a ModelError as its original status."""
    try:
        answer = client.invoke_endpoint(
            EndpointName="skdeploy-local-test",
            Body=body.encode(),
            ContentType=content_type,
            Accept=accept,
        )
    except client.exceptions.ModelError as exc:
        return exc.response["OriginalStatusCode"], exc.response["OriginalMessage"]
    return 200, answer["Body"].read().decode()


def test_a_dataframe_pipeline_takes_csv_with_a_header_text_columns_and_json_lines(
    trained: Callable[[str], Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A ColumnTransformer over named numeric and text columns, fed CSV and JSON Lines."""
    project = byom_project(tmp_path, trained("mixed"))
    samples = json.loads((project / "model" / "samples.json").read_text())
    rows, expected = samples["instances"][:5], samples["predictions"][:5]
    shuffled = ["plan", "monthly_spend", "city", "tenure_months"]
    fitted = ["tenure_months", "monthly_spend", "city", "plan"]

    def csv(columns: list[str], header: bool = True) -> str:
        lines = [",".join(columns)] if header else []
        lines += [",".join(str(row[c]) for c in columns) for row in rows]
        return "\n".join(lines) + "\n"

    assert check_json(capsys, project)["exit_code"] == 0
    with running_serve(project, tmp_path / "logs") as endpoint:
        client = endpoint.client()
        with_header = _invoke(client, csv(shuffled), "text/csv")
        no_header = _invoke(client, csv(fitted, header=False), "text/csv")
        lines = "".join(json.dumps(row) + "\n" for row in rows)
        jsonlines = _invoke(client, lines, "application/jsonlines", "application/jsonlines")
        missing = _invoke(client, csv(shuffled[:-1]), "text/csv")
        header, *data = csv(shuffled).splitlines()
        with_region = "\n".join([f"{header},region", *(f"{line},north" for line in data)])
        extra = _invoke(client, with_region + "\n", "text/csv")
        smoke = smoke_json(capsys, project, endpoint.url)

    assert with_header[0] == 200, with_header
    assert json.loads(with_header[1]) == {"predictions": expected}
    assert json.loads(no_header[1]) == {"predictions": expected}, no_header
    assert jsonlines[0] == 200, jsonlines
    assert [json.loads(line)["prediction"] for line in jsonlines[1].splitlines()] == expected
    assert missing[0] == 400, missing
    assert "tenure_months" in missing[1]
    assert extra[0] == 400, extra
    assert "region" in extra[1]
    assert smoke["exit_code"] == 0, smoke
    assert {c["name"]: c["status"] for c in smoke["checks"]}["metrics"] == "PASS"


def test_the_stack_s_probabilities_default_reaches_the_endpoint(
    trained: Callable[[str], Path], tmp_path: Path
) -> None:
    """skdeploy:probabilities: true answers a plain request with class probabilities."""
    project = byom_project(tmp_path, trained("classifier"), {"skdeploy:probabilities": True})
    samples = json.loads((project / "model" / "samples.json").read_text())
    body = json.dumps({"instances": samples["instances"][:2]})

    with running_serve(project, tmp_path / "logs") as endpoint:
        status, answer = _invoke(endpoint.client(), body, "application/json")
        off = _invoke(endpoint.client(), body, "application/json; probabilities=false")

    assert status == 200
    decoded = json.loads(answer)
    assert decoded["classes"] == samples["classes"]
    assert len(decoded["probabilities"]) == 2
    assert "probabilities" not in json.loads(off[1])


# --- Packages that ship: links ----------------------------------------------------------------


def test_a_package_linked_from_outside_the_project_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """inference/featurelib -> a folder outside the project: refused, nothing of it ships."""
    outside = tmp_path / "outside" / "featurelib"
    outside.mkdir(parents=True)
    (outside / "__init__.py").write_text("class Stolen:\n    pass\n")
    project = make_project(tmp_path / "project")
    (project / "inference" / "featurelib").symlink_to(outside, target_is_directory=True)

    report = check_json(capsys, project, "--static")

    assert report["exit_code"] == 1
    assert any(
        "featurelib" in m and "outside the project" in m for m in messages(report, "error")
    ), report


def test_a_package_link_loop_inside_the_project_ships_each_file_once(tmp_path: Path) -> None:
    """A link back to its own package (a loop) does not recurse: each file ships once."""
    project = make_project(tmp_path / "project")
    package = project / "inference" / "featurelib"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "clip.py").write_text("class Clip:\n    pass\n")
    (package / "again").symlink_to(package, target_is_directory=True)

    built = build_for_settings(load_stack_settings(project, TEST_STACK))

    with tarfile.open(built.path) as archive:
        code = sorted(n for n in archive.getnames() if n.startswith("code/"))
    assert code == [
        "code/featurelib/__init__.py",
        "code/featurelib/clip.py",
        "code/inference.py",
        *WIRE_MEMBERS,
    ]
