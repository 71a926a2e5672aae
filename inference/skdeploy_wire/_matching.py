"""Matching the model: typing columns and conforming samples to what it was fitted on."""

import csv
import io
import json
from http import HTTPStatus
from typing import Any, Callable, Dict, FrozenSet, List, Optional, Sequence, Tuple, Union

import numpy as np

from ._carriers import Batch, Cells, Records, Rejection, _cell_number, _Plan
from ._limits import EMPTY, LISTED_CATEGORIES, NUMBER, TEXT


def _conform(data: Batch, plan: _Plan) -> Any:
    """Check the samples' width or feature names against the model; return what it should get.

    A model fitted on a DataFrame receives a DataFrame in its own column order, also for plain
    rows (scikit-learn would otherwise warn on every request), with each column typed as the
    model takes it (:func:`_cells_frame`). Anything but rows, records or cells (a caller's own
    DataFrame) goes to the model as it is.
    """
    samples = data.data
    names = plan.names
    if isinstance(samples, np.ndarray):
        if names is None:  # the usual request: plain numbers for a model without names
            if samples.shape[1] != len(plan.columns) and plan.columns:
                return Rejection(
                    HTTPStatus.BAD_REQUEST,
                    "expected %d features per row, got %d" % (len(plan.columns), samples.shape[1]),
                )
            return samples
        if data.csv is not None and _csv_by_column(plan, data.header):
            return _cells_frame(data.csv, None, None, data.header, plan)
        if samples.shape[1] != len(names):
            return Rejection(
                HTTPStatus.BAD_REQUEST,
                "expected %d features per row (%s), got %d"
                % (len(names), ", ".join(map(str, names)), samples.shape[1]),
            )
        return _array_frame(samples, data.lines, plan)
    if isinstance(samples, Cells):
        if names is None:
            return samples.rejection
        return _cells_frame(samples.text, samples.rows, samples.lines, data.header, plan)
    if not isinstance(samples, Records):
        return samples
    if names is None:
        expected = len(plan.columns) or "its"
        return Rejection(
            HTTPStatus.BAD_REQUEST,
            "this model was fitted without feature names; send each row as a list of %s numbers"
            % expected,
        )
    missing = [name for name in names if name not in samples.names]
    unknown = [name for name in samples.names if name not in plan.name_set]
    if missing or unknown:
        return Rejection(
            HTTPStatus.BAD_REQUEST,
            "feature names do not match the model: missing %s; unknown %s"
            % (", ".join(map(str, missing)) or "none", ", ".join(map(str, unknown)) or "none"),
        )
    import pandas as pd

    return pd.DataFrame(samples.records, columns=names)


def _csv_by_column(plan: _Plan, header: Optional[bool]) -> bool:
    """Whether a CSV body that parsed as numbers must be read again by column, as text.

    So it must for a model with text columns (numbers as floats would lose their spelling:
    category "10001" is not 10001.0) or known categories (messages name lines), and where the
    first line may be a header.
    """
    mode = plan.header if header is None else ("present" if header else "absent")
    return plan.by_column or mode == "present" or (mode == "auto" and plan.numeric_names)


def _array_frame(samples: np.ndarray, lines: Optional[List[int]], plan: _Plan) -> Any:
    """Numeric rows as a DataFrame with the model's column names; text columns refuse them."""
    names = plan.names or []
    if plan.by_column:
        for index, (kind, known) in enumerate(plan.columns):
            if kind == TEXT:
                return Rejection(
                    HTTPStatus.BAD_REQUEST,
                    "column %r takes text (the model's encoder was fitted on strings), but the "
                    "request sent only numbers; send it as text: a CSV cell, or a JSON string "
                    "in a row or object" % names[index],
                )
            if known is not None:
                unknown = _unknown_category(samples[:, index], known)
                if unknown is not None:
                    where = "line %d" % lines[unknown] if lines else "instance %d" % unknown
                    return _category_rejection(
                        where, names[index], samples[unknown, index].item(), known
                    )
    import pandas as pd  # feature names come from a DataFrame: the container has pandas

    return pd.DataFrame(samples, columns=names)


