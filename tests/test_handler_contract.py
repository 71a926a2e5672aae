"""JSON Lines, the stack's probabilities default, and JSON 500s (inference/inference.py, issue 14).

Real models are trained here and loaded through ``model_fn``; every request goes through the
public handlers in the container's order. The last test serves the handlers in the
container-faithful runtime (Python 3.9, scikit-learn 1.2.1, pandas 1.1.3) through
``sagemaker-containers`` 2.8.6, which alone decides what a client finally receives.
"""

from __future__ import annotations

import base64
import io
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
import sklearn.base
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from tests.support import (
    INFERENCE_PATH,
    Answer,
    call_handlers,
    container_env,
    load_inference,
    load_wire,
)

inference = load_inference("inference_handler_contract")
wire = load_wire()

JSON = "application/json"
CSV = "text/csv"
NPY = "application/x-npy"
JSONLINES = "application/jsonlines"
PROBABILITIES_ENV = "SKDEPLOY_PROBABILITIES"
CSV_HEADER_ENV = "SKDEPLOY_CSV_HEADER"

X_TRAIN = [[0.0, 1.0, 2.0], [1.0, 0.0, 1.0], [2.0, 2.0, 0.0], [3.0, 1.0, 1.0], [0.5, 0.5, 3.0]]
Y_LABELS = ["no", "yes", "no", "yes", "yes"]
Y_VALUES = [1.0, 4.0, 2.0, 7.0, 3.5]
NAMES = ["alpha", "beta", "gamma"]
ROWS = [[1.0, 2.0, 3.0], [0.5, -1.0, 2.25], [4.0, 0.0, 1.0]]


def dump(model: Any, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, directory / "model.joblib")
    return directory


@pytest.fixture(autouse=True)
def no_stack_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts without the stack's variables; tests that need them set them."""
    monkeypatch.delenv(PROBABILITIES_ENV, raising=False)
    monkeypatch.delenv(CSV_HEADER_ENV, raising=False)


def load(model: Any, directory: Path) -> Any:
    return inference.model_fn(str(dump(model, directory)))


@pytest.fixture
def classifier(tmp_path: Path) -> Any:
    return load(LogisticRegression().fit(np.array(X_TRAIN), Y_LABELS), tmp_path / "classifier")


@pytest.fixture
def regressor(tmp_path: Path) -> Any:
    return load(LinearRegression().fit(np.array(X_TRAIN), Y_VALUES), tmp_path / "regressor")


@pytest.fixture
def named(tmp_path: Path) -> Any:
    pd = pytest.importorskip("pandas")
    model = LogisticRegression().fit(pd.DataFrame(X_TRAIN, columns=NAMES), Y_LABELS)
    return load(model, tmp_path / "named")


def invoke(
    model: Any, body: str | bytes, content_type: str | None, accept: str | None = JSON
) -> Answer:
    """Run the three request handlers in the container's order."""
    return call_handlers(inference, model, body, content_type, accept)


def jsonl(values: list[Any]) -> str:
    return "\n".join(json.dumps(value) for value in values) + "\n"


# --- JSON Lines in ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        JSONLINES,
        "application/jsonl",
        "application/x-jsonlines",
        "application/x-ndjson",
        "Application/JSONLines; charset=utf-8",
    ],
)
def test_json_lines_rows_predict_like_the_model(regressor: Any, content_type: str) -> None:
    answer = invoke(regressor, jsonl(ROWS).encode(), content_type)
    assert answer.document()["predictions"] == regressor.predict(np.array(ROWS)).tolist()


def test_json_lines_features_records_and_rows_may_mix(regressor: Any) -> None:
    """{"features": [...]} is the dense record of SageMaker's built-in algorithms."""
    body = jsonl([{"features": ROWS[0]}, ROWS[1], {"features": ROWS[2]}])
    answer = invoke(regressor, body, JSONLINES)
    assert answer.document()["predictions"] == regressor.predict(np.array(ROWS)).tolist()


def test_json_lines_objects_are_matched_by_feature_name(named: Any) -> None:
    pd = pytest.importorskip("pandas")
    records = [dict(zip(reversed(NAMES), reversed(row), strict=True)) for row in ROWS]
    answer = invoke(named, jsonl(records), JSONLINES)
    want = named.predict(pd.DataFrame(ROWS, columns=NAMES)).tolist()
    assert answer.document()["predictions"] == want


