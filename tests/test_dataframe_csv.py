"""CSV for models fitted on a DataFrame (inference/inference.py, issue 14 part 4).

A pipeline whose ColumnTransformer one-hot encodes string columns and scales numeric ones is
fitted on a pandas DataFrame, so it has ``feature_names_in_``. These tests send it CSV with and
without a header, in the model's column order and shuffled, with text, quoted and blank cells,
and check the answers against the model's own ``predict`` on the DataFrame the CSV stands for.
Every request goes through the four public handlers, as the container calls them.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from tests.support import Answer, call_handlers, load_inference

pd = pytest.importorskip("pandas", reason="models fitted on a DataFrame need pandas")

inference = load_inference("inference_dataframe_csv")

JSON = "application/json"
CSV = "text/csv"
#: The stack settings' variables (the contract: not read from the module under test).
CSV_HEADER_ENV = "SKDEPLOY_CSV_HEADER"
PROBABILITIES_ENV = "SKDEPLOY_PROBABILITIES"

#: The training frame: two numeric columns, two text columns (one of them looks numeric).
TRAIN = pd.DataFrame(
    {
        "age": [22.0, 35.0, 47.0, 51.0, 29.0, 63.0, 41.0, 38.0],
        "color": ["red", "blue", "dark, blue", "red", "green", "blue", "green", "dark, blue"],
        "zip": ["10001", "94105", "60601", "10001", "94105", "60601", "10001", "94105"],
        "income": [31.5, 52.0, 75.25, 48.0, 39.0, 91.0, 66.5, 58.0],
    }
)
LABELS = ["no", "yes", "yes", "no", "no", "yes", "yes", "no"]
NAMES = list(TRAIN.columns)
#: Rows to predict, as the client means them (in the model's column order).
ROWS = [
    [30.0, "red", "10001", 40.0],
    [55.0, "dark, blue", "60601", 80.5],
    [41.0, "green", "94105", 60.0],
]


def dump(model: Any, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, directory / "model.joblib")
    return directory


def mixed_pipeline() -> Any:
    """OneHotEncoder on the string columns, StandardScaler on the numbers, string labels."""
    columns = ColumnTransformer(
        [
            ("numbers", StandardScaler(), ["age", "income"]),
            ("text", OneHotEncoder(handle_unknown="error"), ["color", "zip"]),
        ]
    )
    return make_pipeline(columns, LogisticRegression()).fit(TRAIN, LABELS)


@pytest.fixture
def mixed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The mixed pipeline, loaded through model_fn with the stack defaults unset."""
    monkeypatch.delenv(CSV_HEADER_ENV, raising=False)
    monkeypatch.delenv(PROBABILITIES_ENV, raising=False)
    return inference.model_fn(str(dump(mixed_pipeline(), tmp_path / "mixed")))


def load_with_header_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str) -> Any:
    """The mixed pipeline loaded with SKDEPLOY_CSV_HEADER set to ``value``."""
    monkeypatch.setenv(CSV_HEADER_ENV, value)
    return inference.model_fn(str(dump(mixed_pipeline(), tmp_path / f"header-{value}")))


def invoke(
    model: Any, body: str | bytes, content_type: str | None, accept: str | None = JSON
) -> Answer:
    """Run the three request handlers in the container's order."""
    return call_handlers(inference, model, body, content_type, accept)


def frame(rows: list[list[Any]], names: list[str] = NAMES) -> Any:
    return pd.DataFrame(rows, columns=names)


