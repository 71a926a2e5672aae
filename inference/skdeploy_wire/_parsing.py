"""Request bodies into samples: CSV, JSON, JSON Lines and .npy."""

import io
import json
from http import HTTPStatus
from typing import Any, List, Optional, Union

import numpy as np

from ._bulk import _loadtxt, bulk_json_rows
from ._carriers import Batch, Cells, Records, Rejection
from ._limits import BULK_JSON_CHARS, EMPTY, HEADER_FOR_UNNAMED, JSON_FIELDS, NPY


def _text(body: Union[str, bytes], encoding: str) -> Union[str, Rejection]:
    """Bytes to text with the codec :func:`_request_type` chose (a BOM is dropped)."""
    if isinstance(body, str):
        return body
    try:
        text = bytes(body).decode(encoding)
    except UnicodeError as error:
        return Rejection(HTTPStatus.BAD_REQUEST, "body is not valid %s: %s" % (encoding, error))
    return text[1:] if text.startswith("\ufeff") else text


def _decode_csv(text: str, header: Optional[bool]) -> Union[Batch, Rejection]:
    """CSV: plain numbers parse as ever, and the text is kept (:attr:`Batch.csv`).

    A model fitted on a DataFrame may read the text again by column. Anything else (text,
    quotes, a header) becomes :class:`Cells`: read by column by such a model, answered with
    today's 400 by any other. A body declared ``header=present`` is never read as numbers.
    """
    if header:
        refusal = Rejection(HTTPStatus.BAD_REQUEST, HEADER_FOR_UNNAMED)
        return Batch(Cells(refusal, text=text), None, True)
    parsed = _parse_csv(text)
    if isinstance(parsed, Rejection):  # text, quotes, a header: the model decides
        return Batch(Cells(parsed, text=text), None, header)
    parsed.csv = text
    parsed.header = header
    return parsed


def _parse_csv(text: str) -> Union[Batch, Rejection]:
    """Rows of comma-separated numbers, with numpy's C parser (several times np.genfromtxt).

    A single short line (the usual real-time request) skips the parser's set-up: ``float`` on
    each field gives the same numbers; anything it refuses goes to the parser for its message.
    """
    line = text.strip()
    if len(line) < 4096 and "\n" not in line and "_" not in line:
        try:
            row = [float(field) for field in line.split(",")]
        except ValueError:
            pass
        else:
            return _checked(np.array([row], dtype=np.float64))
    try:
        raw = text.encode("ascii")
    except UnicodeEncodeError:  # the parser will say which value is not a number
        source: Any = io.StringIO(text)
        encoding = None
    else:  # bytes read faster, and a StringIO would hold 4 bytes per character
        source, encoding = io.BytesIO(raw), "ascii"
    try:
        samples = _loadtxt(source, encoding)
    except ValueError as error:
        return Rejection(
            HTTPStatus.BAD_REQUEST,
            "malformed CSV (expected rows of comma-separated numbers, no header): %s" % error,
        )
    return _checked(samples)


def _parse_json(text: str, header: Optional[bool] = None) -> Union[Batch, Rejection]:
    """``{"instances": ...}``, a list of rows, or a list of objects keyed by feature name."""
    if len(text) >= BULK_JSON_CHARS:
        bulk = bulk_json_rows(text)
        if bulk is not None:
            return _checked(bulk)
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as error:  # RecursionError: nested too deeply
        return Rejection(HTTPStatus.BAD_REQUEST, "malformed JSON: %s" % error)
    # numpy reads true/false among numbers as 1/0: only a body that spells them is searched.
    booleans = "true" in text or "false" in text
    if type(document) is list and document and type(document[0]) is list:
        return _rows(document, booleans)  # a list of rows, the usual body
    probabilities = None
    if isinstance(document, dict):
        unknown = sorted(set(document) - set(JSON_FIELDS))
        if unknown or "instances" not in document:
            return Rejection(
                HTTPStatus.BAD_REQUEST,
                "a JSON object body needs 'instances' and may have 'probabilities'; got fields %s"
                % ", ".join(repr(key) for key in sorted(document)),
            )
        probabilities = document.get("probabilities")
        if "probabilities" in document and not isinstance(probabilities, bool):
            return Rejection(HTTPStatus.BAD_REQUEST, "'probabilities' must be true or false")
        document = document["instances"]
    if not isinstance(document, list) or not document:
        return Rejection(
            HTTPStatus.BAD_REQUEST,
            'expected a non-empty list of rows, e.g. [[1.0, 2.0]] or [{"a": 1.0}]',
        )
    if isinstance(document[0], dict):
        parsed = _records(document)
    elif isinstance(document[0], list):
        parsed = _rows(document, booleans)
    else:
        return Rejection(
            HTTPStatus.BAD_REQUEST,
            "each instance must be a list of numbers or an object keyed by feature name; "
            "wrap a single sample in a list: [[1.0, 2.0]]",
        )
    if isinstance(parsed, Batch):
        parsed.probabilities = probabilities
    return parsed


