"""The serving handlers (inference/inference.py): formats, status codes, the real container library.

Most tests call the four handlers directly with small real models. The ``runtime`` tests run the
handlers inside ``sagemaker-containers`` 2.8.6 under the container's Python 3.9 and pins, because
only that library decides which status code a client finally sees.
"""

import ast
import base64
import io
import json
import re
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LinearRegression, LogisticRegression

from tests.support import (
    INFERENCE_PATH,
    WIRE_PATH,
    Answer,
    call_handlers,
    container_env,
    load_inference,
    load_wire,
    set_in_wire,
    wire_limits,
)

JSON = "application/json"
CSV = "text/csv"
NPY = "application/x-npy"

#: Training data shared by every model here, and by the runtime script (which retrains there).
X_TRAIN = [[0.0, 1.0, 2.0], [1.0, 0.0, 1.0], [2.0, 2.0, 0.0], [3.0, 1.0, 1.0], [0.5, 0.5, 3.0]]
Y_REGRESSION = [1.0, 4.0, 2.0, 7.0, 3.5]
Y_LABELS = ["no", "yes", "no", "yes", "yes"]
FEATURE_NAMES = ["alpha", "beta", "gamma"]
ROWS = [[1.0, 2.0, 3.0], [0.5, -1.0, 2.25], [4.0, 0.0, 1.0]]


inference = load_inference()
wire = load_wire()


# --- Models -------------------------------------------------------------------------------------


def dump(model: Any, directory: Path) -> Path:
    """Write ``model`` as the only joblib file of ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, directory / "model.joblib")
    return directory


@pytest.fixture
def regressor(tmp_path: Path) -> Any:
    """A LinearRegression on three unnamed features, loaded back through model_fn."""
    model = LinearRegression().fit(np.array(X_TRAIN), Y_REGRESSION)
    return inference.model_fn(str(dump(model, tmp_path / "regressor")))


@pytest.fixture
def classifier(tmp_path: Path) -> Any:
    """A LogisticRegression with string labels, loaded back through model_fn."""
    model = LogisticRegression().fit(np.array(X_TRAIN), Y_LABELS)
    return inference.model_fn(str(dump(model, tmp_path / "classifier")))


@pytest.fixture
def named_classifier(tmp_path: Path) -> Any:
    """A LogisticRegression fitted on a DataFrame, so it has feature_names_in_."""
    pd = pytest.importorskip("pandas", reason="pandas is needed to fit on a DataFrame")
    model = LogisticRegression().fit(pd.DataFrame(X_TRAIN, columns=FEATURE_NAMES), Y_LABELS)
    return inference.model_fn(str(dump(model, tmp_path / "named")))


# --- Helpers ------------------------------------------------------------------------------------


def invoke(
    model: Any, body: str | bytes, content_type: str | None, accept: str | None = JSON
) -> Answer:
    """Run the three request handlers in the container's order."""
    return call_handlers(inference, model, body, content_type, accept)


def npy_bytes(array: np.ndarray, allow_pickle: bool = False) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


def csv_text(rows: list[list[float]]) -> str:
    return "\n".join(",".join(repr(value) for value in row) for row in rows) + "\n"


def decode_predictions(answer: Answer) -> np.ndarray:
    """Read predictions back from any of the three response types."""
    assert answer.status == 200, answer.body
    if answer.mimetype == JSON:
        return np.asarray(json.loads(answer.body)["predictions"])
    if answer.mimetype == CSV:
        return np.loadtxt(io.StringIO(answer.body.decode()), delimiter=",", ndmin=1)
    assert answer.mimetype == NPY
    return np.load(io.BytesIO(answer.body), allow_pickle=False)


#: Every accepted request encoding of ROWS: (content type, body).
REQUEST_ENCODINGS = [
    pytest.param(CSV, csv_text(ROWS), id="csv-str"),
    pytest.param(CSV, csv_text(ROWS).encode(), id="csv-bytes"),
    pytest.param("text/csv; charset=utf-8", csv_text(ROWS).encode(), id="csv-charset"),
    pytest.param("Text/CSV ; charset=UTF-8", csv_text(ROWS).encode(), id="csv-case-spaces"),
    pytest.param("text/csv; charset=utf-16", csv_text(ROWS).encode("utf-16"), id="csv-utf16"),
    pytest.param(CSV, ("\ufeff" + csv_text(ROWS)).encode(), id="csv-bom"),
    pytest.param(CSV, csv_text(ROWS).replace("\n", "\r\n"), id="csv-crlf"),
    pytest.param(JSON, json.dumps({"instances": ROWS}), id="json-instances"),
    pytest.param(JSON, json.dumps(ROWS).encode(), id="json-bare-rows"),
    pytest.param("application/json; charset=utf-8", json.dumps(ROWS).encode(), id="json-charset"),
    pytest.param(None, json.dumps(ROWS), id="no-content-type-is-json"),
    pytest.param(NPY, npy_bytes(np.array(ROWS)), id="npy-float64"),
    pytest.param(NPY, npy_bytes(np.array(ROWS, dtype=np.float32)), id="npy-float32"),
]


# --- Source guards ------------------------------------------------------------------------------


#: What ships in ``code/``: the handlers and the wire format they import.
HANDLER_SOURCES = pytest.mark.parametrize(
    "source",
    [INFERENCE_PATH, *sorted(WIRE_PATH.glob("*.py"))],
    ids=lambda p: p.relative_to(INFERENCE_PATH.parent).as_posix(),
)


@HANDLER_SOURCES
def test_source_is_python_38_syntax(source: Path) -> None:
    """The handlers parse as Python 3.8, the oldest container interpreter (0.23-1, 1.0-1)."""
    ast.parse(source.read_text(), feature_version=(3, 8))


@HANDLER_SOURCES
def test_annotations_avoid_union_operator(source: Path) -> None:
    """No ``X | Y`` in evaluated annotations: Python 3.9 raises TypeError at import."""
    tree = ast.parse(source.read_text())
    annotations = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            annotations += [arg.annotation for arg in node.args.args if arg.annotation]
            annotations += [node.returns] if node.returns else []
        elif isinstance(node, ast.AnnAssign):
            annotations.append(node.annotation)
    unions = [
        ast.unparse(annotation)
        for annotation in annotations
        for node in ast.walk(annotation)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr)
    ]
    assert unions == []


@HANDLER_SOURCES
def test_imports_only_what_the_container_has(source: Path) -> None:
    """Module level imports stdlib, numpy, scikit-learn, joblib; pandas and werkzeug only lazily.

    inference.py also imports its sibling skdeploy_wire, which ships beside it in ``code/``.
    """
    tree = ast.parse(source.read_text())
    lazy = {
        node
        for function in ast.walk(tree)
        if isinstance(function, ast.FunctionDef)
        for node in ast.walk(function)
    }
    eager_roots, lazy_roots = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module or ""]
        else:
            continue  # a relative import stays inside the skdeploy_wire package
        roots = {name.split(".")[0] for name in names} - set(sys.stdlib_module_names)
        (lazy_roots if node in lazy else eager_roots).update(roots)
    assert eager_roots - {WIRE_PATH.name} <= {"numpy", "sklearn", "joblib"}
    assert lazy_roots <= {"pandas", "werkzeug"}


# --- model_fn -----------------------------------------------------------------------------------


