"""Multi-model endpoints: several models behind one endpoint, each picked by ``TargetModel``."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from skdeploy.core.settings import SettingsError, parse_settings
from skdeploy.core.settings.multimodel import SERVERLESS_SOURCE
from tests.support import copy_project, shift_predictions

MODEL_NAMES = ("iris-a", "iris-b", "iris-c")


def multi_model_project(dest: Path) -> Path:
    """The project with three models: one model file, handlers shifting answers by 0, 100, 200."""
    project = copy_project(dest)
    for index, name in enumerate(MODEL_NAMES):
        shutil.copytree(project / "model", project / "models" / name / "model")
        handlers = project / "models" / name / "inference"
        shutil.copytree(project / "inference", handlers)
        if index:
            shift_predictions(handlers, 100.0 * index)
    return project


def models_setting() -> list[dict[str, str]]:
    return [
        {"name": n, "modelDir": f"models/{n}/model", "inferenceDir": f"models/{n}/inference"}
        for n in MODEL_NAMES
    ]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return multi_model_project(tmp_path_factory.mktemp("multimodel"))


def parse(project: Path, raw: dict[str, object]):
    return parse_settings(raw, stack="mm", region="us-east-1", project_dir=project)


def problems_of(project: Path, raw: dict[str, object]) -> str:
    with pytest.raises(SettingsError) as raised:
        parse(project, raw)
    return str(raised.value)


def test_models_are_read_in_order_with_their_folders(project: Path) -> None:
    """Each model keeps its name and folders; the top-level folders are the first model's."""
    settings = parse(project, {"models": models_setting()})
    assert settings.multi_model
    assert [m.name for m in settings.models] == list(MODEL_NAMES)
    assert settings.models[1].inference_dir == project / "models" / "iris-b" / "inference"
    assert settings.model_dir == settings.models[0].model_dir


def test_a_stack_without_models_is_not_multi_model(project: Path) -> None:
    """No ``models`` key: the stack serves its one model as before."""
    settings = parse(project, {})
    assert not settings.multi_model
    assert settings.models == ()


@pytest.mark.parametrize(
    ("models", "expected"),
    [
        ([], "models = []: must be a non-empty list of models"),
        ([{"name": "a"}], "models[0].modelDir = (missing)"),
        ([{"modelDir": "model"}], "models[0].name = (missing)"),
        ([{"name": "a_b", "modelDir": "model"}], "models[0].name = a_b: 1-63 letters"),
        ([{"name": "a", "modelDir": "nowhere"}], "models[0].modelDir = nowhere: directory"),
        ([{"name": "a", "modelDir": "model", "weight": 2}], "models[0].weight = 2: unknown key"),
        (
            [{"name": "a", "modelDir": "model"}, {"name": "a", "modelDir": "model"}],
            "model names must be unique",
        ),
    ],
)
def test_a_bad_model_entry_is_refused_by_name(
    project: Path, models: list[dict[str, object]], expected: str
) -> None:
    """Each malformed entry is named with its index and member."""
    assert expected in problems_of(project, {"models": models})


def test_serverless_with_models_is_refused_with_its_source(project: Path) -> None:
    """AWS's serverless guide lists multi-model endpoints among what serverless lacks."""
    message = problems_of(project, {"models": models_setting(), "serverless": {"memoryMb": 2048}})
    assert "serverless = " in message
    assert "Serverless Inference does not support multi-model endpoints" in message
    assert SERVERLESS_SOURCE in message


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("modelDir", "model"),
        ("inferenceDir", "inference"),
        ("modelFiles", ["model.joblib"]),
        ("variants", [{"name": "a", "weight": 1}]),
        ("shadow", {"name": "s"}),
        ("artifactSha256", "0" * 64),
        ("async", {"outputPath": "s3://bucket/out"}),
        ("api", {"auth": "iam"}),
    ],
)
def test_keys_skdeploy_does_not_combine_with_models_are_refused(
    project: Path, key: str, value: object
) -> None:
    """Every key that would contradict ``models`` is named as such."""
    message = problems_of(project, {"models": models_setting(), key: value})
    assert f"{key} = " in message
    assert "not with models" in message