def test_json_lines_skip_blank_lines_and_read_crlf(regressor: Any) -> None:
    body = "\r\n".join(["", json.dumps(ROWS[0]), "  ", json.dumps(ROWS[1]), ""])
    answer = invoke(regressor, body, JSONLINES)
    assert answer.document()["predictions"] == regressor.predict(np.array(ROWS[:2])).tolist()


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        pytest.param("[1, 2, 3]\n[1, 2\n", "malformed JSON Lines: line 2", id="malformed-line"),
        pytest.param('[1, 2, 3]\n{"alpha": 1}\n', "line 2 is not a row", id="row-then-object"),
        pytest.param("7\n", "line 1: each line must be", id="scalar"),
        pytest.param("[1, 2, 3]\n[4, 5]\n", "same length", id="ragged"),
        pytest.param("[1, 2]\n", "expected 3 features", id="narrow"),
        pytest.param('{"a": 1}\n', "fitted without feature names", id="objects-unnamed"),
        pytest.param('[1, "x", 3]\n', "only numbers", id="text-unnamed"),
    ],
)
def test_json_lines_mistakes_are_400s(regressor: Any, body: str, fragment: str) -> None:
    answer = invoke(regressor, body, JSONLINES)
    assert answer.status == 400
    assert fragment in answer.error()


def test_json_lines_objects_must_share_their_keys(named: Any) -> None:
    body = jsonl([dict(zip(NAMES, ROWS[0], strict=True)), {"alpha": 1.0, "beta": 2.0}])
    answer = invoke(named, body, JSONLINES)
    assert answer.status == 400
    assert answer.error().startswith("line 2 has keys ['alpha', 'beta'], line 1 has")


def test_json_lines_take_the_json_charsets_only(regressor: Any) -> None:
    answer = invoke(regressor, jsonl(ROWS).encode(), "application/jsonlines; charset=latin-1")
    assert answer.status == 415
    assert "utf-8 or us-ascii" in answer.error()


# --- JSON Lines out -----------------------------------------------------------------------------


def test_json_lines_answer_one_object_per_record_in_order(regressor: Any) -> None:
    answer = invoke(regressor, json.dumps(ROWS), JSON, JSONLINES)
    assert answer.mimetype == JSONLINES
    assert not answer.body.endswith(b"\n")
    predictions = regressor.predict(np.array(ROWS)).tolist()
    assert answer.lines() == [{"prediction": value} for value in predictions]


def test_json_lines_answer_carries_probabilities_per_record(classifier: Any) -> None:
    answer = invoke(classifier, jsonl(ROWS), f"{JSONLINES}; probabilities=true", JSONLINES)
    lines = answer.lines()
    assert [line["prediction"] for line in lines] == classifier.predict(np.array(ROWS)).tolist()
    np.testing.assert_allclose(
        [line["probabilities"] for line in lines], classifier.predict_proba(np.array(ROWS))
    )
    assert all(sorted(line) == ["prediction", "probabilities"] for line in lines)


@pytest.mark.parametrize("accept", ["application/jsonl", "application/x-ndjson"])
def test_json_lines_aliases_are_answered_under_their_own_name(regressor: Any, accept: str) -> None:
    answer = invoke(regressor, json.dumps(ROWS), JSON, accept)
    assert answer.mimetype == accept
    assert len(answer.lines()) == len(ROWS)


def test_wildcards_still_answer_json(regressor: Any) -> None:
    assert invoke(regressor, json.dumps(ROWS), JSON, "*/*").mimetype == JSON
    assert invoke(regressor, json.dumps(ROWS), JSON, "application/*").mimetype == JSON


def test_json_lines_in_and_out_for_a_mixed_pipeline(tmp_path: Path) -> None:
    """Rows with text, objects and {"features": ...} for a OneHotEncoder pipeline."""
    pd = pytest.importorskip("pandas")
    train = pd.DataFrame({"size": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "color": ["red", "blue"] * 3})
    columns = ColumnTransformer(
        [("numbers", StandardScaler(), ["size"]), ("text", OneHotEncoder(), ["color"])]
    )
    model = make_pipeline(columns, LogisticRegression()).fit(train, ["a", "b", "a", "b", "b", "a"])
    model = load(model, tmp_path)
    body = jsonl([[2.5, "red"], {"features": [4.5, "blue"]}])
    want = model.predict(pd.DataFrame([[2.5, "red"], [4.5, "blue"]], columns=["size", "color"]))
    assert [line["prediction"] for line in invoke(model, body, JSONLINES, JSONLINES).lines()] == (
        want.tolist()
    )
    objects = jsonl([{"color": "red", "size": 2.5}, {"color": "blue", "size": 4.5}])
    assert invoke(model, objects, JSONLINES).document()["predictions"] == want.tolist()
    wrong = invoke(model, jsonl([[2.5, "red"], [4.5, 3]]), JSONLINES)
    assert wrong.error() == "line 2, column 'color' takes text, got 3"