def _parse_jsonlines(text: str, header: Optional[bool] = None) -> Union[Batch, Rejection]:
    """One JSON value per line: a row ``[...]``, ``{"features": [...]}``, or an object keyed by
    feature name; blank lines are skipped. All lines are rows, or all are objects.
    """
    values: List[Any] = []
    lines: List[int] = []
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip(" \t\r"):
            continue
        try:
            value = json.loads(line)
        except (ValueError, RecursionError) as error:
            return Rejection(
                HTTPStatus.BAD_REQUEST, "malformed JSON Lines: line %d: %s" % (number, error)
            )
        if type(value) is dict and len(value) == 1 and type(value.get("features")) is list:
            value = value["features"]  # the dense record of SageMaker's own algorithms
        values.append(value)
        lines.append(number)
    first = values[0]
    if not isinstance(first, (list, dict)):
        return Rejection(
            HTTPStatus.BAD_REQUEST,
            'line %d: each line must be a row [1.0, 2.0], {"features": [1.0, 2.0]} or an '
            "object keyed by feature name" % lines[0],
        )
    kind = type(first)
    for value, number in zip(values, lines):
        if type(value) is not kind:
            return Rejection(
                HTTPStatus.BAD_REQUEST,
                "line %d is not %s like line %d; do not mix rows and objects"
                % (number, "a row" if kind is list else "an object", lines[0]),
            )
    if kind is list:
        parsed = _rows(values, "true" in text or "false" in text, lines)
        if isinstance(parsed, Batch) and isinstance(parsed.data, np.ndarray):
            parsed.lines = lines
        return parsed
    names = list(first)
    expected = set(names)
    if not names:
        return Rejection(HTTPStatus.BAD_REQUEST, "line %d is an empty object" % lines[0])
    for value, number in zip(values, lines):
        if set(value) != expected:
            return Rejection(
                HTTPStatus.BAD_REQUEST,
                "line %d has keys %s, line %d has %s"
                % (number, sorted(value), lines[0], sorted(expected)),
            )
    return Batch(Records(values, names))


def _rows(
    rows: List[Any], booleans: bool, lines: Optional[List[int]] = None
) -> Union[Batch, Rejection]:
    """A list of equal-length lists of numbers (``null`` = NaN) as a float64 matrix.

    ``booleans`` says whether the body may hold ``true``/``false``, which numpy would turn into
    1/0 among numbers; then the values are checked one by one. Rows that also hold strings
    become :class:`Cells` (a model fitted on a DataFrame may take text); ``lines`` numbers them
    for messages when they come from JSON Lines.
    """
    try:
        samples = np.asarray(rows)
    except ValueError:
        samples = None
    if samples is None or samples.ndim != 2:
        return Rejection(
            HTTPStatus.BAD_REQUEST,
            "each row must be a flat list of numbers, all of the same length",
        )
    if samples.dtype.kind == "O":
        if not all(_is_number_or_null(value) for value in samples.flat):
            return _text_rows(rows, lines)
        try:
            samples = samples.astype(np.float64)
        except OverflowError:
            return Rejection(HTTPStatus.BAD_REQUEST, "a number is too large for a 64-bit float")
    elif samples.dtype.kind not in "iuf" or (
        booleans and any(type(value) is bool for row in rows for value in row)
    ):
        return _text_rows(rows, lines)
    return _checked(samples.astype(np.float64, copy=False))


def _text_rows(rows: List[Any], lines: Optional[List[int]]) -> Union[Batch, Rejection]:
    """Rows of numbers, strings, booleans and nulls as Cells; anything nested is refused."""
    refusal = Rejection(HTTPStatus.BAD_REQUEST, "rows must contain only numbers or null")
    for row in rows:
        for value in row:
            if value is not None and type(value) not in (str, int, float, bool):
                return refusal
    return Batch(Cells(refusal, rows=rows, lines=lines))


def _is_number_or_null(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def _records(records: List[Any]) -> Union[Batch, Rejection]:
    """Objects keyed by feature name; every object must have the same keys."""
    names = list(records[0])
    expected = set(names)
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            return Rejection(
                HTTPStatus.BAD_REQUEST,
                "instance %d is not an object; do not mix rows and objects" % index,
            )
        if set(record) != expected:
            return Rejection(
                HTTPStatus.BAD_REQUEST,
                "instance %d has keys %s, instance 0 has %s"
                % (index, sorted(record), sorted(expected)),
            )
    if not names:
        return Rejection(HTTPStatus.BAD_REQUEST, "instances are empty objects")
    return Batch(Records(records, names))


def _parse_npy(body: Union[str, bytes], header: Optional[bool] = None) -> Union[Batch, Rejection]:
    """One ``.npy`` array, never unpickled; numeric and 2-D."""
    if isinstance(body, str):
        return Rejection(HTTPStatus.BAD_REQUEST, "%s body must be binary" % NPY)
    if not body:
        return Rejection(HTTPStatus.BAD_REQUEST, EMPTY)
    try:
        samples = np.lib.format.read_array(io.BytesIO(body), allow_pickle=False)
    except Exception as error:  # any failure to read the body is the body's fault
        return Rejection(HTTPStatus.BAD_REQUEST, "malformed .npy body: %s" % error)
    if samples.dtype.kind not in "iuf":
        return Rejection(
            HTTPStatus.BAD_REQUEST, "the .npy array must be numeric, got dtype %s" % samples.dtype
        )
    if samples.ndim != 2:
        return Rejection(
            HTTPStatus.BAD_REQUEST,
            "the .npy array must be 2-D (samples x features), got shape %s" % (samples.shape,),
        )
    return _checked(samples.astype(np.float64, copy=False))


def _checked(samples: np.ndarray) -> Union[Batch, Rejection]:
    """At least one sample with at least one feature (``samples`` is 2-D)."""
    if not samples.size:
        return Rejection(
            HTTPStatus.BAD_REQUEST,
            "no samples or no features in the request: shape %s" % (samples.shape,),
        )
    return Batch(samples)