def csv_body(rows: list[list[Any]], header: list[str] | None = None) -> str:
    """Rows (and a header) written by Python's csv module: quotes where RFC 4180 needs them."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if header is not None:
        writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def expected(model: Any, rows: list[list[Any]]) -> list[Any]:
    return list(model.predict(frame(rows)).tolist())


# --- Header detection ---------------------------------------------------------------------------


def test_csv_with_a_header_in_the_models_order_predicts_like_the_dataframe(mixed: Any) -> None:
    answer = invoke(mixed, csv_body(ROWS, NAMES), CSV)
    assert answer.predictions() == expected(mixed, ROWS)


def test_csv_with_a_shuffled_header_is_matched_by_name(mixed: Any) -> None:
    order = ["income", "zip", "age", "color"]
    shuffled = [[row[NAMES.index(name)] for name in order] for row in ROWS]
    answer = invoke(mixed, csv_body(shuffled, order), CSV)
    assert answer.predictions() == expected(mixed, ROWS)


def test_csv_without_a_header_takes_the_models_order(mixed: Any) -> None:
    answer = invoke(mixed, csv_body(ROWS), CSV)
    assert answer.predictions() == expected(mixed, ROWS)


def test_auto_detects_a_header_whose_cells_carry_spaces(mixed: Any) -> None:
    body = " income , age,color ,zip\n" + csv_body(
        [[row[3], row[0], row[1], row[2]] for row in ROWS]
    )
    assert invoke(mixed, body, CSV).predictions() == expected(mixed, ROWS)


def test_the_header_parameter_absent_reads_the_first_line_as_data(mixed: Any) -> None:
    """header=absent wins over auto: the header line is then a row whose age is 'age'."""
    answer = invoke(mixed, csv_body(ROWS, NAMES), "text/csv; header=absent")
    assert answer.status == 400
    assert "line 1, column 'age': 'age' is not a number" in answer.error()


def test_the_header_parameter_present_reads_the_first_line_as_names(mixed: Any) -> None:
    """header=present on a body without one: its first row is a header that does not match."""
    answer = invoke(mixed, csv_body(ROWS), "Text/CSV; Header=PRESENT")
    assert answer.status == 400
    message = answer.error()
    assert "missing age, color, zip, income" in message
    assert "unknown '30.0', 'red', '10001', '40.0'" in message


@pytest.mark.parametrize("value", ["maybe", ""])
def test_the_header_parameter_must_be_present_or_absent(mixed: Any, value: str) -> None:
    answer = invoke(mixed, csv_body(ROWS), f"text/csv; header={value}")
    assert answer.status == 400
    assert "header must be present or absent" in answer.error()


def test_the_setting_absent_reads_a_header_as_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = load_with_header_setting(tmp_path, monkeypatch, "absent")
    answer = invoke(model, csv_body(ROWS, NAMES), CSV)
    assert answer.status == 400
    assert "'age' is not a number" in answer.error()
    # the request's parameter wins over the stack's setting
    with_parameter = invoke(model, csv_body(ROWS, NAMES), "text/csv; header=present")
    assert with_parameter.predictions() == expected(model, ROWS)


def test_the_setting_present_needs_a_header(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = load_with_header_setting(tmp_path, monkeypatch, "present")
    assert invoke(model, csv_body(ROWS, NAMES), CSV).predictions() == expected(model, ROWS)
    headerless = invoke(model, csv_body(ROWS), CSV)
    assert headerless.status == 400
    assert "CSV header does not match" in headerless.error()
    with_parameter = invoke(model, csv_body(ROWS), "text/csv; header=absent")
    assert with_parameter.predictions() == expected(model, ROWS)


def test_the_setting_auto_is_the_default_and_case_does_not_matter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = load_with_header_setting(tmp_path, monkeypatch, "AUTO")
    assert invoke(model, csv_body(ROWS, NAMES), CSV).predictions() == expected(model, ROWS)
    assert invoke(model, csv_body(ROWS), CSV).predictions() == expected(model, ROWS)


def test_the_setting_is_read_once_at_model_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Changing the variable after model_fn changes nothing for that model."""
    model = load_with_header_setting(tmp_path, monkeypatch, "present")
    monkeypatch.setenv(CSV_HEADER_ENV, "absent")
    assert invoke(model, csv_body(ROWS, NAMES), CSV).predictions() == expected(model, ROWS)
    assert "CSV header does not match" in invoke(model, csv_body(ROWS), CSV).error()


def test_an_invalid_setting_fails_model_load_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CSV_HEADER_ENV, "sometimes")
    with pytest.raises(
        ValueError, match="SKDEPLOY_CSV_HEADER must be one of auto, present, absent"
    ):
        inference.model_fn(str(dump(mixed_pipeline(), tmp_path)))


# --- Header mismatches --------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", [CSV, "text/csv; header=present"])
def test_a_missing_column_is_named(mixed: Any, content_type: str) -> None:
    header = ["age", "color", "zip"]
    body = csv_body([row[:3] for row in ROWS], header)
    answer = invoke(mixed, body, content_type)
    assert answer.status == 400
    assert "missing income; unknown none" in answer.error()


@pytest.mark.parametrize("content_type", [CSV, "text/csv; header=present"])
def test_an_extra_column_is_named(mixed: Any, content_type: str) -> None:
    body = csv_body([[*row, "x"] for row in ROWS], [*NAMES, "shoe_size"])
    answer = invoke(mixed, body, content_type)
    assert answer.status == 400
    assert "missing none; unknown 'shoe_size'" in answer.error()


def test_a_repeated_column_is_named(mixed: Any) -> None:
    body = csv_body([[*row, row[0]] for row in ROWS], [*NAMES, "age"])
    answer = invoke(mixed, body, CSV)
    assert answer.status == 400
    assert "repeated 'age'" in answer.error()


