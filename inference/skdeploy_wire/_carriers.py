"""What the handlers pass along: Rejection, Fault, Batch, Prediction and the model's plan."""

from typing import Any, Dict, FrozenSet, List, Optional, Tuple

import numpy as np

from ._limits import TEXT


class Rejection:
    """A request the client got wrong: the HTTP status to answer and a message saying why.

    Returned, never raised, so that the container answers with ``status`` rather than 500.
    """

    __slots__ = ("message", "status")

    def __init__(self, status: int, message: str) -> None:
        self.status = int(status)
        self.message = message

    def __repr__(self) -> str:
        return "Rejection(%d, %r)" % (self.status, self.message)


class Fault(Rejection):
    """A failure that is not the client's: answered 500 with a JSON reason, traceback logged."""

    __slots__ = ()


class Batch:
    """A parsed request: samples, and what the request said about probabilities and a header.

    ``data`` is a 2-D float64 ndarray, :class:`Records` or :class:`Cells`. ``probabilities`` and
    ``header`` are None when the request did not say (the model's defaults then apply).
    ``csv`` keeps the text of a CSV body that parsed as numbers, for a model that must read it
    by column (see :func:`_conform`); ``lines`` the line number of each JSON Lines row.
    """

    __slots__ = ("csv", "data", "header", "lines", "probabilities")

    def __init__(
        self,
        data: Any,
        probabilities: Optional[bool] = None,
        header: Optional[bool] = None,
        csv: Optional[str] = None,
        lines: Optional[List[int]] = None,
    ) -> None:
        self.data = data
        self.probabilities = probabilities
        self.header = header
        self.csv = csv
        self.lines = lines


class Cells:
    """Values only the model can type: CSV text that is not plain numbers, or JSON rows with text.

    A model fitted on a DataFrame reads them by column (:func:`_cells_frame`). Any other model
    answers ``rejection``: what the request got for these values before such models existed.
    ``lines`` numbers JSON Lines rows for messages (JSON rows are called instance 0, 1, ...).
    """

    __slots__ = ("lines", "rejection", "rows", "text")

    def __init__(
        self,
        rejection: Rejection,
        text: Optional[str] = None,
        rows: Optional[List[List[Any]]] = None,
        lines: Optional[List[int]] = None,
    ) -> None:
        self.rejection = rejection
        self.text = text
        self.rows = rows
        self.lines = lines


class Records:
    """JSON objects keyed by feature name, all with the same keys; ordered once the model is known.

    :func:`decode` cannot see the model, so the DataFrame is built in :func:`predict`.
    """

    __slots__ = ("names", "records")

    def __init__(self, records: List[Dict[str, Any]], names: List[str]) -> None:
        self.records = records
        self.names = set(names)


class Prediction:
    """What :func:`predict` returns: predictions, and probabilities with their classes if asked.

    ``asked`` says the request asked for the probabilities itself; without it they come from
    the stack's default, and a response type that cannot carry them just leaves them out.
    """

    __slots__ = ("asked", "classes", "predictions", "probabilities")

    def __init__(
        self,
        predictions: np.ndarray,
        probabilities: Optional[Any] = None,
        classes: Optional[Any] = None,
        asked: bool = True,
    ) -> None:
        self.predictions = predictions
        self.probabilities = probabilities
        self.classes = classes
        self.asked = asked


class _Plan:
    """What serving one model needs to know about it, worked out once (:func:`_plan`).

    ``names``: ``feature_names_in_`` as a list, or None; ``columns``: per feature, its kind
    (NUMBER, TEXT, ANY) and the categories its encoder knows when that encoder refuses others
    (else None); ``text``: some column takes text; ``by_column``: some column takes text or
    has known categories, so numeric rows need a look column by column; ``numeric_names``: some
    feature name reads as a number, so a header could parse as a row of numbers; ``header``:
    the CSV header mode; ``probabilities``: answer probabilities unless a request says not to;
    ``skew``: the scikit-learn versions, when the model was pickled by another one; ``leaf``:
    a scikit-learn estimator holding no other estimator, so the array it is given is the only
    one it checks (:func:`_predict_checked`).
    """

    __slots__ = (
        "by_column",
        "columns",
        "header",
        "leaf",
        "name_set",
        "names",
        "numeric_names",
        "probabilities",
        "skew",
        "text",
    )

    def __init__(
        self,
        names: Optional[List[str]],
        columns: List[Tuple[str, Optional[FrozenSet[Any]]]],
        header: str,
        probabilities: bool,
        skew: Optional[str],
        leaf: bool = False,
    ) -> None:
        self.leaf = leaf
        self.names = names
        self.name_set = frozenset(names or ())
        self.columns = columns
        self.text = any(kind == TEXT for kind, _ in columns)
        self.by_column = self.text or any(known is not None for _, known in columns)
        self.numeric_names = any(
            name.strip() and _cell_number(name) is not None for name in names or ()
        )
        self.header = header
        self.probabilities = probabilities
        self.skew = skew


def _cell_number(cell: str) -> Optional[float]:
    """A CSV cell as a float: blank is NaN; None if it is not an ASCII decimal number."""
    cell = cell.strip()
    if not cell:
        return float("nan")
    if not cell.isascii() or "_" in cell:
        return None
    try:
        return float(cell)
    except ValueError:
        return None