def _cells_frame(
    text: Optional[str],
    rows: Optional[List[List[Any]]],
    lines: Optional[List[int]],
    header: Optional[bool],
    plan: _Plan,
) -> Any:
    """CSV text, or JSON rows, as a DataFrame typed column by column; or a Rejection."""
    names = plan.names or []
    if text is not None:
        table = _csv_table(text, header, plan)
        if isinstance(table, Rejection):
            return table
        columns, where = table
    else:
        rows = rows or []
        where = (lambda i: "line %d" % lines[i]) if lines else (lambda i: "instance %d" % i)
        for index, row in enumerate(rows):
            if len(row) != len(names):
                return Rejection(
                    HTTPStatus.BAD_REQUEST,
                    "expected %d features per row (%s), got %d in %s"
                    % (len(names), ", ".join(names), len(row), where(index)),
                )
        columns = list(zip(*rows))
    arrays = []
    for name, (kind, known), values in zip(names, plan.columns, columns):
        array = _typed_column(values, text is not None, kind, name, where)
        if isinstance(array, Rejection):
            return array
        if known is not None:
            unknown = _unknown_category(array, known)
            if unknown is not None:
                return _category_rejection(where(unknown), name, values[unknown], known)
        arrays.append(array)
    import pandas as pd

    frame = {}
    for name, array in zip(names, arrays):
        # object, not the string dtype pandas 3 would infer: what the container's pandas makes
        frame[name] = pd.Series(array, dtype=array.dtype, copy=False)
    return pd.DataFrame(frame, columns=names)


def _csv_table(
    text: str, header: Optional[bool], plan: _Plan
) -> Union[Tuple[List[Sequence[str]], Callable[[int], str]], Rejection]:
    """CSV text (RFC 4180 quoting) as the model's columns in its order, and row -> "line N"."""
    names = plan.names or []
    if text.startswith("\ufeff"):
        text = text[1:]
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: List[List[str]] = []
    starts: List[int] = []
    end = 0
    try:
        for row in reader:
            start, end = end + 1, reader.line_num
            if row and not (len(row) == 1 and not row[0].strip()):  # blank lines are skipped
                rows.append(row)
                starts.append(start)
    except csv.Error as error:
        return Rejection(
            HTTPStatus.BAD_REQUEST, "malformed CSV: line %d: %s" % (reader.line_num, error)
        )
    if not rows:
        return Rejection(HTTPStatus.BAD_REQUEST, EMPTY)
    mode = plan.header if header is None else ("present" if header else "absent")
    first = rows[0]
    if set(first) != plan.name_set:  # a header's cells are names, without spaces around them
        first = [cell.strip() for cell in first]
    present = mode == "present" or (mode == "auto" and set(first) == plan.name_set)
    order = None
    if present or (mode == "auto" and _looks_like_header(first, plan)):
        mismatch = _header_mismatch(first, names)
        if mismatch:
            return Rejection(
                HTTPStatus.BAD_REQUEST,
                "the CSV header does not match the model's features: %s%s"
                % (
                    mismatch,
                    ""
                    if present
                    else " (the first line was read as a header because most of its cells are "
                    "feature names; send header=absent if it is data)",
                ),
            )
        position = {cell: index for index, cell in enumerate(first)}
        order = [position[name] for name in names]
        rows, starts = rows[1:], starts[1:]
        if not rows:
            return Rejection(HTTPStatus.BAD_REQUEST, "the CSV body has a header but no rows")
    for row, start in zip(rows, starts):
        if len(row) != len(names):
            return Rejection(
                HTTPStatus.BAD_REQUEST,
                "expected %d features per row (%s), got %d on line %d"
                % (len(names), ", ".join(names), len(row), start),
            )
    columns: List[Sequence[str]] = list(zip(*rows))
    if order is not None:
        columns = [columns[index] for index in order]
    return columns, lambda index: "line %d" % starts[index]


def _looks_like_header(cells: List[str], plan: _Plan) -> bool:
    """More than half of a first line's cells are feature names: a header with a mistake."""
    return sum(cell in plan.name_set for cell in cells) * 2 > len(cells)