def test_a_header_without_rows_is_refused(mixed: Any) -> None:
    answer = invoke(mixed, ",".join(NAMES) + "\n", CSV)
    assert answer.status == 400
    assert "header but no rows" in answer.error()


def test_a_row_of_the_wrong_width_names_its_line(mixed: Any) -> None:
    body = csv_body(ROWS[:1]) + "1,red\n"
    answer = invoke(mixed, body, CSV)
    assert answer.status == 400
    assert "expected 4 features per row (age, color, zip, income), got 2 on line 2" in (
        answer.error()
    )


# --- Cells --------------------------------------------------------------------------------------


def test_quoted_cells_may_hold_commas_and_quotes(tmp_path: Path) -> None:
    """RFC 4180 quoting: "dark, blue" is one cell; quoted numbers are numbers."""
    body = '"30","dark, blue","10001","40"\n55,"red",60601,80.5\n'
    model = inference.model_fn(str(dump(mixed_pipeline(), tmp_path)))
    rows = [[30.0, "dark, blue", "10001", 40.0], [55.0, "red", "60601", 80.5]]
    assert invoke(model, body, CSV).predictions() == expected(model, rows)


def test_a_malformed_quote_is_a_400_naming_its_line(mixed: Any) -> None:
    answer = invoke(mixed, '30,red,10001,40\n30,"red"x,10001,40\n', CSV)
    assert answer.status == 400
    assert "malformed CSV: line 2" in answer.error()


def test_a_cell_a_numeric_column_cannot_read_names_line_and_column(mixed: Any) -> None:
    body = csv_body(ROWS[:2]) + "41,green,94105,sixty\n"
    answer = invoke(mixed, body, CSV)
    assert answer.status == 400
    assert answer.error() == "line 3, column 'income': 'sixty' is not a number"


def test_unicode_digits_are_not_numbers(mixed: Any) -> None:
    """float() reads "\uff14\uff10" as 40; a CSV cell is ASCII digits or it is not a number."""
    answer = invoke(mixed, "30,red,10001,\uff14\uff10\n", CSV)
    assert answer.status == 400
    assert "column 'income'" in answer.error()


def test_an_unknown_category_names_line_column_and_value(mixed: Any) -> None:
    answer = invoke(mixed, "30,purple,10001,40\n", CSV)
    assert answer.status == 400
    message = answer.error()
    assert message.startswith("line 1, column 'color': 'purple' is not a category")
    assert "'blue', 'dark, blue', 'green', 'red'" in message


def test_blank_cells_are_missing_values(tmp_path: Path) -> None:
    """A blank cell reaches the model as NaN: imputed here, as in the DataFrame."""
    columns = ColumnTransformer(
        [
            ("numbers", make_pipeline(SimpleImputer(), StandardScaler()), ["age", "income"]),
            (
                "text",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="error")
                ),
                ["color", "zip"],
            ),
        ]
    )
    model = make_pipeline(columns, LogisticRegression()).fit(TRAIN, LABELS)
    model = inference.model_fn(str(dump(model, tmp_path)))
    body = "30,,10001,\n,blue,,55\n"
    rows = [[30.0, np.nan, "10001", np.nan], [np.nan, "blue", np.nan, 55.0]]
    assert invoke(model, body, CSV).predictions() == expected(model, rows)


def test_a_blank_cell_for_a_model_without_imputation_is_the_models_400(mixed: Any) -> None:
    answer = invoke(mixed, "30,red,10001,\n", CSV)
    assert answer.status == 400
    assert "nan" in answer.error().lower()


# --- Numeric CSV to a mixed pipeline ------------------------------------------------------------


@pytest.fixture
def numeric_looking(tmp_path: Path) -> Any:
    """A pipeline whose only text column holds numeric-looking categories (zip codes)."""
    columns = ColumnTransformer(
        [
            ("numbers", StandardScaler(), ["age", "income"]),
            ("text", OneHotEncoder(handle_unknown="error"), ["zip"]),
        ]
    )
    model = make_pipeline(columns, LogisticRegression()).fit(
        TRAIN[["age", "zip", "income"]], LABELS
    )
    return inference.model_fn(str(dump(model, tmp_path)))


def test_numeric_csv_to_a_mixed_pipeline_keeps_text_columns_as_text(numeric_looking: Any) -> None:
    """ "10001" stays the category "10001", not the float 10001.0 (the old ufunc 'isnan' 400)."""
    rows = [[30.0, "10001", 40.0], [55.0, "60601", 80.5]]
    answer = invoke(numeric_looking, "30,10001,40\n55,60601,80.5\n", CSV)
    assert (
        answer.predictions()
        == numeric_looking.predict(frame(rows, ["age", "zip", "income"])).tolist()
    )