# --- Probabilities default ----------------------------------------------------------------------


def test_the_default_adds_probabilities_for_a_classifier(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PROBABILITIES_ENV, "true")
    model = load(LogisticRegression().fit(np.array(X_TRAIN), Y_LABELS), tmp_path)
    document = invoke(model, json.dumps(ROWS), JSON).document()
    np.testing.assert_allclose(document["probabilities"], model.predict_proba(np.array(ROWS)))
    assert document["classes"] == ["no", "yes"]
    as_csv = invoke(model, "1,2,3\n", CSV, CSV)
    assert len(as_csv.body.decode().strip().split(",")) == 3  # label + one per class
    assert "probabilities" in invoke(model, "1,2,3\n", CSV, JSONLINES).lines()[0]


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        pytest.param("1,2,3\n", "text/csv; probabilities=false", id="csv-parameter"),
        pytest.param(json.dumps(ROWS), "application/json; probabilities=FALSE", id="json-param"),
        pytest.param(
            json.dumps({"instances": ROWS, "probabilities": False}), JSON, id="json-field"
        ),
        pytest.param(jsonl(ROWS), f"{JSONLINES}; probabilities=false", id="jsonlines-param"),
    ],
)
def test_a_request_can_turn_the_default_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str, content_type: str
) -> None:
    monkeypatch.setenv(PROBABILITIES_ENV, "TRUE")
    model = load(LogisticRegression().fit(np.array(X_TRAIN), Y_LABELS), tmp_path)
    assert "probabilities" in invoke(model, json.dumps(ROWS), JSON).document()  # the default
    assert list(invoke(model, body, content_type).document()) == ["predictions"]


def test_the_default_leaves_a_regressor_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No predict_proba: the default does not apply, so requests are not turned into 400s."""
    monkeypatch.setenv(PROBABILITIES_ENV, "true")
    model = load(LinearRegression().fit(np.array(X_TRAIN), Y_VALUES), tmp_path)
    document = invoke(model, json.dumps(ROWS), JSON).document()
    assert document == {"predictions": model.predict(np.array(ROWS)).tolist()}
    asked = invoke(model, "1,2,3", "text/csv; probabilities=true")
    assert asked.status == 400
    assert "no predict_proba" in asked.error()


def test_default_probabilities_are_left_out_of_npy_asked_ones_are_406(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PROBABILITIES_ENV, "true")
    model = load(LogisticRegression().fit(np.array(X_TRAIN), Y_LABELS), tmp_path)
    assert "probabilities" in invoke(model, "1,2,3", CSV, JSON).document()  # the default is on
    answer = invoke(model, "1,2,3", CSV, NPY)
    assert answer.status == 200
    assert np.load(io.BytesIO(answer.body)).tolist() == model.predict([[1.0, 2.0, 3.0]]).tolist()
    assert invoke(model, "1,2,3", "text/csv; probabilities=true", NPY).status == 406


def test_the_default_is_read_once_at_model_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PROBABILITIES_ENV, "true")
    model = load(LogisticRegression().fit(np.array(X_TRAIN), Y_LABELS), tmp_path / "on")
    monkeypatch.setenv(PROBABILITIES_ENV, "false")
    assert "probabilities" in invoke(model, json.dumps(ROWS), JSON).document()
    other = load(LogisticRegression().fit(np.array(X_TRAIN), Y_LABELS), tmp_path / "off")
    assert "probabilities" not in invoke(other, json.dumps(ROWS), JSON).document()


def test_without_the_setting_probabilities_stay_off(classifier: Any) -> None:
    assert list(invoke(classifier, json.dumps(ROWS), JSON).document()) == ["predictions"]


def test_an_invalid_default_fails_model_load_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PROBABILITIES_ENV, "yes")
    with pytest.raises(ValueError, match="SKDEPLOY_PROBABILITIES must be true or false"):
        load(LogisticRegression().fit(np.array(X_TRAIN), Y_LABELS), tmp_path)


# --- Faults are 500s with a JSON body -----------------------------------------------------------


class SkewedLogisticRegression(LogisticRegression):
    """predict works, predict_proba fails as a model pickled by another scikit-learn can."""

    def predict_proba(self, X: Any) -> Any:
        raise AttributeError("'LogisticRegression' object has no attribute 'multi_class'")


def test_a_model_failing_in_predict_proba_is_a_json_500(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(PROBABILITIES_ENV, "true")
    model = load(SkewedLogisticRegression().fit(np.array(X_TRAIN), Y_LABELS), tmp_path)
    answer = invoke(model, json.dumps(ROWS), JSON)
    assert answer.status == 500
    assert answer.error() == (
        "the model failed: AttributeError: 'LogisticRegression' object has no attribute "
        "'multi_class'"
    )
    assert "Traceback" in caplog.text  # the log has the traceback, the client does not
    assert "Traceback" not in answer.error()


def test_a_500_names_the_scikit_learn_versions_of_a_skewed_pickle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model pickled by "another" scikit-learn, missing an attribute its predict needs."""
    model = LogisticRegression().fit(np.array(X_TRAIN), Y_LABELS)
    del model.coef_
    with monkeypatch.context() as patch:
        patch.setattr(sklearn.base, "__version__", "0.0.1")
        dump(model, tmp_path)
    with pytest.warns(UserWarning, match="from version 0.0.1"):  # model_fn passes it on
        loaded = inference.model_fn(str(tmp_path))
    answer = invoke(loaded, "1,2,3", CSV)
    assert answer.status == 500
    message = answer.error()
    assert message.startswith("the model failed: AttributeError:")
    assert "coef_" in message
    assert f"pickled with scikit-learn 0.0.1, served by {sklearn.__version__}" in message