def test_model_fn_loads_the_single_joblib_file(tmp_path: Path) -> None:
    """model_fn returns the estimator stored in the directory's one .joblib file."""
    model = LinearRegression().fit(np.array(X_TRAIN), Y_REGRESSION)
    loaded = inference.model_fn(str(dump(model, tmp_path)))
    np.testing.assert_array_equal(loaded.coef_, model.coef_)


@pytest.mark.parametrize("files", [[], ["a.joblib", "b.joblib"]], ids=["none", "two"])
def test_model_fn_refuses_zero_or_several_models(tmp_path: Path, files: list[str]) -> None:
    """model_fn fails loudly, listing the directory, unless exactly one .joblib is present."""
    (tmp_path / "README").write_text("not a model")
    for name in files:
        joblib.dump(LinearRegression(), tmp_path / name)
    with pytest.raises(
        FileNotFoundError, match=rf"exactly one \.joblib.*found {len(files)}.*README"
    ):
        inference.model_fn(str(tmp_path))


# --- Successful requests ------------------------------------------------------------------------


@pytest.mark.parametrize(("content_type", "body"), REQUEST_ENCODINGS)
@pytest.mark.parametrize("accept", [JSON, CSV, NPY])
def test_every_encoding_predicts_like_the_model(
    regressor: Any, content_type: str | None, body: str | bytes, accept: str
) -> None:
    """Each request and response type yields the model's own predictions for the rows sent."""
    answer = invoke(regressor, body, content_type, accept)
    assert answer.mimetype == accept
    np.testing.assert_allclose(decode_predictions(answer), regressor.predict(np.array(ROWS)))


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        pytest.param(CSV, "1,2,3", id="csv-no-newline"),
        pytest.param(CSV, b"1,2,3\n", id="csv-bytes"),
        pytest.param(JSON, "[[1, 2, 3]]", id="json-rows"),
        pytest.param(JSON, '{"instances": [[1, 2, 3]]}', id="json-instances"),
        pytest.param(NPY, npy_bytes(np.array([[1.0, 2.0, 3.0]])), id="npy"),
    ],
)
def test_a_single_row_stays_one_sample(
    regressor: Any, content_type: str, body: str | bytes
) -> None:
    """One row is parsed as a 1 x n matrix and answered with one prediction."""
    batch = inference.input_fn(body, content_type)
    assert batch.data.shape == (1, 3)
    assert batch.data.dtype == np.float64
    answer = invoke(regressor, body, content_type)
    assert json.loads(answer.body)["predictions"] == pytest.approx(
        regressor.predict(np.array([[1.0, 2.0, 3.0]])).tolist()
    )


def test_a_single_column_is_many_samples(tmp_path: Path) -> None:
    """For a one-feature model, each CSV line is one sample, not one feature."""
    model = inference.model_fn(
        str(dump(LinearRegression().fit([[0.0], [1.0], [2.0]], [1.0, 3.0, 5.0]), tmp_path))
    )
    answer = invoke(model, "1\n2\n3\n", CSV)
    assert json.loads(answer.body)["predictions"] == pytest.approx([3.0, 5.0, 7.0])


def test_json_null_is_a_missing_value_for_models_that_accept_nan(tmp_path: Path) -> None:
    """null (JSON) and nan (CSV) reach a NaN-tolerant model as NaN and are predicted."""
    model = HistGradientBoostingRegressor(max_iter=5, min_samples_leaf=1).fit(
        np.array(X_TRAIN), Y_REGRESSION
    )
    model = inference.model_fn(str(dump(model, tmp_path)))
    expected = model.predict(np.array([[np.nan, 1.0, 2.0]])).tolist()
    assert json.loads(invoke(model, "[[null, 1, 2]]", JSON).body)["predictions"] == expected
    assert json.loads(invoke(model, "nan,1,2", CSV).body)["predictions"] == expected


def test_records_are_reordered_to_the_models_feature_names(named_classifier: Any) -> None:
    """Objects keyed by feature name, in any key order, give the same answer as ordered rows."""
    records = [dict(reversed(list(zip(FEATURE_NAMES, row, strict=True)))) for row in ROWS]
    assert list(records[0]) != FEATURE_NAMES
    by_name = invoke(named_classifier, json.dumps({"instances": records}), JSON)
    bare = invoke(named_classifier, json.dumps(records), JSON)
    by_position = invoke(named_classifier, json.dumps(ROWS), JSON)
    assert by_name.status == bare.status == by_position.status == 200
    assert by_name.body == bare.body == by_position.body
    pd = pytest.importorskip("pandas")
    expected = named_classifier.predict(pd.DataFrame(ROWS, columns=FEATURE_NAMES)).tolist()
    assert json.loads(by_name.body)["predictions"] == expected