def _header_mismatch(cells: List[str], names: List[str]) -> str:
    """What is wrong with a header: missing, unknown and repeated names; "" when it matches."""
    seen: Dict[str, int] = {}
    for cell in cells:
        seen[cell] = seen.get(cell, 0) + 1
    known = set(names)
    missing = [name for name in names if name not in seen]
    unknown = [cell for cell in seen if cell not in known]
    repeated = [cell for cell, count in seen.items() if count > 1]
    if not (missing or unknown or repeated):
        return ""
    problems = [
        "missing %s" % (", ".join(missing) or "none"),
        "unknown %s" % (", ".join(repr(cell) for cell in unknown) or "none"),
    ]
    if repeated:
        problems.append("repeated %s" % ", ".join(repr(cell) for cell in repeated))
    return "; ".join(problems)


def _typed_column(
    values: Sequence[Any], text: bool, kind: str, name: str, where: Callable[[int], str]
) -> Union[np.ndarray, Rejection]:
    """One column as float64 (numbers) or object (text, missing values NaN), or a Rejection.

    ``text``: the values are CSV cells, where a blank cell is missing and every cell is text;
    else they are JSON values, where ``null`` is missing. A NUMBER column takes numbers (or
    strings spelling them); a TEXT column takes strings; an ANY column is numbers if every
    value is one, else it keeps the values as they are.
    """
    if kind != TEXT:
        numbers = _numbers(values) if text else _json_numbers_column(values)
        if not isinstance(numbers, int):
            return numbers
        if kind == NUMBER:
            bad = values[numbers]
            shown = repr(bad) if text else json.dumps(bad)
            if not text and type(bad) is int:
                problem = "%s is too large for a 64-bit float" % shown
            else:
                problem = "%s is not a number" % shown
            return Rejection(
                HTTPStatus.BAD_REQUEST, "%s, column %r: %s" % (where(numbers), name, problem)
            )
    column = np.empty(len(values), dtype=object)
    for index, value in enumerate(values):
        if text:
            column[index] = value if value.strip() else np.nan
        elif value is None:
            column[index] = np.nan
        elif kind == TEXT and type(value) is not str:
            return Rejection(
                HTTPStatus.BAD_REQUEST,
                "%s, column %r takes text, got %s" % (where(index), name, json.dumps(value)),
            )
        else:
            column[index] = value
    return column


def _numbers(cells: Sequence[str]) -> Union[np.ndarray, int]:
    """CSV cells as float64 (blank = NaN); else the index of the first that is not a number."""
    joined = "".join(cells)
    if joined.isascii() and "_" not in joined:  # numpy's float() reads "1_0" and "\uff11"
        try:
            return np.array(cells, dtype=np.float64)
        except ValueError:  # a blank cell, or a word
            pass
    numbers = np.empty(len(cells), dtype=np.float64)
    for index, cell in enumerate(cells):
        number = _cell_number(cell)
        if number is None:
            return index
        numbers[index] = number
    return numbers


def _json_numbers_column(values: Sequence[Any]) -> Union[np.ndarray, int]:
    """JSON values as float64 (``null`` = NaN, strings that spell numbers read as them); else
    the index of the first that is not a number (a boolean, a word, an integer too large)."""
    numbers = np.empty(len(values), dtype=np.float64)
    for index, value in enumerate(values):
        kind = type(value)
        if value is None:
            numbers[index] = np.nan
        elif kind is float or kind is int:
            try:
                numbers[index] = value
            except OverflowError:
                return index
        elif kind is str:
            number = _cell_number(value) if value.strip() else None
            if number is None:
                return index
            numbers[index] = number
        else:
            return index
    return numbers


def _unknown_category(column: np.ndarray, known: FrozenSet[Any]) -> Optional[int]:
    """The index of the first value (not missing) an encoder that refuses unknowns lacks."""
    for index, value in enumerate(column.tolist()):
        if value == value and value not in known:  # NaN != NaN: missing values are not checked
            return index
    return None


def _category_rejection(where: str, name: str, value: Any, known: FrozenSet[Any]) -> Rejection:
    return Rejection(
        HTTPStatus.BAD_REQUEST,
        "%s, column %r: %r is not a category the model knows (%s)"
        % (where, name, value, _listing(known)),
    )


def _listing(known: FrozenSet[Any]) -> str:
    """Up to LISTED_CATEGORIES categories, sorted, for a message."""
    shown = sorted(map(str, known))
    more = len(shown) - LISTED_CATEGORIES
    return ", ".join(repr(item) for item in shown[:LISTED_CATEGORIES]) + (
        ", and %d more" % more if more > 0 else ""
    )