def test_a_failure_to_encode_is_a_json_500() -> None:
    prediction = wire.Prediction(np.array([{1, 2}], dtype=object))
    response = inference.output_fn(prediction, JSON)
    assert response.status_code == 500
    assert json.loads(response.get_data())["error"].startswith(
        "could not encode the predictions: TypeError"
    )


def test_a_failure_to_read_is_a_json_500(monkeypatch: pytest.MonkeyPatch, regressor: Any) -> None:
    def broken(_text: str, _header: bool | None) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setitem(wire.DECODERS, CSV, broken)
    answer = invoke(regressor, "1,2,3", CSV)
    assert answer.status == 500
    assert answer.error() == "could not read the request: RuntimeError: a bug"


def test_client_mistakes_stay_400(regressor: Any) -> None:
    assert invoke(regressor, "1,2", CSV).status == 400
    assert invoke(regressor, "nan,2,3", CSV).status == 400


# --- The container's library, Python and pandas -------------------------------------------------

RUNTIME_SCRIPT = r"""
import base64, importlib, json, os, sys

import joblib
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sagemaker_containers.beta.framework import transformer, worker
from sagemaker_containers import _env

spec = json.load(sys.stdin)
sys.path.insert(0, spec["code_dir"])
user_module = importlib.import_module("inference")

train = pd.DataFrame(spec["train"], columns=spec["names"])
columns = ColumnTransformer(
    [("numbers", StandardScaler(), ["age", "income"]), ("text", OneHotEncoder(), ["color", "zip"])]
)
mixed = make_pipeline(columns, LogisticRegression()).fit(train, spec["labels"])
broken = LogisticRegression().fit(train[["age", "income"]].values, spec["labels"])
del broken.coef_  # predict fails with AttributeError, as a skewed pickle can
models = {"mixed": mixed, "broken": broken}

clients = {}
for name, model in models.items():
    model_dir = os.path.join(os.environ["SAGEMAKER_BASE_DIR"], name, "model")
    os.makedirs(model_dir, exist_ok=True)
    joblib.dump(model, os.path.join(model_dir, "model.joblib"))
    _env.model_dir = model_dir
    served = transformer.Transformer(
        model_fn=user_module.model_fn,
        input_fn=user_module.input_fn,
        predict_fn=user_module.predict_fn,
        output_fn=user_module.output_fn,
    )
    served.initialize()  # model_fn: SKDEPLOY_PROBABILITIES is read here
    app = worker.Worker(transform_fn=served.transform, module_name="inference")
    clients[name] = (app.test_client(), served._model)

results = {"python": list(sys.version_info[:2]), "pandas": pd.__version__}
for case in spec["cases"]:
    client, model = clients[case["model"]]
    response = client.post(
        "/invocations",
        data=base64.b64decode(case["body"]),
        headers={"Content-Type": case["content_type"], "Accept": case["accept"]},
    )
    expected = None
    if case["rows"] is not None:
        rows = pd.DataFrame(case["rows"], columns=spec["names"])
        expected = {
            "predictions": model.predict(rows).tolist(),
            "probabilities": model.predict_proba(rows).tolist(),
        }
    results[case["id"]] = {
        "status": response.status_code,
        "mimetype": response.mimetype,
        "body": base64.b64encode(response.get_data()).decode(),
        "expected": expected,
    }
json.dump(results, sys.stdout)
"""