def test_rows_for_a_named_model_cause_no_feature_name_warning(named_classifier: Any) -> None:
    """Plain rows sent to a DataFrame-fitted model are named first, so sklearn does not warn."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert invoke(named_classifier, csv_text(ROWS), CSV).status == 200


def test_multi_output_predictions_keep_one_line_per_sample(tmp_path: Path) -> None:
    """A two-target regressor answers two values per CSV line and per JSON row."""
    targets = np.column_stack([Y_REGRESSION, np.array(Y_REGRESSION) * 2])
    model = inference.model_fn(str(dump(LinearRegression().fit(X_TRAIN, targets), tmp_path)))
    expected = model.predict(np.array(ROWS))
    as_csv = invoke(model, csv_text(ROWS), CSV, CSV)
    np.testing.assert_allclose(
        np.loadtxt(io.StringIO(as_csv.body.decode()), delimiter=","), expected
    )
    as_json = invoke(model, csv_text(ROWS), CSV, JSON)
    np.testing.assert_allclose(json.loads(as_json.body)["predictions"], expected)


def test_string_labels_as_npy_are_unicode_not_pickles(tmp_path: Path) -> None:
    """Object-dtype labels are sent as a unicode .npy array that loads without pickle."""
    model = LogisticRegression().fit(np.array(X_TRAIN), np.array(Y_LABELS, dtype=object))
    model = inference.model_fn(str(dump(model, tmp_path)))
    assert model.predict(np.array(ROWS)).dtype == object
    answer = invoke(model, csv_text(ROWS), CSV, NPY)
    assert decode_predictions(answer).tolist() == model.predict(np.array(ROWS)).tolist()


# --- Accept negotiation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (None, JSON),
        ("", JSON),
        ("*/*", JSON),
        ("application/json; charset=utf-8", JSON),
        ("TEXT/CSV", CSV),
        ("application/x-npy", NPY),
        ("text/csv;q=0.5, application/json", JSON),
        ("application/json;q=0.1, text/csv", CSV),
        ("application/json;q=0, text/csv;q=0.2", CSV),
        ("text/html, text/*", CSV),
        ("text/html, */*;q=0.1", JSON),
        ("application/xml, application/*", JSON),
        ("application/json;q=bogus", JSON),
        ("*/*, application/json;q=0", CSV),
        ("application/*, application/json;q=0", NPY),
        ("text/csv;q=0, text/*", None),
        ("application/*;q=0, */*", CSV),
        ("*/*;q=0, application/json", JSON),
        ("*/*;q=0", None),
    ],
)
def test_accept_picks_the_best_supported_type(
    regressor: Any, accept: str | None, chosen: str | None
) -> None:
    """Accept lists with parameters and q-values choose the preferred type; all refused is 406."""
    answer = invoke(regressor, csv_text(ROWS), CSV, accept)
    assert (answer.status, answer.mimetype) == ((200, chosen) if chosen else (406, JSON))


# --- Probabilities ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        pytest.param(JSON, json.dumps({"instances": ROWS, "probabilities": True}), id="json-field"),
        pytest.param(
            "application/json; probabilities=true", json.dumps(ROWS).encode(), id="json-param"
        ),
        pytest.param("text/csv; probabilities=TRUE", csv_text(ROWS).encode(), id="csv-param"),
        pytest.param(
            "application/x-npy; probabilities=true", npy_bytes(np.array(ROWS)), id="npy-param"
        ),
    ],
)
def test_probabilities_come_with_their_classes(
    classifier: Any, content_type: str, body: str | bytes
) -> None:
    """Asked for probabilities, a classifier adds predict_proba and classes_ to its predictions."""
    document = json.loads(invoke(classifier, body, content_type).body)
    assert document["predictions"] == classifier.predict(np.array(ROWS)).tolist()
    np.testing.assert_allclose(document["probabilities"], classifier.predict_proba(np.array(ROWS)))
    assert document["classes"] == classifier.classes_.tolist()


def test_probabilities_are_absent_unless_asked(classifier: Any) -> None:
    """Without the flag the JSON body carries predictions only."""
    assert list(json.loads(invoke(classifier, json.dumps(ROWS), JSON).body)) == ["predictions"]


def test_probabilities_as_csv_follow_each_prediction(classifier: Any) -> None:
    """CSV lines read: label, then one probability per class in classes_ order."""
    answer = invoke(classifier, csv_text(ROWS), "text/csv; probabilities=true", CSV)
    lines = [line.split(",") for line in answer.body.decode().splitlines()]
    assert [line[0] for line in lines] == classifier.predict(np.array(ROWS)).tolist()
    np.testing.assert_allclose(
        [[float(value) for value in line[1:]] for line in lines],
        classifier.predict_proba(np.array(ROWS)),
    )


# --- Bad input ----------------------------------------------------------------------------------


def _record_unpickling() -> int:
    UNPICKLED.append(True)
    return 0


UNPICKLED: list[bool] = []


class Tripwire:
    """Unpickling this calls _record_unpickling: proof that a body was unpickled."""

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return (_record_unpickling, ())


#: (model fixture, body, Content-Type, Accept, status, fragment of the error message)
BAD_REQUESTS = [
    pytest.param("regressor", "1,2,3", "application/xml", JSON, 415, "Content-Type", id="ct-xml"),
    pytest.param("regressor", "1,2,3", "text/plain", JSON, 415, "Content-Type", id="ct-text"),
    pytest.param(
        "regressor",
        b"1,2,3",
        "text/csv; charset=klingon",
        JSON,
        415,
        "charset",
        id="ct-unknown-charset",
    ),
    pytest.param("regressor", "1,2,3", CSV, "text/html", 406, "text/html", id="accept-html"),
    pytest.param(
        "regressor", "1,2,3", CSV, "application/json;q=0", 406, "accept", id="accept-q-zero"
    ),
    pytest.param(
        "classifier",
        "1,2,3",
        "text/csv; probabilities=true",
        NPY,
        406,
        "probabilities",
        id="accept-npy-with-probabilities",
    ),
    pytest.param("regressor", "", CSV, JSON, 400, "empty", id="empty-csv"),
    pytest.param("regressor", b" \n\n", CSV, JSON, 400, "empty", id="blank-csv"),
    pytest.param("regressor", b"", JSON, JSON, 400, "empty", id="empty-json"),
    pytest.param("regressor", " \n", JSON, JSON, 400, "empty", id="blank-json-text"),
    pytest.param("regressor", b"", NPY, JSON, 400, "empty", id="empty-npy"),
    pytest.param(
        "regressor",
        "1,2",
        CSV,
        JSON,
        400,
        "expected 3 features per row, got 2",
        id="csv-too-few-features",
    ),
    pytest.param(
        "regressor",
        "1,2,3,4",
        CSV,
        JSON,
        400,
        "expected 3 features per row, got 4",
        id="csv-too-many-features",
    ),
    pytest.param("regressor", "a,b,c\n1,2,3", CSV, JSON, 400, "malformed CSV", id="csv-header"),
    pytest.param("regressor", "1,2,3\n4,5", CSV, JSON, 400, "malformed CSV", id="csv-ragged"),
    pytest.param("regressor", "1,,3", CSV, JSON, 400, "malformed CSV", id="csv-empty-field"),
    pytest.param("regressor", "1;2;3", CSV, JSON, 400, "malformed CSV", id="csv-semicolons"),
    pytest.param(
        "regressor", "1,2,3\n1,\uff12,3", CSV, JSON, 400, "malformed CSV", id="csv-non-ascii"
    ),
    pytest.param("regressor", b"1,2,\xff", CSV, JSON, 400, "utf-8", id="csv-invalid-utf8"),
    pytest.param("regressor", "nan,2,3", CSV, JSON, 400, "NaN", id="csv-nan-for-linear-model"),
    pytest.param("regressor", "inf,2,3", CSV, JSON, 400, "infinity", id="csv-inf"),
    pytest.param("regressor", "[[1, 2, 3]", JSON, JSON, 400, "malformed JSON", id="json-truncated"),
    pytest.param("regressor", "[]", JSON, JSON, 400, "non-empty list", id="json-no-rows"),
    pytest.param(
        "regressor", '{"rows": [[1, 2, 3]]}', JSON, JSON, 400, "'rows'", id="json-unknown-field"
    ),
    pytest.param(
        "regressor",
        '{"instances": 3}',
        JSON,
        JSON,
        400,
        "non-empty list",
        id="json-instances-not-list",
    ),
    pytest.param("regressor", "[1, 2, 3]", JSON, JSON, 400, "list of numbers", id="json-flat"),
    pytest.param(
        "regressor", "[[1, 2, 3], [4, 5]]", JSON, JSON, 400, "same length", id="json-ragged"
    ),
    pytest.param("regressor", "[[[1, 2, 3]]]", JSON, JSON, 400, "flat list", id="json-3d"),
    pytest.param("regressor", '[[1, "two", 3]]', JSON, JSON, 400, "only numbers", id="json-string"),
    pytest.param(
        "regressor", "[[true, false, true]]", JSON, JSON, 400, "only numbers", id="json-booleans"
    ),
    pytest.param(
        "regressor", "[[1, 2.5, true]]", JSON, JSON, 400, "only numbers", id="json-bool-in-floats"
    ),
    pytest.param(
        "regressor",
        '{"instances": [[1, 2, 3], [false, 2, 3]]}',
        JSON,
        JSON,
        400,
        "only numbers",
        id="json-bool-in-ints",
    ),
    pytest.param(
        "regressor", '[[1, {"a": 2}, 3]]', JSON, JSON, 400, "only numbers", id="json-object-in-row"
    ),
    pytest.param(
        "regressor", "[[1, 2]]", JSON, JSON, 400, "expected 3 features", id="json-too-few-features"
    ),
    pytest.param("regressor", "[[]]", JSON, JSON, 400, "no features", id="json-empty-row"),
    pytest.param(
        "regressor",
        '[{"a": 1, "b": 2, "c": 3}]',
        JSON,
        JSON,
        400,
        "fitted without feature names",
        id="json-records-for-unnamed-model",
    ),
    pytest.param(
        "named_classifier",
        '[{"alpha": 1, "beta": 2}]',
        JSON,
        JSON,
        400,
        "missing gamma",
        id="json-record-missing-feature",
    ),
    pytest.param(
        "named_classifier",
        '[{"alpha": 1, "beta": 2, "gamma": 3, "delta": 4}]',
        JSON,
        JSON,
        400,
        "unknown delta",
        id="json-record-extra-feature",
    ),
    pytest.param(
        "named_classifier",
        '[{"alpha": 1, "beta": 2, "gamma": 3}, {"alpha": 1, "beta": 2}]',
        JSON,
        JSON,
        400,
        "instance 1 has keys",
        id="json-records-disagree",
    ),
    pytest.param(
        "named_classifier",
        '[{"alpha": 1, "beta": 2, "gamma": 3}, [1, 2, 3]]',
        JSON,
        JSON,
        400,
        "instance 1 is not an object",
        id="json-records-mixed-with-rows",
    ),
    pytest.param(
        "named_classifier",
        '[{"alpha": "x", "beta": 2, "gamma": 3}]',
        JSON,
        JSON,
        400,
        "rejected the input",
        id="json-record-string-for-numeric-model",
    ),
    pytest.param(
        "regressor",
        '{"instances": [[1, 2, 3]], "probabilities": "yes"}',
        JSON,
        JSON,
        400,
        "'probabilities' must be",
        id="json-probabilities-not-bool",
    ),
    pytest.param(
        "regressor",
        "1,2,3",
        "text/csv; probabilities=maybe",
        JSON,
        400,
        "probabilities must be true or false",
        id="param-probabilities-not-bool",
    ),
    pytest.param(
        "regressor",
        "1,2,3",
        "text/csv; probabilities=true",
        JSON,
        400,
        "no predict_proba",
        id="probabilities-from-regressor",
    ),
    pytest.param(
        "regressor", b"not an npy file", NPY, JSON, 400, "malformed .npy", id="npy-garbage"
    ),
    pytest.param(
        "regressor",
        npy_bytes(np.zeros((2, 3)))[:-5],
        NPY,
        JSON,
        400,
        "malformed .npy",
        id="npy-truncated",
    ),
    pytest.param("regressor", "\x93NUMPY", NPY, JSON, 400, "binary", id="npy-as-text"),
    pytest.param(
        "regressor", npy_bytes(np.array([1.0, 2.0, 3.0])), NPY, JSON, 400, "2-D", id="npy-1d"
    ),
    pytest.param("regressor", npy_bytes(np.zeros((1, 1, 3))), NPY, JSON, 400, "2-D", id="npy-3d"),
    pytest.param(
        "regressor",
        npy_bytes(np.array([["a", "b", "c"]])),
        NPY,
        JSON,
        400,
        "numeric",
        id="npy-strings",
    ),
    pytest.param(
        "regressor", npy_bytes(np.zeros((0, 3))), NPY, JSON, 400, "no samples", id="npy-no-rows"
    ),
    pytest.param(
        "regressor",
        npy_bytes(np.array([[Tripwire(), 1, 2]], dtype=object), True),
        NPY,
        JSON,
        400,
        "malformed .npy",
        id="npy-pickle",
    ),
]


@pytest.mark.parametrize(
    ("model_name", "body", "content_type", "accept", "status", "fragment"), BAD_REQUESTS
)
def test_bad_requests_get_a_4xx_with_a_json_reason(
    request: pytest.FixtureRequest,
    model_name: str,
    body: str | bytes,
    content_type: str,
    accept: str,
    status: int,
    fragment: str,
) -> None:
    """Each kind of client mistake is answered with its status and a JSON message naming it."""
    model = request.getfixturevalue(model_name)
    answer = invoke(model, body, content_type, accept)
    assert answer.status == status, answer.body
    assert fragment.lower() in answer.error().lower()


def test_handlers_return_rejections_instead_of_raising(regressor: Any) -> None:
    """Bad input travels as a Rejection value: any raised error is a 500 in the container."""
    rejection = inference.input_fn("", CSV)
    assert isinstance(rejection, wire.Rejection)
    assert inference.predict_fn(rejection, regressor) is rejection
    assert isinstance(inference.input_fn("1,2,3", "application/xml"), wire.Rejection)
    prediction = inference.predict_fn(inference.input_fn("1,2,3", CSV), regressor)
    assert inference.output_fn(prediction, "image/png").status_code == 406


def test_npy_bodies_are_never_unpickled(regressor: Any) -> None:
    """An object array in a .npy body is refused without running its pickle."""
    UNPICKLED.clear()
    body = npy_bytes(np.array([[Tripwire(), 1.0, 2.0]], dtype=object), allow_pickle=True)
    assert invoke(regressor, body, NPY).status == 400
    assert UNPICKLED == []


def test_an_unfitted_model_is_a_server_fault(tmp_path: Path) -> None:
    """A shipped model that was never fitted is a 500 with a JSON reason, not the client's 400."""
    model = inference.model_fn(str(dump(LinearRegression(), tmp_path)))
    fault = inference.predict_fn(inference.input_fn("1,2,3", CSV), model)
    assert isinstance(fault, wire.Fault)
    answer = invoke(model, "1,2,3", CSV)
    assert answer.status == 500
    assert f"the model failed: {NotFittedError.__name__}" in answer.error()


