"""skdeploy_wire (inference/skdeploy_wire/) through its public functions, and its place in code/.

The handler tests (test_inference.py, test_handler_contract.py, test_dataframe_csv.py) pin every
format, status code and message through inference.py's handlers; these pin the module's own
contract: its public names, its two format tables behind one entry point each, and that
inference.py stays a short file of handlers that delegate to it.
"""

from __future__ import annotations

import ast
import io
import json
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
import sklearn
from sklearn.ensemble import RandomForestRegressor, VotingRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from skdeploy.core.constants import WIRE_MODULE
from skdeploy.core.trusted import module_name_problem
from tests.support import INFERENCE_PATH, WIRE_PATH, load_inference, load_wire

wire = load_wire()
inference = load_inference("inference_wire")

X = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0], [3.0, 1.0]])
HANDLERS = ("model_fn", "input_fn", "predict_fn", "output_fn", "execution_parameters_fn")

#: One body per request type, each the same two samples.
BODIES: list[tuple[str, str | bytes]] = [
    ("application/json", "[[1.0, 2.0], [3.0, 4.0]]"),
    ("text/csv", "1,2\n3,4"),
    ("application/jsonlines", b"[1, 2]\n[3, 4]"),
]


def npy(array: np.ndarray) -> bytes:
    """``array`` as a .npy body."""
    out = io.BytesIO()
    np.save(out, array, allow_pickle=False)
    return out.getvalue()


BODIES.append(("application/x-npy", npy(np.array([[1.0, 2.0], [3.0, 4.0]]))))