TRAIN = [
    [22.0, "red", "10001", 31.5],
    [35.0, "blue", "94105", 52.0],
    [47.0, "green", "60601", 75.25],
    [51.0, "red", "10001", 48.0],
    [29.0, "green", "94105", 39.0],
    [63.0, "blue", "60601", 91.0],
]
TRAIN_LABELS = ["no", "yes", "yes", "no", "no", "yes"]
TRAIN_NAMES = ["age", "color", "zip", "income"]
REQUEST_ROWS = [[30.0, "red", "10001", 40.0], [55.0, "blue", "60601", 80.5]]


@dataclass(frozen=True)
class RuntimeCase:
    id: str
    model: str
    body: bytes
    content_type: str
    accept: str
    status: int
    rows: list[list[Any]] | None = None
    fragment: str = ""


RUNTIME_CASES = [
    RuntimeCase(
        "csv-shuffled-header",
        "mixed",
        b"income,zip,age,color\n40,10001,30,red\n80.5,60601,55,blue\n",
        CSV,
        JSON,
        200,
        rows=REQUEST_ROWS,
    ),
    RuntimeCase(
        "csv-quoted-no-header",
        "mixed",
        b'30,"red","10001",40\n55,blue,60601,80.5\n',
        "text/csv; charset=utf-8",
        JSON,
        200,
        rows=REQUEST_ROWS,
    ),
    RuntimeCase(
        "jsonlines-in-and-out",
        "mixed",
        jsonl([{"features": REQUEST_ROWS[0]}, REQUEST_ROWS[1]]).encode(),
        JSONLINES,
        JSONLINES,
        200,
        rows=REQUEST_ROWS,
    ),
    RuntimeCase(
        "csv-missing-column",
        "mixed",
        b"age,color,zip\n30,red,10001\n",
        CSV,
        JSON,
        400,
        fragment="missing income",
    ),
    RuntimeCase(
        "csv-bad-cell",
        "mixed",
        b"30,red,10001,forty\n",
        CSV,
        JSON,
        400,
        fragment="line 1, column 'income': 'forty' is not a number",
    ),
    RuntimeCase(
        "model-fault",
        "broken",
        b"1,2\n",
        CSV,
        JSON,
        500,
        fragment="the model failed: AttributeError",
    ),
]


@pytest.mark.runtime
def test_the_container_library_serves_the_new_contract(
    runtime_python: Path, tmp_path: Path
) -> None:
    """Under Python 3.9 and pandas 1.1.3, through sagemaker-containers: 200s, 400s, a JSON 500."""
    spec = {
        "code_dir": str(INFERENCE_PATH.parent),
        "train": TRAIN,
        "labels": TRAIN_LABELS,
        "names": TRAIN_NAMES,
        "cases": [
            {
                "id": case.id,
                "model": case.model,
                "body": base64.b64encode(case.body).decode(),
                "content_type": case.content_type,
                "accept": case.accept,
                "rows": case.rows,
            }
            for case in RUNTIME_CASES
        ],
    }
    env = container_env(tmp_path, **{PROBABILITIES_ENV: "true"})
    script = tmp_path / "serve_contract.py"
    script.write_text(RUNTIME_SCRIPT)
    completed = subprocess.run(
        [str(runtime_python), str(script)],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    results = json.loads(completed.stdout)
    assert results["python"] == [3, 9]
    assert results["pandas"] == "1.1.3"
    for case in RUNTIME_CASES:
        result = results[case.id]
        body = base64.b64decode(result["body"])
        assert result["status"] == case.status, (case.id, body[:2000])
        if case.status != 200:
            assert result["mimetype"] == JSON, (case.id, body[:2000])
            assert case.fragment in json.loads(body)["error"], (case.id, body)
            continue
        expected = result["expected"]
        if case.accept == JSONLINES:
            lines = [json.loads(line) for line in body.decode().split("\n")]
            predictions = [line["prediction"] for line in lines]
            probabilities = [line["probabilities"] for line in lines]
        else:
            document = json.loads(body)
            predictions, probabilities = document["predictions"], document["probabilities"]
        assert predictions == expected["predictions"], case.id
        np.testing.assert_allclose(probabilities, expected["probabilities"])  # the default