def test_numeric_csv_to_a_mixed_pipeline_names_a_wrong_cell(numeric_looking: Any) -> None:
    answer = invoke(numeric_looking, "30,10001,40\n55,99999,80.5\n", CSV)
    assert answer.status == 400
    assert answer.error().startswith("line 2, column 'zip': '99999' is not a category")


def test_a_number_for_a_text_column_is_named(mixed: Any) -> None:
    answer = invoke(mixed, "30,7,10001,40\n", CSV)
    assert answer.status == 400
    assert answer.error().startswith("line 1, column 'color': '7' is not a category")


def test_numeric_json_rows_to_a_mixed_pipeline_name_the_text_column(mixed: Any) -> None:
    answer = invoke(mixed, "[[30, 1, 10001, 40]]", JSON)
    assert answer.status == 400
    assert "column 'color' takes text" in answer.error()


def test_json_rows_may_hold_text_for_a_mixed_pipeline(mixed: Any) -> None:
    answer = invoke(mixed, json.dumps({"instances": ROWS}), JSON)
    assert answer.predictions() == expected(mixed, ROWS)


def test_a_number_in_json_for_a_text_column_is_named(mixed: Any) -> None:
    answer = invoke(mixed, json.dumps([[30, "red", 10001, 40]]), JSON)
    assert answer.status == 400
    assert answer.error() == "instance 0, column 'zip' takes text, got 10001"


# --- Models fitted on plain numbers keep the old CSV --------------------------------------------


@pytest.fixture
def unnamed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv(CSV_HEADER_ENV, "present")  # ignored: no feature names
    model = LinearRegression().fit(np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 3.0]]), [1.0, 2.0, 4.0])
    return inference.model_fn(str(dump(model, tmp_path)))


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("a,b\n1,2\n", id="header"),
        pytest.param('"1","2"\n', id="quoted"),
        pytest.param("1,x\n", id="text"),
    ],
)
def test_a_model_without_feature_names_keeps_the_old_csv_400(unnamed: Any, body: str) -> None:
    answer = invoke(unnamed, body, CSV)
    assert answer.status == 400
    assert answer.error().startswith(
        "malformed CSV (expected rows of comma-separated numbers, no header)"
    )


def test_a_model_without_feature_names_ignores_the_header_setting(unnamed: Any) -> None:
    answer = invoke(unnamed, "1,2\n3,4\n", CSV)
    assert answer.predictions() == unnamed.predict(np.array([[1.0, 2.0], [3.0, 4.0]])).tolist()
    assert invoke(unnamed, "1,2\n", "text/csv; header=absent").status == 200


def test_header_present_to_a_model_without_feature_names_is_refused(unnamed: Any) -> None:
    answer = invoke(unnamed, "a,b\n1,2\n", "text/csv; header=present")
    assert answer.status == 400
    assert "fitted without feature names" in answer.error()


# --- All-numeric models fitted on a DataFrame ---------------------------------------------------


def test_a_numeric_named_model_takes_a_header_too(tmp_path: Path) -> None:
    model = LinearRegression().fit(TRAIN[["age", "income"]], np.arange(len(TRAIN), dtype=float))
    model = inference.model_fn(str(dump(model, tmp_path)))
    rows = [[30.0, 40.0], [55.0, 80.5]]
    want = model.predict(frame(rows, ["age", "income"])).tolist()
    assert invoke(model, "income,age\n40,30\n80.5,55\n", CSV).predictions() == want
    assert invoke(model, "30,40\n55,80.5\n", CSV).predictions() == want


def test_numeric_feature_names_are_still_found_as_a_header(tmp_path: Path) -> None:
    """Columns named "1" and "2": under auto, a first line "2,1" is a header, not a row."""
    train = pd.DataFrame({"1": [0.0, 1.0, 2.0, 3.0], "2": [1.0, 0.0, 1.0, 5.0]})
    model = LinearRegression().fit(train, [1.0, 2.0, 3.0, 9.0])
    model = inference.model_fn(str(dump(model, tmp_path)))
    want = model.predict(pd.DataFrame({"1": [4.0], "2": [3.0]})).tolist()
    assert invoke(model, "2,1\n3,4\n", CSV).predictions() == want
    assert len(invoke(model, "2,1\n3,4\n", "text/csv; header=absent").predictions()) == 2


def test_a_bom_before_the_header_is_dropped(mixed: Any) -> None:
    body = "\ufeff" + csv_body(ROWS, NAMES)
    assert invoke(mixed, body, CSV).predictions() == expected(mixed, ROWS)
    assert invoke(mixed, body.encode("utf-8"), CSV).predictions() == expected(mixed, ROWS)