@pytest.fixture(scope="module")
def regressor(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A LinearRegression on two unnamed features, loaded through load_model."""
    folder = tmp_path_factory.mktemp("regressor")
    joblib.dump(LinearRegression().fit(X, [1.0, 2.0, 3.0, 4.0]), folder / "model.joblib")
    return wire.load_model(str(folder))


@pytest.fixture(scope="module")
def classifier(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A LogisticRegression with string labels, loaded through load_model."""
    folder = tmp_path_factory.mktemp("classifier")
    joblib.dump(LogisticRegression().fit(X, ["no", "yes", "no", "yes"]), folder / "model.joblib")
    return wire.load_model(str(folder))


# --- The module and its public names --------------------------------------------------------------


def test_every_public_name_exists_and_the_rest_is_private() -> None:
    """__all__ names what the package offers; every other top-level name starts with _."""
    assert all(hasattr(wire, name) for name in wire.__all__)
    defined = set()
    for path in WIRE_PATH.glob("*.py"):
        tree = ast.parse(path.read_text())
        kinds = (ast.FunctionDef, ast.ClassDef)
        defined |= {node.name for node in tree.body if isinstance(node, kinds)}
    assert {name for name in defined if not name.startswith("_")} <= set(wire.__all__)
    assert all(path.name.startswith("_") for path in WIRE_PATH.glob("*.py"))


def test_the_tables_hold_every_type_in_the_documented_order() -> None:
    """One decoder per request type, one encoder per response type, in the 415's and */*'s order."""
    expected = ("application/json", "text/csv", "application/x-npy", "application/jsonlines")
    assert tuple(wire.DECODERS) == wire.REQUEST_TYPES == expected
    assert tuple(wire.ENCODERS) == wire.RESPONSE_TYPES == expected
    assert wire.BINARY_TYPES == ("application/x-npy",)


def test_the_wire_ships_under_the_name_the_tool_knows() -> None:
    """skdeploy's constant names the package that sits beside inference.py."""
    assert WIRE_PATH.name == WIRE_MODULE
    assert WIRE_PATH.parent == INFERENCE_PATH.parent


def test_the_wire_cannot_be_trusted_as_a_users_module() -> None:
    """A pickle may not name skdeploy_wire's classes through trustedModules."""
    problem = module_name_problem("skdeploy_wire")
    assert problem is not None
    assert "handler modules" in problem
    assert module_name_problem("skdeploy_wire.Batch") is not None


# --- inference.py: short handlers that delegate -------------------------------------------------


def test_inference_py_is_short_enough_to_read() -> None:
    """Issue 15: under 150 lines, the handlers only."""
    assert len(INFERENCE_PATH.read_text().splitlines()) < 150


def test_each_handler_is_one_call_to_the_wire() -> None:
    """model_fn, input_fn, predict_fn, output_fn, execution_parameters_fn: each returns wire.x()."""
    tree = ast.parse(INFERENCE_PATH.read_text())
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    assert set(functions) == set(HANDLERS)
    called = {}
    for name, function in functions.items():
        statements = [s for s in function.body if not isinstance(s, ast.Expr)]  # docstring
        (statement,) = statements
        assert isinstance(statement, ast.Return)
        call = statement.value
        assert isinstance(call, ast.Call)
        assert isinstance(call.func, ast.Attribute)
        assert ast.unparse(call.func.value) == "wire"
        called[name] = call.func.attr
    assert called == {
        "model_fn": "load_model",
        "input_fn": "decode",
        "predict_fn": "predict",
        "output_fn": "encode",
        "execution_parameters_fn": "execution_parameters",
    }


def test_the_handlers_answer_as_the_wire_does(regressor: Any) -> None:
    """Through inference.py or straight through the wire: the same status, type and body."""
    for content_type, body in BODIES:
        through_handlers = inference.output_fn(
            inference.predict_fn(inference.input_fn(body, content_type), regressor), "text/csv"
        )
        direct = wire.encode(wire.predict(wire.decode(body, content_type), regressor), "text/csv")
        assert (through_handlers.status_code, through_handlers.get_data()) == (
            direct.status_code,
            direct.get_data(),
        )


# --- decode ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("content_type", "body"), BODIES, ids=[c for c, _ in BODIES])
def test_decode_reads_every_request_type_to_the_same_samples(
    content_type: str, body: str | bytes
) -> None:
    """Each DECODERS entry gives the same float64 matrix for the same two samples."""
    batch = wire.decode(body, content_type)
    assert isinstance(batch, wire.Batch)
    np.testing.assert_array_equal(batch.data, [[1.0, 2.0], [3.0, 4.0]])
    assert batch.probabilities is None


@pytest.mark.parametrize(
    ("content_type", "body", "status"),
    [
        ("application/xml", "<a/>", 415),
        ("text/csv; charset=bogus", "1,2", 415),
        ("application/x-npy; charset=utf-8", b"", 415),
        ("text/csv", "   ", 400),
        ("application/json", "[[1, 2]", 400),
        ("text/csv; probabilities=maybe", "1,2", 400),
    ],
)
def test_decode_answers_what_it_cannot_read_with_a_rejection(
    content_type: str, body: str | bytes, status: int
) -> None:
    """Never raised: a Rejection carrying the HTTP status the client gets."""
    rejection = wire.decode(body, content_type)
    assert isinstance(rejection, wire.Rejection)
    assert not isinstance(rejection, wire.Fault)
    assert rejection.status == status


def test_decode_takes_probabilities_from_the_content_type_or_the_body() -> None:
    """The parameter and the JSON field both ask; a true in the body wins over a false."""
    assert wire.decode("1,2", "text/csv; probabilities=true").probabilities is True
    body = '{"instances": [[1, 2]], "probabilities": true}'
    assert wire.decode(body, "application/json; probabilities=false").probabilities is True


def test_a_bug_in_a_decoder_is_a_fault(monkeypatch: pytest.MonkeyPatch) -> None:
    """The entry point looks the decoder up in DECODERS, and a failure of it is a 500."""

    def broken(_body: Any, _header: bool | None) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setitem(wire.DECODERS, "application/jsonlines", broken)
    fault = wire.decode(b"[1, 2]", "application/jsonlines")
    assert isinstance(fault, wire.Fault)
    assert (fault.status, fault.message) == (500, "could not read the request: RuntimeError: a bug")


# --- predict --------------------------------------------------------------------------------------


def test_predict_passes_a_rejection_through(regressor: Any) -> None:
    """What decode refused reaches encode untouched."""
    rejection = wire.Rejection(415, "no")
    assert wire.predict(rejection, regressor) is rejection


def test_predict_adds_probabilities_only_when_asked(classifier: Any, regressor: Any) -> None:
    """A classifier answers its classes' probabilities; a regressor asked for them is a 400."""
    plain = wire.predict(wire.decode("1,2", "text/csv"), classifier)
    assert isinstance(plain, wire.Prediction)
    assert plain.probabilities is None
    asked = wire.predict(wire.decode("1,2", "text/csv; probabilities=true"), classifier)
    assert isinstance(asked, wire.Prediction)
    assert asked.probabilities.shape == (1, 2)
    assert list(asked.classes) == ["no", "yes"]
    refused = wire.predict(wire.decode("1,2", "text/csv; probabilities=true"), regressor)
    assert isinstance(refused, wire.Rejection)
    assert refused.status == 400


def test_only_a_plain_scikit_learn_estimator_is_a_leaf() -> None:
    """A leaf checks only the array it is given; anything that holds estimators is not one."""
    fitted = LinearRegression().fit(X, [1.0, 2.0, 3.0, 4.0])
    assert wire._model._make_plan(fitted, (False, "auto"), None).leaf
    for model in (
        make_pipeline(FunctionTransformer(np.log), LinearRegression()),
        VotingRegressor([("linear", LinearRegression())]),
        RandomForestRegressor(n_estimators=2).fit(X, [1.0, 2.0, 3.0, 4.0]),
        type("Custom", (LinearRegression,), {})(),  # not from scikit-learn's own modules
    ):
        assert not wire._model._make_plan(model, (False, "auto"), None).leaf, model


def test_a_leaf_skips_only_the_finite_check_it_was_spared(
    regressor: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finite samples reach a leaf under assume_finite; NaN gets scikit-learn's own check."""
    seen: list[bool] = []
    predict = regressor.predict

    def spying(samples: np.ndarray) -> np.ndarray:
        seen.append(sklearn.get_config()["assume_finite"])
        return predict(samples)

    monkeypatch.setattr(regressor, "predict", spying, raising=False)
    assert isinstance(wire.predict(wire.decode("1,2", "text/csv"), regressor), wire.Prediction)
    refused = wire.predict(wire.decode("nan,2", "text/csv"), regressor)
    assert isinstance(refused, wire.Rejection)
    assert refused.status == 400
    assert "NaN" in refused.message
    many = np.ones((wire._limits.SMALL_FINITE_CHECK, 2))  # more values than the Python check takes
    assert isinstance(wire.predict(wire.Batch(many), regressor), wire.Prediction)
    many[-1, -1] = np.inf
    assert wire.predict(wire.Batch(many), regressor).status == 400
    huge = np.full((wire._limits.SMALL_FINITE_CHECK, 2), 1e308)  # finite, but their sum overflows
    assert isinstance(wire.predict(wire.Batch(huge), regressor), wire.Prediction)
    assert seen == [True, False, True, False, False]
    assert sklearn.get_config()["assume_finite"] is False


def test_a_pipeline_still_refuses_what_its_steps_make_infinite(tmp_path: Path) -> None:
    """log(0) inside a Pipeline is -inf for its last step, whose own check answers 400."""
    model = make_pipeline(FunctionTransformer(np.log), LinearRegression())
    model.fit(X + 1.0, [1.0, 2.0, 3.0, 4.0])
    joblib.dump(model, tmp_path / "model.joblib")
    loaded = wire.load_model(str(tmp_path))
    with np.errstate(divide="ignore"):
        refused = wire.predict(wire.decode("0,1", "text/csv"), loaded)
    assert isinstance(refused, wire.Rejection)
    assert refused.status == 400
    assert "infinity" in refused.message


# --- encode ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "mimetype", "body"),
    [
        (None, "application/json", b'{"predictions": [1.5, -2.0]}'),
        ("application/json", "application/json", b'{"predictions": [1.5, -2.0]}'),
        ("text/csv", "text/csv", b"1.5\n-2.0\n"),
        (
            "application/jsonlines",
            "application/jsonlines",
            b'{"prediction": 1.5}\n{"prediction": -2.0}',
        ),
        (
            "application/x-ndjson",
            "application/x-ndjson",
            b'{"prediction": 1.5}\n{"prediction": -2.0}',
        ),
        ("application/x-npy", "application/x-npy", npy(np.array([1.5, -2.0]))),
    ],
)
def test_encode_writes_every_response_type(accept: str | None, mimetype: str, body: bytes) -> None:
    """Each ENCODERS entry; a JSON Lines alias is answered under the name asked for."""
    response = wire.encode(wire.Prediction(np.array([1.5, -2.0])), accept)
    assert (response.status_code, response.mimetype, response.get_data()) == (200, mimetype, body)


def test_encode_answers_rejections_and_refusals_as_json_errors() -> None:
    """A Rejection keeps its status; no supported Accept and probabilities as .npy are 406."""
    rejected = wire.encode(wire.Rejection(415, "unsupported"), "text/csv")
    assert (rejected.status_code, rejected.mimetype) == (415, "application/json")
    assert json.loads(rejected.get_data()) == {"error": "unsupported"}
    assert wire.encode(wire.Prediction(np.array([1.0])), "image/png").status_code == 406
    with_probabilities = wire.Prediction(np.array(["a"]), np.array([[0.5, 0.5]]), ["a", "b"])
    refused = wire.encode(with_probabilities, "application/x-npy")
    assert refused.status_code == 406
    assert "carries predictions only" in json.loads(refused.get_data())["error"]


def test_a_bug_in_an_encoder_is_a_fault(monkeypatch: pytest.MonkeyPatch) -> None:
    """The entry point looks the encoder up in ENCODERS, and a failure of it is a JSON 500."""

    def broken(_prediction: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setitem(wire.ENCODERS, "text/csv", broken)
    response = wire.encode(wire.Prediction(np.array([1.0])), "text/csv")
    assert response.status_code == 500
    assert json.loads(response.get_data()) == {
        "error": "could not encode the predictions: RuntimeError: a bug"
    }


# --- load_model and execution_parameters ---------------------------------------------------------


def test_load_model_needs_exactly_one_joblib_file(tmp_path: Path) -> None:
    """No model file is an error naming what the folder holds: the endpoint must not start."""
    (tmp_path / "notes.txt").write_text("")
    with pytest.raises(FileNotFoundError, match=r"found 0 \(directory holds: notes.txt\)"):
        wire.load_model(str(tmp_path))


def test_load_model_refuses_an_invalid_stack_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SKDEPLOY_PROBABILITIES and SKDEPLOY_CSV_HEADER are checked at load, by name."""
    joblib.dump(LinearRegression().fit(X, [1.0, 2.0, 3.0, 4.0]), tmp_path / "model.joblib")
    monkeypatch.setenv(wire.PROBABILITIES_ENV, "sometimes")
    with pytest.raises(ValueError, match=wire.PROBABILITIES_ENV):
        wire.load_model(str(tmp_path))
    monkeypatch.setenv(wire.PROBABILITIES_ENV, "true")
    monkeypatch.setenv(wire.CSV_HEADER_ENV, "maybe")
    with pytest.raises(ValueError, match=wire.CSV_HEADER_ENV):
        wire.load_model(str(tmp_path))


def test_execution_parameters_name_the_batch_transform_fields(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Workers from the container's variable, MULTI_RECORD, the payload limit in MB."""
    monkeypatch.setenv("SAGEMAKER_MODEL_SERVER_WORKERS", "4")
    response = wire.execution_parameters()
    assert json.loads(response.get_data()) == {
        "MaxConcurrentTransforms": 4,
        "BatchStrategy": wire.BATCH_STRATEGY,
        "MaxPayloadInMB": wire.MAX_PAYLOAD_IN_MB,
    }