# --- Large bodies (their speed is bench/'s to measure: no test asserts a time) -------------


def test_large_bodies_parse_exactly_without_genfromtxt(monkeypatch: pytest.MonkeyPatch) -> None:
    """10,000 x 10 as CSV and JSON parse to the same matrix, never through np.genfromtxt."""

    def slow_path(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("np.genfromtxt is the container default's slow CSV path")

    monkeypatch.setattr(np, "genfromtxt", slow_path)
    rows = np.random.default_rng(0).normal(size=(10_000, 10)).round(6)
    as_csv, as_json = csv_text(rows.tolist()), json.dumps({"instances": rows.tolist()})
    np.testing.assert_array_equal(inference.input_fn(as_csv, CSV).data, rows)
    np.testing.assert_array_equal(inference.input_fn(as_json, JSON).data, rows)


@pytest.fixture
def bulk_lanes_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bulk JSON reader and the bulk float writer take bodies and batches of any size."""
    set_in_wire(monkeypatch, "BULK_JSON_CHARS", 0)
    set_in_wire(monkeypatch, "BULK_PREDICTIONS", 1)


def general_path(text: str) -> Any:
    """What a JSON body decodes to without the bulk reader (json.loads and its checks)."""
    with wire_limits(BULK_JSON_CHARS=sys.maxsize):
        return wire.decode(text, JSON)


def encoded_json(prediction: Any) -> str:
    """The JSON body output_fn writes for a prediction (and must write: a 200)."""
    response = inference.output_fn(prediction, JSON)
    assert response.status_code == 200, response.get_data()
    return str(response.get_data(as_text=True))


finite = st.floats(allow_nan=False, allow_infinity=False)
json_rows = st.integers(1, 6).flatmap(
    lambda width: st.lists(
        st.lists(finite | st.integers(-(2**63), 2**63 - 1), min_size=width, max_size=width),
        min_size=1,
        max_size=8,
    )
)


@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(
    rows=json_rows,
    wrapped=st.booleans(),
    separators=st.sampled_from([(", ", ": "), (",", ":")]),
    padding=st.sampled_from(["", " ", "\n "]),
    values_per_line=st.sampled_from([1, 4, 12, 4096]),
)
def test_bulk_json_reader_gives_the_matrix_json_loads_gives(
    rows: list[list[float]],
    wrapped: bool,
    separators: tuple[str, str],
    padding: str,
    values_per_line: int,
) -> None:
    """Rows as json.dumps or JSON.stringify write them: the bulk reader, bit for bit."""
    document: Any = {"instances": rows} if wrapped else rows
    text = padding + json.dumps(document, separators=separators) + padding
    with wire_limits(VALUES_PER_LINE=values_per_line):  # whole lines, a shorter last, one
        bulk = wire.bulk_json_rows(text)
    assert bulk is not None, text
    expected = general_path(text).data
    assert bulk.dtype == expected.dtype == np.float64
    assert bulk.shape == expected.shape
    assert bulk.tobytes() == expected.tobytes(), text  # also tells 0.0 from -0.0


#: Bodies the bulk reader must leave to the general path (which answers them, or refuses them).
NOT_BULK = [
    pytest.param("[[[1, 2]], [[3, 4]]]", id="nested"),
    pytest.param("[[1, 2], []]", id="empty-row"),
    pytest.param("[[1, 2], [ ]]", id="blank-row"),
    pytest.param("[[], []]", id="only-empty-rows"),
    pytest.param("[[1, 2], [3]]", id="ragged"),
    pytest.param("[[1, 2], [3], [4, 5, 6]]", id="ragged-rows-adding-up"),
    pytest.param("[[1, 2], [3, 4, 5], [6]]", id="ragged-rows-adding-up-over-two-lines"),
    pytest.param("[[1, 2, 3], [4, 5, 6], [7], [8, 9, 10, 11]]", id="ragged-last-rows"),
    pytest.param("[[1, null]]", id="null"),
    pytest.param("[[true, 1]]", id="boolean"),
    pytest.param('[["1", 2]]', id="string"),
    pytest.param("[[NaN, 1]]", id="nan"),
    pytest.param("[[Infinity, 1]]", id="infinity"),
    pytest.param("[[1e999, 1]]", id="overflow"),
    pytest.param("[[1, 2],\n[3, 4]]", id="newline-between-rows"),
    pytest.param("[[1,\n2]]", id="newline-in-row"),
    pytest.param("[[1, 2]\n,[3, 4]]", id="newline-before-comma"),
    pytest.param("[[1, 2\n3, 4]]", id="newline-for-a-comma"),
    pytest.param("[[1, 2\r3, 4]]", id="carriage-return-for-a-comma"),
    pytest.param("[[1, 2][3, 4]]", id="missing-comma"),
    pytest.param("[[1, 2]x,[3, 4]]", id="garbage-between-rows"),
    pytest.param("[[1, 2]x[3, 4]]", id="garbage-for-a-comma"),
    pytest.param("[[1, 2] 3]", id="number-after-last-row"),
    pytest.param("[[1] 3]", id="number-after-only-row"),
    pytest.param("[[1, 2],  [3, 4]]", id="two-spaces"),
    pytest.param("[[1, 2],[3, 4], [5, 6]]", id="mixed-separators"),
    pytest.param("[[1, 2],5[, 4]]", id="value-moved-out-of-a-row"),
    pytest.param("[[1, 2]] x", id="trailing-garbage"),
    pytest.param("[[1, 2]]]", id="extra-bracket"),
    pytest.param("[[1, 2], [3, 4]", id="truncated"),
    pytest.param("[[1, 2], 3]", id="number-after-rows"),
    pytest.param("[3, [1, 2]]", id="number-before-rows"),
    pytest.param("[[1, 2], {}]", id="object-among-rows"),
    pytest.param("[[1,\u00a02]]", id="non-ascii-space"),
    pytest.param("[[1,\x0b2]]", id="vertical-tab-in-a-row"),
    pytest.param("[[1,\x0c2]]", id="form-feed-in-a-row"),
    pytest.param("[[1,\x1c2]]", id="file-separator-in-a-row"),
    pytest.param("[[1,\t2]]", id="tab-in-a-row"),
    pytest.param("\u00a0[[1, 2]]", id="no-break-space-before"),
    pytest.param("[[1, 2]]\u2028", id="line-separator-after"),
    pytest.param('{"instances"\x85: [[1, 2]]}', id="odd-space-after-the-key"),
    pytest.param('{"instances": [[1, 2]]\x1f}', id="odd-space-before-the-brace"),
    pytest.param("[[\x0b1, 2]]", id="odd-space-after-the-brackets"),
    pytest.param("[[-0, 1.5]]", id="integer-minus-zero"),
    pytest.param("[[-00, 1.5], [2.5, 3.5]]", id="integer-minus-zero-with-a-leading-zero"),
    pytest.param('{"instances": [[1, 2]], "probabilities": true}', id="another-field"),
    pytest.param('{"rows": [[1, 2]]}', id="unknown-field"),
    pytest.param('[{"a": 1}]', id="records"),
    pytest.param("[1, 2]", id="flat"),
]


@pytest.mark.usefixtures("bulk_lanes_everywhere")
@pytest.mark.parametrize("values_per_line", [1, 4, 4096])
@pytest.mark.parametrize("text", NOT_BULK)
def test_bulk_json_reader_leaves_everything_else_to_json_loads(
    text: str, values_per_line: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nesting, empty rows, null, strings, NaN, odd spacing, other fields: the general path."""
    set_in_wire(monkeypatch, "VALUES_PER_LINE", values_per_line)
    assert wire.bulk_json_rows(text) is None
    answer, expected = inference.input_fn(text, JSON), general_path(text)
    assert type(answer) is type(expected)
    if isinstance(expected, wire.Rejection):
        assert (answer.status, answer.message) == (expected.status, expected.message)
    elif isinstance(expected.data, wire.Records):
        assert answer.data.records == expected.data.records
    elif isinstance(expected.data, wire.Cells):  # rows with text: the model decides
        assert answer.data.rows == expected.data.rows
        assert answer.data.rejection.message == expected.data.rejection.message
    else:
        np.testing.assert_array_equal(answer.data, expected.data)


@pytest.mark.usefixtures("bulk_lanes_everywhere")
def test_bulk_json_reader_reads_lenient_spellings_as_numbers() -> None:
    """What the docstring admits: +1, .5, 5. and 007 are read as the numbers they spell."""
    np.testing.assert_array_equal(
        wire.bulk_json_rows("[[+1, .5], [5., 007]]"), [[1.0, 0.5], [5.0, 7.0]]
    )


def test_bulk_json_reader_reads_wide_rows_and_declines_rows_its_counts_cannot_hold() -> None:
    """Rows of 300 values are read; rows of 65,536 values or more (past the counts) go to json."""
    wide = np.random.default_rng(4).normal(size=(3, 300)).round(2)
    np.testing.assert_array_equal(wire.bulk_json_rows(json.dumps(wide.tolist())), wide)
    widest = np.arange(2 * 65_536, dtype=np.float64).reshape(2, 65_536)
    assert wire.bulk_json_rows(json.dumps(widest.tolist())) is None
    # 65,537 values have as many commas, modulo 65536, as a row of one: the size tells them apart.
    many = ", ".join(["0.5"] * 65_537)
    assert wire.bulk_json_rows(f"[[1], [{many}], [2]]") is None


def test_large_json_bodies_skip_json_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    """At the real threshold, 10,000 rows are read without json.loads (the bulk reader)."""
    rows = np.random.default_rng(2).normal(size=(10_000, 10)).round(4)
    text = json.dumps(rows.tolist())
    assert len(text) >= wire.BULK_JSON_CHARS

    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("json.loads parsed a body the bulk reader should have read")

    monkeypatch.setattr(json, "loads", refuse)
    np.testing.assert_array_equal(inference.input_fn(text, JSON).data, rows)


@settings(max_examples=200, derandomize=True, database=None, deadline=None)
@given(values=st.lists(finite, min_size=1, max_size=50))
def test_bulk_float_writer_reads_back_as_the_same_floats(values: list[float]) -> None:
    """17 significant digits: every finite float64 comes back bit for bit through json.loads."""
    array = np.asarray(values, dtype=np.float64)
    with wire_limits(BULK_PREDICTIONS=1):
        written = wire.bulk_floats(array)
    if (np.floor(array) == array).any():
        assert written is None  # whole numbers keep json.dumps' 1.0 and -0.0
        return
    assert written is not None
    assert np.asarray(json.loads(f"[{written}]")).tobytes() == array.tobytes()


def test_bulk_float_writer_is_for_large_finite_fractional_float_batches() -> None:
    """Small batches, NaN, a whole number, float32 and 2-D keep json.dumps' spelling."""
    many = np.random.default_rng(3).normal(size=wire.BULK_PREDICTIONS)
    assert wire.bulk_floats(many) is not None
    assert wire.bulk_floats(many[:-1]) is None
    assert wire.bulk_floats(np.where(np.arange(many.size) == 7, np.nan, many)) is None
    assert wire.bulk_floats(np.where(np.arange(many.size) == 9, 3.0, many)) is None
    assert wire.bulk_floats(many.astype(np.float32)) is None
    assert wire.bulk_floats(many.reshape(-1, 2)) is None


def awkward_floats() -> np.ndarray:
    """200,000 fractional floats across the digit writer's range, and its hardest neighbours.

    Log-uniform magnitudes from 1e-10 to 1e16, both signs; then the floats next to every power
    of ten (where the exponent guess is one off) and of two (where the gap between floats
    halves), and the range's own ends.
    """
    rng = np.random.default_rng(11)
    values = 10.0 ** rng.uniform(-10, 16, 200_000) * rng.choice([-1.0, 1.0], 200_000)
    edges = [10.0**k for k in range(-10, 17)] + [2.0**k for k in range(-33, 54)]
    near = np.concatenate([np.nextafter(np.nextafter(edges, 0), 0), np.nextafter(edges, 0)])
    near = np.concatenate([near, edges, np.nextafter(edges, np.inf), [1e-10, 2.0**52 - 0.5]])
    values = np.concatenate([values, near, -near])
    return values[
        (np.floor(values) != values) & (np.abs(values) >= 1e-10) & (np.abs(values) < 1e16)
    ]


def test_bulk_float_writer_digits_read_back_as_the_same_floats() -> None:
    """The numpy-computed 17 digits: 200,000 floats and the hardest ones come back bit for bit."""
    values = awkward_floats()
    written = wire.bulk_floats(values)
    assert written is not None
    assert re.fullmatch(r"(-?[1-9]\.[0-9]{16}e-?[0-9]+,)*-?[1-9]\.[0-9]{16}e-?[0-9]+", written)
    assert np.asarray(json.loads(f"[{written}]")).tobytes() == values.tobytes()


def test_the_digit_writers_powers_of_ten_are_exact() -> None:
    """10**0 to 10**27 exactly (the error bound needs it): not rounded through float64."""
    assert [int(power) for power in wire.POWERS_OF_TEN] == [10**k for k in range(28)]


def test_bulk_float_writer_falls_back_to_17g_where_it_cannot_work_out_digits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Below 1e-10, or without wide long doubles: %.17g, which also reads back."""
    values = np.random.default_rng(12).normal(size=wire.BULK_PREDICTIONS)
    for tiny in (9.9e-11, -2.5e-11, 1e-300, 5e-324):
        mixed = values.copy()
        mixed[5] = tiny
        written = wire.bulk_floats(mixed)
        assert written == ",".join(format(value, ".17g") for value in mixed.tolist())
    set_in_wire(monkeypatch, "LONG_DOUBLE_IS_WIDE", False)
    written = wire.bulk_floats(values)
    assert written == ",".join(format(value, ".17g") for value in values.tolist())
    assert np.asarray(json.loads(f"[{written}]")).tobytes() == values.tobytes()


@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(
    values=st.lists(st.floats(), max_size=20).map(lambda v: np.asarray(v, dtype=np.float64))
    | st.lists(st.integers(-(2**63), 2**63 - 1), max_size=20).map(np.asarray)
    | st.lists(st.floats(width=32), max_size=20).map(lambda v: np.asarray(v, dtype=np.float32))
    | st.lists(st.floats(width=16), max_size=20).map(lambda v: np.asarray(v, dtype=np.float16))
    | st.lists(st.integers(0, 2**64 - 1), max_size=20).map(lambda v: np.asarray(v, np.uint64))
    | st.lists(st.integers(-128, 127), max_size=20).map(lambda v: np.asarray(v, np.int8))
    | st.lists(st.booleans(), max_size=5).map(np.asarray)
    | st.lists(st.text(max_size=3), max_size=5).map(np.asarray)
)
def test_json_answers_below_the_bulk_size_are_what_json_dumps_writes(values: np.ndarray) -> None:
    """Ints, floats with NaN and infinity, booleans, strings: byte for byte json.dumps."""
    written = encoded_json(wire.Prediction(values))
    assert written == json.dumps({"predictions": values.tolist()})


#: Runs in the runtime (numpy 1.24): for each body, whether the bulk reader read it, and whether
#: that equals what the general path gives.
BULK_UNDER_THE_CONTAINERS_NUMPY = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import skdeploy_wire as wire
results = []
for body in json.load(sys.stdin):
    bulk = wire.bulk_json_rows(body)
    wire._parsing.BULK_JSON_CHARS = sys.maxsize
    general = wire.decode(body, wire.JSON)
    wire._parsing.BULK_JSON_CHARS = 4096
    same = (
        bulk is not None
        and isinstance(general, wire.Batch)
        and bulk.tobytes() == general.data.tobytes()
        and bulk.shape == general.data.shape
    )
    results.append([bulk is not None, same])
json.dump(results, sys.stdout)
"""


def test_the_bulk_reader_behaves_the_same_under_the_containers_numpy(
    runtime_python: Path,
) -> None:
    """In the 1.2-1 runtime (numpy 1.24): every NOT_BULK body is declined, valid rows read alike."""
    rng = np.random.default_rng(5)
    valid = [
        json.dumps(rng.normal(size=(50, 4)).tolist()),
        json.dumps(rng.normal(size=(1500, 3)).tolist()),  # a line of 1,365 rows, then 135
        json.dumps({"instances": rng.normal(size=(3, 7)).round(3).tolist()}),
        json.dumps(rng.integers(-(2**62), 2**62, size=(4, 3)).tolist(), separators=(",", ":")),
        "[[-0.0, 1e-310], [1.7976931348623157e308, 5e-324]]",
    ]
    declined = [param.values[0] for param in NOT_BULK]
    completed = subprocess.run(
        [str(runtime_python), "-c", BULK_UNDER_THE_CONTAINERS_NUMPY, str(WIRE_PATH.parent)],
        input=json.dumps(valid + declined),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    results = json.loads(completed.stdout)
    assert results[: len(valid)] == [[True, True]] * len(valid)
    assert results[len(valid) :] == [[False, False]] * len(declined)


#: Runs in the runtime: writes the floats given (as float64 bytes) and reports the digit form's
#: use and whether json.loads gives the same floats back.
FLOATS_UNDER_THE_CONTAINERS_NUMPY = r"""
import json, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import skdeploy_wire as wire
values = np.frombuffer(sys.stdin.buffer.read(), dtype=np.float64)
written = wire.bulk_floats(values)
back = np.asarray(json.loads("[" + written + "]"), dtype=np.float64)
json.dump([wire.decimal_digits(values) is not None, back.tobytes() == values.tobytes()],
          sys.stdout)
"""


def test_the_bulk_float_writer_reads_back_under_the_containers_numpy(
    runtime_python: Path,
) -> None:
    """In the 1.2-1 runtime (numpy 1.24, its long doubles): the digit form, read back exactly."""
    completed = subprocess.run(
        [str(runtime_python), "-c", FLOATS_UNDER_THE_CONTAINERS_NUMPY, str(WIRE_PATH.parent)],
        input=awkward_floats().tobytes(),
        capture_output=True,
        check=True,
        timeout=120,
    )
    assert json.loads(completed.stdout) == [True, True]


def test_minus_zero_keeps_its_json_meaning_in_the_bulk_reader() -> None:
    """-0.0 stays -0.0, the integer -0 is 0: the bulk reader leaves -0 to json.loads."""
    rows = "[[-0.0, 1.5], [2.5, -0e1]]"
    read = wire.bulk_json_rows(rows)
    assert read is not None
    assert np.signbit(read[[0, 1], [0, 1]]).all()
    for body in ("[[-0, 1.5]]", "[[1.5, -0], [2.5, 3.5]]", "[[1.5, 2.5], [3.5, -0 ]]"):
        assert wire.bulk_json_rows(body) is None
        assert not np.signbit(general_path(body).data).any()


def test_longdouble_predictions_are_written_as_json_numbers() -> None:
    """A model predicting np.longdouble is answered (as floats), not a 500 from json."""
    values = np.array([0.1, 1.5], dtype=np.longdouble)
    written = json.loads(encoded_json(wire.Prediction(values)))
    assert written == {"predictions": [0.1, 1.5]}


def test_large_json_answers_carry_the_exact_predictions(regressor: Any) -> None:
    """A 2,000-row answer (the bulk writer) reads back as exactly the model's predictions."""
    rows = np.random.default_rng(4).normal(size=(2_000, 3))
    answer = invoke(regressor, csv_text(rows.tolist()), CSV, JSON)
    assert answer.body.startswith(b'{"predictions": [')
    expected = regressor.predict(rows)
    assert decode_predictions(answer).tobytes() == expected.tobytes()
    assert answer.body != json.dumps({"predictions": expected.tolist()}).encode()  # not dumps


# --- The real container library -----------------------------------------------------------------

#: Runs under the runtime virtualenv (Python 3.9, sagemaker-containers 2.8.6, sklearn 1.2.1):
#: trains the models there, serves each through Transformer + Worker exactly as the container's
#: serving.py builds them, and sends every case through Flask's test client.
RUNTIME_SCRIPT = r'''
import base64, importlib, json, os, sys

import joblib
import numpy as np
import pandas as pd
from sklearn.linear_model import LinearRegression, LogisticRegression
from sagemaker_containers.beta.framework import encoders, transformer, worker
from sagemaker_containers import _env

spec = json.load(sys.stdin)
sys.path.insert(0, spec["code_dir"])
user_module = importlib.import_module("inference")  # what SAGEMAKER_PROGRAM=inference.py does

X = np.array(spec["x_train"])
models = {
    "regressor": LinearRegression().fit(X, spec["y_regression"]),
    "classifier": LogisticRegression().fit(X, spec["y_labels"]),
    "named_classifier": LogisticRegression().fit(
        pd.DataFrame(X, columns=spec["feature_names"]), spec["y_labels"]
    ),
}


def container_defaults():
    """The handlers serving.py substitutes when inference.py defines none but model_fn."""
    return dict(
        input_fn=lambda data, ct: encoders.decode(data, ct).astype(np.float32),
        predict_fn=lambda data, model: model.predict(data),
        output_fn=lambda prediction, accept: worker.Response(
            encoders.encode(prediction, accept), mimetype=accept
        ),
    )


def ours():
    return dict(
        input_fn=user_module.input_fn,
        predict_fn=user_module.predict_fn,
        output_fn=user_module.output_fn,
    )


clients = {}
for name, model in models.items():
    for handlers in ("ours", "defaults"):
        model_dir = os.path.join(os.environ["SAGEMAKER_BASE_DIR"], name, "model")
        os.makedirs(model_dir, exist_ok=True)
        joblib.dump(model, os.path.join(model_dir, "model.joblib"))
        # serving.py serves one model from _env.model_dir; this process serves three.
        _env.model_dir = model_dir
        chosen = ours() if handlers == "ours" else container_defaults()
        user_transformer = transformer.Transformer(model_fn=user_module.model_fn, **chosen)
        user_transformer.initialize()
        app = worker.Worker(transform_fn=user_transformer.transform, module_name="inference")
        clients[name, handlers] = (app.test_client(), user_transformer._model)

results = {}
for case in spec["cases"]:
    client, model = clients[case["model"], case["handlers"]]
    headers = {}
    if case["content_type"] is not None:
        headers["Content-Type"] = case["content_type"]
    if case["accept"] is not None:
        headers["Accept"] = case["accept"]
    response = client.post(
        "/invocations", data=base64.b64decode(case["body"]), headers=headers
    )
    expected = None
    if case["rows"] is not None:
        rows = np.array(case["rows"])
        if case["model"] == "named_classifier":
            rows = pd.DataFrame(rows, columns=spec["feature_names"])
        expected = {"predictions": model.predict(rows).tolist()}
        if case["probabilities"]:
            expected["probabilities"] = model.predict_proba(rows).tolist()
            expected["classes"] = model.classes_.tolist()
    results[case["id"]] = {
        "status": response.status_code,
        "mimetype": response.mimetype,
        "body": base64.b64encode(response.get_data()).decode(),
        "expected": expected,
    }
ping = clients["regressor", "ours"][0].get("/ping")
results["ping"] = {"status": ping.status_code}
results["python"] = list(sys.version_info[:2])
json.dump(results, open(spec["results"], "w"))
'''


@dataclass(frozen=True)
class RuntimeCase:
    """One request to the served model in the runtime virtualenv, and what must come back."""

    id: str
    body: bytes
    content_type: str | None
    accept: str | None
    status: int
    model: str = "regressor"
    handlers: str = "ours"
    rows: list[list[float]] | None = None
    probabilities: bool = False
    fragment: str = ""


BIG_ROWS = np.random.default_rng(1).normal(size=(10_000, 3)).round(6).tolist()
RECORDS = [dict(zip(reversed(FEATURE_NAMES), reversed(row), strict=True)) for row in ROWS]

RUNTIME_CASES = [
    RuntimeCase("csv", csv_text(ROWS).encode(), CSV, CSV, 200, rows=ROWS),
    RuntimeCase("csv-one-row", b"1,2,3", CSV, JSON, 200, rows=[[1.0, 2.0, 3.0]]),
    RuntimeCase(
        "csv-charset", csv_text(ROWS).encode(), "text/csv; charset=utf-8", JSON, 200, rows=ROWS
    ),
    RuntimeCase("csv-10000-rows", csv_text(BIG_ROWS).encode(), CSV, JSON, 200, rows=BIG_ROWS),
    RuntimeCase("json-10000-rows", json.dumps(BIG_ROWS).encode(), JSON, JSON, 200, rows=BIG_ROWS),
    RuntimeCase(
        "json-10000-compact-instances",
        json.dumps({"instances": BIG_ROWS}, separators=(",", ":")).encode(),
        JSON,
        JSON,
        200,
        rows=BIG_ROWS,
    ),
    RuntimeCase(
        "json-instances", json.dumps({"instances": ROWS}).encode(), JSON, NPY, 200, rows=ROWS
    ),
    RuntimeCase("no-headers", json.dumps(ROWS).encode(), None, None, 200, rows=ROWS),
    RuntimeCase("accept-any", json.dumps(ROWS).encode(), JSON, "*/*", 200, rows=ROWS),
    RuntimeCase(
        "accept-list",
        json.dumps(ROWS).encode(),
        JSON,
        "text/html;q=0.9, text/csv;q=0.8, */*;q=0.1",
        200,
        rows=ROWS,
    ),
    RuntimeCase("npy", npy_bytes(np.array(ROWS)), NPY, JSON, 200, rows=ROWS),
    RuntimeCase(
        "json-probabilities",
        json.dumps({"instances": ROWS, "probabilities": True}).encode(),
        JSON,
        JSON,
        200,
        model="classifier",
        rows=ROWS,
        probabilities=True,
    ),
    RuntimeCase(
        "csv-probabilities",
        csv_text(ROWS).encode(),
        "text/csv; probabilities=true",
        JSON,
        200,
        model="classifier",
        rows=ROWS,
        probabilities=True,
    ),
    RuntimeCase(
        "records-pandas-1.1",
        json.dumps({"instances": RECORDS}).encode(),
        JSON,
        JSON,
        200,
        model="named_classifier",
        rows=ROWS,
    ),
    RuntimeCase(
        "rows-for-named-model",
        csv_text(ROWS).encode(),
        CSV,
        JSON,
        200,
        model="named_classifier",
        rows=ROWS,
    ),
    RuntimeCase(
        "unsupported-content-type", b"1,2,3", "application/xml", JSON, 415, fragment="Content-Type"
    ),
    RuntimeCase("unsupported-accept", b"1,2,3", CSV, "text/html", 406, fragment="text/html"),
    RuntimeCase("empty-body", b"", CSV, JSON, 400, fragment="empty"),
    RuntimeCase("wrong-feature-count", b"1,2", CSV, JSON, 400, fragment="expected 3 features"),
    RuntimeCase("non-numeric", b"1,x,3", CSV, JSON, 400, fragment="malformed CSV"),
    RuntimeCase("malformed-json", b"[[1,2", JSON, JSON, 400, fragment="malformed JSON"),
    RuntimeCase("nan", b"[[null, 2, 3]]", JSON, JSON, 400, fragment="NaN"),
    RuntimeCase(
        "npy-pickle",
        npy_bytes(np.array([[object()]], dtype=object), True),
        NPY,
        JSON,
        400,
        fragment="malformed .npy",
    ),
    RuntimeCase(
        "records-missing-feature",
        b'[{"alpha": 1, "beta": 2}]',
        JSON,
        JSON,
        400,
        model="named_classifier",
        fragment="missing gamma",
    ),
    RuntimeCase(
        "probabilities-from-regressor",
        b"1,2,3",
        "text/csv; probabilities=true",
        JSON,
        400,
        fragment="no predict_proba",
    ),
    # The container's own defaults answer the same mistakes with 500: why ours must not raise.
    RuntimeCase(
        "defaults-unsupported-content-type",
        b"1,2,3",
        "application/xml",
        JSON,
        500,
        handlers="defaults",
    ),
    RuntimeCase(
        "defaults-unsupported-accept", b"1,2,3", CSV, "text/html", 500, handlers="defaults"
    ),
    RuntimeCase(
        "defaults-csv-charset", b"1,2,3", "text/csv; charset=utf-8", JSON, 500, handlers="defaults"
    ),
]


@pytest.fixture(scope="module")
def runtime_results(
    runtime_python: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """Every RUNTIME_CASES request, answered by sagemaker-containers in one runtime process."""
    python = str(runtime_python)
    work = tmp_path_factory.mktemp("runtime")
    script = work / "serve_cases.py"
    script.write_text(RUNTIME_SCRIPT)
    spec = {
        "code_dir": str(INFERENCE_PATH.parent),
        "results": str(work / "results.json"),
        "x_train": X_TRAIN,
        "y_regression": Y_REGRESSION,
        "y_labels": Y_LABELS,
        "feature_names": FEATURE_NAMES,
        "cases": [
            {
                "id": case.id,
                "model": case.model,
                "handlers": case.handlers,
                "content_type": case.content_type,
                "accept": case.accept,
                "body": base64.b64encode(case.body).decode(),
                "rows": case.rows,
                "probabilities": case.probabilities,
            }
            for case in RUNTIME_CASES
        ],
    }
    env = container_env(work)
    completed = subprocess.run(
        [python, str(script)],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    results: dict[str, Any] = json.loads((work / "results.json").read_text())
    return results


@pytest.mark.runtime
def test_runtime_is_the_containers_python(runtime_results: dict[str, Any]) -> None:
    """The handlers were imported and served by Python 3.9, and /ping answers 200."""
    assert runtime_results["python"] == [3, 9]
    assert runtime_results["ping"]["status"] == 200


@pytest.mark.runtime
@pytest.mark.parametrize("case", RUNTIME_CASES, ids=[case.id for case in RUNTIME_CASES])
def test_runtime_answers_with_the_right_status(
    runtime_results: dict[str, Any], case: RuntimeCase
) -> None:
    """Through sagemaker-containers 2.8.6, each request gets its status, body and predictions."""
    result = runtime_results[case.id]
    answer = Answer(result["status"], result["mimetype"], base64.b64decode(result["body"]))
    assert answer.status == case.status, answer.body[:2000]
    if case.handlers == "defaults":
        return
    if case.status != 200:
        assert case.fragment.lower() in answer.error().lower()
        return
    expected = result["expected"]
    predictions = decode_predictions(answer)
    # Exactly the model's own predictions: every encoding must read back as the same float64.
    np.testing.assert_array_equal(predictions, np.asarray(expected["predictions"]))
    if case.probabilities:
        document = json.loads(answer.body)
        np.testing.assert_allclose(document["probabilities"], expected["probabilities"])
        assert document["classes"] == expected["classes"]
