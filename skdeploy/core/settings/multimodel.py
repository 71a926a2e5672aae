"""``models``: several models served by one endpoint in SageMaker's MultiModel mode.

Every model ships as its own artifact under one S3 prefix, and a request picks one with
``TargetModel``. What SageMaker refuses with a multi-model endpoint is refused here by name,
with the source of the rule; what skdeploy itself does not combine with ``models`` says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from skdeploy.core.settings._coerce import as_object, as_str
from skdeploy.core.settings._rules import Member, Rule, Setting, parse_map
from skdeploy.core.settings.errors import Problems
from skdeploy.core.settings.members import DEFAULT_INFERENCE_DIR, NAME_RULE
from skdeploy.core.settings.paths import directory, handler_directory, model_files

if TYPE_CHECKING:  # values reads the schema, which lists this module's key
    from skdeploy.core.settings.values import StackValues

#: AWS's list of Real-time Inference features Serverless Inference does not support names
#: Multi-Model Endpoints.
SERVERLESS_SOURCE: Final = (
    "https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints.html"
)

#: A model's members: its name (part of its S3 key and of ``TargetModel``) and its folders.
MODEL: Final = (
    Member("name", NAME_RULE, shown=""),
    Member("modelDir", Rule(None, as_str, bool, "a directory path"), shown=""),
    Member("inferenceDir", Rule(DEFAULT_INFERENCE_DIR, as_str, bool, "a directory path")),
)
MODELS_KEY: Final[Setting[Any]] = Setting(
    "models",
    "list of maps",
    ": several models behind one endpoint in SageMaker's MultiModel mode, each its own "
    "artifact under one S3 prefix, picked per request by `TargetModel`; names unique; not with "
    "`serverless` (AWS: Serverless Inference does not support multi-model endpoints, "
    f"{SERVERLESS_SOURCE}), nor, skdeploy's own limits, with `modelDir`, `inferenceDir`, "
    "`modelFiles`, `variants`, `shadow`, `artifactSha256`, `async` or `api`",
    shown="none: one model",
    members=MODEL,
    many=True,
)

#: Keys skdeploy does not combine with ``models`` (no AWS rule: what skdeploy does not build),
#: and why.
_NOT_WITH: Final = {
    "modelDir": "each model has its own modelDir",
    "inferenceDir": "each model has its own inferenceDir",
    "modelFiles": "each model ships its whole modelDir",
    "variants": "the models share one variant; skdeploy does not split them over variants",
    "shadow": "skdeploy does not shadow a multi-model endpoint",
    "artifactSha256": "pins the single model of a stack",
    "async": "skdeploy does not route asynchronous requests to a target model",
    "api": "the front door does not send a TargetModel",
}


@dataclass(frozen=True)
class ModelSettings:
    """One model of a multi-model endpoint: its name and its folders."""

    name: str
    model_dir: Path
    inference_dir: Path
    #: The ``*.joblib`` files of ``model_dir`` (a model ships all of them).
    model_files: tuple[str, ...]


def parse_models(
    problems: Problems, values: StackValues, project_dir: Path
) -> tuple[ModelSettings, ...]:
    """``models``: each entry's folders exist, names unique, and no refused combination."""
    raw = as_object(values.get(MODELS_KEY.key))
    if raw is None:
        return ()
    if not isinstance(raw, list) or not raw:
        problems.add(MODELS_KEY.key, raw, "must be a non-empty list of models")
        return ()
    models = [
        m
        for index, item in enumerate(raw)
        if (m := _parse_model(problems, f"models[{index}]", item, project_dir)) is not None
    ]
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        problems.add(MODELS_KEY.key, names, "model names must be unique")
    _refuse_combinations(problems, values)
    return tuple(models)


def _parse_model(
    problems: Problems, key: str, value: object, project_dir: Path
) -> ModelSettings | None:
    parsed = parse_map(problems, key, value, MODEL)
    if parsed is None:
        return None
    for member in ("name", "modelDir"):
        if parsed[member] is None:
            problems.add(f"{key}.{member}", "(missing)", "every model needs one")
            return None
    model_dir = directory(problems, f"{key}.modelDir", parsed["modelDir"], project_dir)
    inference_dir = handler_directory(
        problems, f"{key}.inferenceDir", parsed["inferenceDir"], project_dir
    )
    files = model_files(problems, None, model_dir, f"{key}.modelDir")
    if model_dir is None or inference_dir is None or not files:
        return None
    return ModelSettings(parsed["name"], model_dir, inference_dir, files)


def _refuse_combinations(problems: Problems, values: StackValues) -> None:
    """What SageMaker (with its source) or skdeploy does not serve with several models."""
    if values.has("serverless"):
        problems.add(
            "serverless",
            values.get("serverless"),
            "not with models: Serverless Inference does not support multi-model endpoints "
            f"({SERVERLESS_SOURCE})",
        )
    for key, why in _NOT_WITH.items():
        if values.has(key):
            problems.add(key, values.get(key), f"not with models: {why}")
