"""The wire format of skdeploy's serving handlers: every request and response codec.

This module ships beside ``inference.py`` as ``code/skdeploy_wire.py`` (the container puts
``code/`` on the import path). ``inference.py`` keeps the four handlers the container calls,
each a few lines a user may edit; they delegate to this module's public functions::

    model = load_model(model_dir)              # model_fn: once per worker
    data = decode(body, content_type)          # input_fn: a Batch, or a Rejection
    result = predict(data, model)              # predict_fn: a Prediction, or a Rejection
    response = encode(result, accept)          # output_fn: a werkzeug Response, any status
    response = execution_parameters()          # execution_parameters_fn (batch transform)

``body`` is a str for exactly ``application/json`` or ``text/csv`` (the container decodes those),
bytes for anything else. Each direction is one table from media type to function, behind one
entry point that negotiates the type and answers an unsupported one with its HTTP status:
:data:`DECODERS` (``decoder(text or bytes, header)``) for :func:`decode`, :data:`ENCODERS`
(``encoder(prediction)``) for :func:`encode`, as sagemaker-containers' own ``_encoders.py`` does.
The public names are in ``__all__``; every name starting with ``_`` may change without notice.

It runs under the container's interpreter (Python 3.9 for the 1.2-1 image, 3.10 for 1.4-2, 3.8
for older ones), so it keeps to Python 3.8 syntax and imports only what the container has: the
standard library, numpy, scikit-learn and joblib at import time; pandas (for feature names) and
werkzeug (Flask's response class) only where they are needed, so the module also imports where
they are absent.

Why one file of about 2,000 lines (over the project's 400)
    It ships beside ``inference.py`` in ``code/``, where the container imports user modules by
    plain name: one file with a name no user module will have is one name to keep clear of
    the user's, and a package (or several ``skdeploy_*`` files) would be a directory and more
    names on that import path, each a chance to shadow or be shadowed. The tool checks the
    name (``skdeploy.core.constants.WIRE_MODULE``). Its sections, in order: names and limits;
    what the handlers pass along (Rejection, Batch, Prediction...); the public entry points;
    content negotiation; parsing (with the bulk JSON reader); matching the model (typing
    columns); knowing the model (the plan, made once per model at load); encoding (with the
    17-digit writer); the format tables.

Per request, little is left to do (the request path is measured by ``bench/``)
    Parsed Content-Type and Accept headers are cached per header value; the stack's settings,
    the feature names, each column's type and whether the model can be spared scikit-learn's
    finite check are worked out once per model (:class:`_Plan`); a one-line CSV body skips
    numpy's parser, a small JSON answer skips json's encoder.

Why the handlers never raise
    ``sagemaker-containers`` 2.8.6 wraps every handler it is given (and the sklearn container
    always gives it one) so that any exception raised becomes a ``ClientError``; its 415/406
    branches never fire and every bad request is answered with a 500 HTML page. So ``input_fn``
    returns a :class:`Rejection` (status + message) instead of raising, ``predict_fn`` passes it
    through, and ``output_fn`` turns it into a response with that status. ``output_fn`` returns
    a werkzeug ``Response``: the container's transformer hands any non-tuple result straight to
    Flask, which keeps its status code. A failure that is not the client's (below) travels the
    same way as a :class:`Fault`, a Rejection with status 500.

Stack settings (environment of the Model; read once per model, by :func:`load_model`)
    ``SKDEPLOY_PROBABILITIES``: ``true`` or ``false`` (any case; default ``false``). ``true``
    answers probabilities unless a request says ``probabilities=false``; it applies only to
    models with ``predict_proba``, so a regressor answers predictions as before.
    ``SKDEPLOY_CSV_HEADER``: ``auto`` (default), ``present`` or ``absent``: whether a CSV
    body's first line is a header, for models fitted on a DataFrame (below); other models
    ignore it. Any other value makes :func:`load_model` raise, naming the variable.

Request (Content-Type; types and parameter names are case-insensitive)
    ``charset``: CSV may be UTF-8 (the default), US-ASCII, ISO-8859-1, windows-1252, UTF-16 or
    UTF-32 (any name Python's codecs give these, such as ``UTF8`` or ``latin-1``); JSON and JSON
    Lines are UTF-8 (RFC 8259), so only ``utf-8`` or ``us-ascii``; ``.npy`` is binary and takes
    none. Any other charset, an empty one, or ``charset`` given twice is a 415. Other parameters
    are ignored, except ``probabilities`` (below) and, for CSV, ``header``.
    ``text/csv``
        One sample per line, comma-separated. Always 2-D: a single line is one sample, never a
        column of features. For a model without feature names: numbers only, no header, no
        quotes. For a model fitted on a DataFrame (``feature_names_in_``):

        - Header: the parameter ``header=present`` or ``header=absent`` (RFC 4180's) decides;
          without it, ``SKDEPLOY_CSV_HEADER``; ``auto`` takes the first line as a header when
          its cells are exactly the model's feature names, in any order (cells may carry
          spaces around them). Under ``auto``, a first line with more than half its cells
          feature names but not all of them is answered as a header that does not match.
          With a header, columns are matched by name and reordered to the model's order; a
          missing, unknown or repeated name is a 400 naming each. Without one, columns are
          in the model's order and each line must have as many cells as it has features.
          ``header=present`` to a model without feature names is a 400.
        - Cells may be quoted as RFC 4180 says (``"a, b"``, ``""`` for a quote inside);
          blank lines are skipped; a blank cell is a missing value (NaN).
        - Each column is typed as the model takes it, from what its pipeline records: a
          column a ColumnTransformer (or a Pipeline's first steps) sends to an encoder fitted
          on strings (OneHotEncoder, OrdinalEncoder, TargetEncoder) or to a text vectorizer is
          text, even when its cells look like numbers (category ``"10001"``); one sent to
          another scikit-learn step is numeric; any other column (imputer, ``passthrough``,
          FunctionTransformer, a class from outside scikit-learn) is numeric when every cell
          is a number, else text. A cell a numeric column cannot read, or (for an encoder with
          ``handle_unknown="error"``) a category the encoder does not know, is a 400 naming
          the line, the column and the value.
        - A body of plain numbers is read by numpy's C parser as for any model, and read
          again by column only where the model has text columns or known categories, or the
          first line may be a header.
    ``application/json``
        ``{"instances": [[...], ...]}``, a bare list of rows ``[[...], ...]``, or a list of
        objects keyed by feature name ``[{"a": 1, "b": 2}, ...]`` (optionally inside
        ``{"instances": ...}``). Objects need a model fitted on a DataFrame
        (``feature_names_in_``); every object must carry exactly those names, and the values may
        be strings when the model's pipeline encodes them. Rows are numbers for any model; for
        a model fitted on a DataFrame they may also hold strings, typed column by column as
        CSV cells are (a number is refused for a text column, a string that spells a number is
        read as one for a numeric column). ``null`` is a missing value (NaN). Large bodies of
        plain numeric rows are read by numpy's C parser (``bulk_json_rows``).
    ``application/jsonlines`` (also ``application/jsonl``, ``application/x-jsonlines``,
    ``application/x-ndjson``)
        One JSON value per line, one sample each, as the SageMaker SDK's ``JSONLinesSerializer``
        writes and batch transform splits (``SplitType: Line``): a row ``[1.5, 2.0]``, the dense
        record of SageMaker's built-in algorithms ``{"features": [1.5, 2.0]}``, or an object
        keyed by feature name ``{"a": 1.5, "b": 2.0}``. Every line is a row (both spellings mix)
        or every line an object, with the same keys; blank lines are skipped. Values follow
        the JSON rules above; a message about one line names it. Probabilities are asked for
        with the Content-Type parameter (no object around the lines can carry a field).
    ``application/x-npy``
        One 2-D numeric ``.npy`` array, read with ``allow_pickle=False``: a request body is never
        unpickled.

Probabilities (classifiers with ``predict_proba``)
    Ask with ``"probabilities": true`` in a JSON object body, or with the Content-Type
    parameter ``probabilities=true`` (any content type, e.g. ``text/csv; probabilities=true``);
    refuse with ``false`` in either place. A request that says nothing gets the stack's default
    (``SKDEPLOY_PROBABILITIES``). A request asking for them from a model without
    ``predict_proba`` (a regressor) answers 400; the default never does.

Response (Accept; a list with q-values is honoured, ``*/*`` or none means JSON)
    ``application/json``
        ``{"predictions": [...]}``; with probabilities also ``"probabilities": [[...], ...]``
        (one row per sample) and ``"classes": [...]`` (the column order). From 1,000 fractional
        float predictions on, each is written with 17 significant digits, as
        ``-7.4119586357663854e2`` (``bulk_floats``): the same float64 when read back.
    ``text/csv``
        One line per sample; with probabilities the prediction is followed by one probability
        per class, in the order of the model's ``classes_`` (sorted).
    ``application/jsonlines`` (or any alias above, answered under the name asked for)
        One object per sample, in request order: ``{"prediction": ...}``, with probabilities
        also ``"probabilities": [...]`` in the order of ``classes_`` (ask for JSON once to get
        ``"classes"``). Lines are separated by a newline, with none after the last.
    ``application/x-npy``
        The predictions as one ``.npy`` array (no probabilities: ask for JSON, CSV or JSON
        Lines).
    Probabilities that come from the stack's default, not from the request, are left out
    where the response type cannot carry them (``.npy``; CSV for a multi-output classifier)
    instead of answering 406.

Status codes
    200 success; 400 malformed body, empty body, non-numeric value, wrong number of features,
    missing or unknown feature names or CSV header columns, a cell a column cannot take,
    a category the model does not know, a value the model rejects (its ``ValueError``/
    ``TypeError``, such as NaN for a model that does not accept missing values), probabilities
    asked for from a model without ``predict_proba``; 406 no supported type in Accept, or
    probabilities asked for as ``.npy``; 415 unsupported Content-Type or charset; 500 a failure
    that is not the client's: the model failing at predict time with anything else (not
    fitted; a model pickled by another scikit-learn that lacks an attribute, such as
    ``'LogisticRegression' object has no attribute 'multi_class'``), or these handlers failing
    to read or encode. Every error body is JSON: ``{"error": "<what is wrong>"}``; a 500 says
    ``the model failed: <class>: <message>`` (with the scikit-learn versions when the model was
    pickled by another one), and its traceback goes to the log. Only a model that cannot be
    loaded raises (in :func:`load_model`), so the endpoint fails its health checks.
"""

import codecs
import contextlib
import csv
import functools
import glob
import io
import json
import logging
import math
import os
import re
import warnings
import weakref
from http import HTTPStatus
from typing import Any, Callable, Dict, FrozenSet, List, Optional, Sequence, Tuple, Union

import joblib
import numpy as np
import sklearn
from sklearn import get_config, set_config
from sklearn.exceptions import NotFittedError

logger = logging.getLogger(__name__)

__all__ = [  # noqa: RUF022 (grouped by role, not sorted: read as the API's table of contents)
    # What inference.py's handlers call
    "load_model",
    "decode",
    "predict",
    "encode",
    "execution_parameters",
    # What they pass along
    "Batch",
    "Cells",
    "Records",
    "Prediction",
    "Rejection",
    "Fault",
    # The format tables and their media types
    "DECODERS",
    "ENCODERS",
    "JSON",
    "CSV",
    "NPY",
    "JSONLINES",
    "JSONLINES_ALIASES",
    "REQUEST_TYPES",
    "RESPONSE_TYPES",
    "BINARY_TYPES",
    # The stack's options and the batch transform parameters
    "PROBABILITIES_ENV",
    "CSV_HEADER_ENV",
    "CSV_HEADER_MODES",
    "MAX_PAYLOAD_IN_MB",
    "BATCH_STRATEGY",
    # The bulk lanes (large bodies and answers), public so they can be tested and measured
    "BULK_JSON_CHARS",
    "BULK_PREDICTIONS",
    "VALUES_PER_LINE",
    "bulk_json_rows",
    "bulk_floats",
    "decimal_digits",
    "POWERS_OF_TEN",
    "LONG_DOUBLE_IS_WIDE",
]

# --- Names and limits -----------------------------------------------------------------------------

JSON = "application/json"
CSV = "text/csv"
NPY = "application/x-npy"
#: JSON Lines: what the SageMaker SDK's JSONLinesSerializer sends and JSONLinesDeserializer
#: accepts, and the type batch transform documents for line-split JSON (SplitType Line).
JSONLINES = "application/jsonlines"
#: Other names in use for the same format: read as JSON Lines, and an Accept naming one is
#: answered in JSON Lines under that name.
JSONLINES_ALIASES = ("application/jsonl", "application/x-jsonlines", "application/x-ndjson")
JSONLINES_TYPES = (JSONLINES, *JSONLINES_ALIASES)
#: Request types read as bytes: their decoder gets the body as it came, and no charset.
BINARY_TYPES = (NPY,)
#: Charsets a CSV body may be sent in, as Python codec names (``codecs.lookup`` maps the aliases
#: clients write, such as ``UTF8``, ``latin-1``, ``windows-1252``, to these). An allow-list: Python
#: also knows codecs that are not charsets at all (``idna``, ``unicode_escape``, ``rot13``...).
CSV_CHARSETS = (
    "utf-8",
    "ascii",
    "iso8859-1",
    "cp1252",
    "utf-16",
    "utf-16-le",
    "utf-16-be",
    "utf-32",
    "utf-32-le",
    "utf-32-be",
)
#: What a charset name is made of (IANA's registered names use no other characters).
_CHARSET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+-]{0,39}\Z")
#: JSON is UTF-8 (RFC 8259, section 8.1); US-ASCII is a subset of it.
JSON_CHARSETS = ("utf-8", "ascii")
#: The names the 415 message suggests.
CHARSET_NAMES = {
    CSV: ("utf-8", "us-ascii", "iso-8859-1", "windows-1252", "utf-16", "utf-32"),
    JSON: ("utf-8", "us-ascii"),
    JSONLINES: ("utf-8", "us-ascii"),
}
#: ``GET /execution-parameters`` (:func:`execution_parameters`): the InvokeEndpoint body limit
#: (6 MiB, ``skdeploy.core.constants.MAX_PAYLOAD_BYTES``) and CreateTransformJob's default payload.
MAX_PAYLOAD_IN_MB = 6
#: Several records per request: CSV rows, one per line, are what a batch body is made of.
BATCH_STRATEGY = "MULTI_RECORD"
#: How many gunicorn workers the container starts (sagemaker-containers' ServingEnv).
WORKERS_ENV = "SAGEMAKER_MODEL_SERVER_WORKERS"
#: The stack's default for probabilities (``true``/``false``), read once per model, at load.
PROBABILITIES_ENV = "SKDEPLOY_PROBABILITIES"
#: The stack's default for a CSV header (one of CSV_HEADER_MODES), read once per model, at load.
CSV_HEADER_ENV = "SKDEPLOY_CSV_HEADER"
CSV_HEADER_MODES = ("auto", "present", "absent")
#: What a column of a model fitted on a DataFrame takes: numbers, text (its encoder was fitted
#: on strings), or either (nothing in the model says; the values decide).
NUMBER, TEXT, ANY = "number", "text", "any"
#: scikit-learn steps that take text as well as numbers (the rest of scikit-learn wants numbers).
ANY_INPUT_STEPS = frozenset(
    ("SimpleImputer", "FunctionTransformer", "MissingIndicator", "DictVectorizer", "FeatureHasher")
)
#: Attributes of meta-estimators whose inner estimators decide what they take.
META_ATTRIBUTES = ("estimators_", "estimator_", "base_estimator_", "calibrated_classifiers_")
#: How many of an encoder's categories a 400 lists.
LISTED_CATEGORIES = 10
MODEL_SUFFIX = ".joblib"
EMPTY = "empty request body"
HEADER_FOR_UNNAMED = (
    "header=present, but this model was fitted without feature names, so a header cannot be "
    "matched: send the rows only, in the order the model was fitted with"
)
#: Top-level fields a JSON object body may carry.
JSON_FIELDS = ("instances", "probabilities")
#: A JSON body at least this long is first tried as plain numeric rows (``bulk_json_rows``).
BULK_JSON_CHARS = 4096
#: Float predictions from a batch at least this large are written with 17 significant digits.
BULK_PREDICTIONS = 1000
#: Whether scikit-learn keeps ``assume_finite`` per thread (1.0 and later): see _outputs_spared.
_CONFIG_PER_THREAD = not sklearn.__version__.startswith("0.")
#: Up to this many values, predict checks that they are finite in Python (numpy's reduction
#: costs more to set up than it saves on a few values); from there, with ``np.isfinite``.
SMALL_FINITE_CHECK = 64
#: About how many values the bulk JSON reader puts on one line for np.loadtxt (whole rows).
VALUES_PER_LINE = 4096
# JSON's own whitespace only: ``\s`` would also match \x0b, \x0c, \x1c-\x1f and Unicode spaces.
_BULK_JSON_START = re.compile(r'(\{[ \t\n\r]*"instances"[ \t\n\r]*:[ \t\n\r]*)?(\[)[ \t\n\r]*\[')
_BULK_JSON_OBJECT_END = re.compile(r"\][ \t\n\r]*(\])[ \t\n\r]*\}\Z")
#: The only bytes the rows of a bulk body may hold (no tab or line break: those go to json.loads).
_BULK_JSON_BYTES = b"0123456789+-.eE, []"
#: A whole "-0" (or "-00"), once the bulk reader has turned brackets into spaces and line breaks.
_BULK_JSON_INTEGER_MINUS_ZERO = re.compile(rb"-0+[ ,\n]")


# --- What the handlers pass along ---------------------------------------------------------------


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


# --- The public entry points ----------------------------------------------------------------------


def load_model(model_dir: str) -> Any:
    """Load the single ``*.joblib`` file at the top of ``model_dir``; read the stack's defaults.

    Called once per worker, on its first request. Raising here is right: the endpoint must not
    pass its health checks without a model, and the message says which files were there. An
    invalid ``SKDEPLOY_PROBABILITIES`` or ``SKDEPLOY_CSV_HEADER`` raises too, naming the value.
    """
    paths = sorted(glob.glob(os.path.join(glob.escape(model_dir), "*" + MODEL_SUFFIX)))
    if len(paths) != 1:
        found = sorted(os.listdir(model_dir)) if os.path.isdir(model_dir) else []
        raise FileNotFoundError(
            "expected exactly one %s file in %s, found %d (directory holds: %s)"
            % (MODEL_SUFFIX, model_dir, len(paths), ", ".join(found) or "nothing")
        )
    settings = _settings()
    # scikit-learn warns when it unpickles an estimator another version wrote: the versions
    # go into the 500 a failing prediction answers. The warnings are issued again, unchanged.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = joblib.load(paths[0])
    skew = None
    for warning in caught:
        found_skew = _VERSION_SKEW.search(str(warning.message))
        if found_skew and skew is None:
            skew = "pickled with scikit-learn %s, served by %s" % found_skew.groups()
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    plan = _remember(model, _make_plan(model, settings, skew))
    logger.info(
        "loaded %s from %s (features: %s; CSV header: %s; probabilities by default: %s)",
        type(model).__name__,
        paths[0],
        getattr(model, "n_features_in_", "unknown"),
        plan.header if plan.names is not None else "none (no feature names)",
        "yes" if plan.probabilities else "no",
    )
    if settings[0] and not plan.probabilities:
        logger.warning(
            "%s=true does not apply: %s has no predict_proba",
            PROBABILITIES_ENV,
            type(model).__name__,
        )
    if settings[1] != "auto" and plan.names is None:
        logger.warning(
            "%s=%s does not apply: %s was fitted without feature names",
            CSV_HEADER_ENV,
            settings[1],
            type(model).__name__,
        )
    return model


def decode(body: Union[str, bytes], content_type: Optional[str]) -> Union[Batch, Rejection]:
    """Parse a request body into a :class:`Batch`, or describe what is wrong in a Rejection.

    ``content_type`` may carry parameters (``charset``, ``probabilities``, ``header``); a
    missing one is read as JSON, as the container does. The decoder is the :data:`DECODERS`
    entry of the media type: text types get the body as text, binary ones as bytes. A failure
    of this code itself (not of the body) is a :class:`Fault`.
    """
    try:
        if content_type == JSON and isinstance(body, str):  # the usual request: nothing else
            if not body.strip():
                return Rejection(HTTPStatus.BAD_REQUEST, EMPTY)
            return DECODERS[JSON](body, None)
        request_type = _request_type(content_type or JSON)
        if isinstance(request_type, Rejection):
            return request_type
        media_type, encoding, probabilities, header = request_type
        if media_type in BINARY_TYPES:
            parsed = DECODERS[media_type](body, header)
        else:
            text = _text(body, encoding)
            if isinstance(text, Rejection):
                return text
            if not text.strip():
                return Rejection(HTTPStatus.BAD_REQUEST, EMPTY)
            parsed = DECODERS[media_type](text, header)
        if isinstance(parsed, Rejection):
            return parsed
        if probabilities is not None:  # the body's "probabilities": true wins over a false here
            parsed.probabilities = parsed.probabilities or probabilities
        return parsed
    except Exception as error:  # a bug here must not become the container's HTML 500
        return _fault("could not read the request", error)


def predict(data: Union[Batch, Rejection], model: Any) -> Union[Prediction, Rejection]:
    """Check the batch against the model, then predict (and add probabilities if asked).

    A Rejection from :func:`decode` passes through untouched. A ``ValueError`` or ``TypeError``
    from the model itself is scikit-learn refusing the values (NaN, strings, ...), so it becomes
    a 400 carrying scikit-learn's message. Any other failure (an unfitted model, one pickled by
    another scikit-learn that lacks an attribute, a bug) is a :class:`Fault`: a 500 with a JSON
    reason. Without a word from the request, probabilities follow the stack's default, which
    applies to models with ``predict_proba`` only.
    """
    try:
        if type(data) is not Batch:  # one check on the usual path
            if isinstance(data, Rejection):
                return data
            if not isinstance(data, Batch):
                data = Batch(data)
        last = _LAST
        plan = last[1] if last[0] is model else _plan(model)
        samples = _conform(data, plan)
        if isinstance(samples, Rejection):
            return samples
        asked = data.probabilities
        if asked and not hasattr(model, "predict_proba"):
            return Rejection(
                HTTPStatus.BAD_REQUEST,
                "probabilities were requested but %s has no predict_proba (not a classifier?)"
                % type(model).__name__,
            )
        probabilities = plan.probabilities if asked is None else asked
        try:
            if plan.leaf and _all_finite(samples):
                outputs = _outputs_spared(model, samples, bool(probabilities))
            else:
                outputs = _outputs(model, samples, bool(probabilities))
        except NotFittedError:  # a ValueError, but the model's fault, not the request's
            raise
        except (ValueError, TypeError, OverflowError) as error:
            return Rejection(HTTPStatus.BAD_REQUEST, "the model rejected the input: %s" % error)
        if outputs[1] is None:
            return Prediction(outputs[0])
        return Prediction(
            outputs[0], outputs[1], getattr(model, "classes_", None), asked=bool(asked)
        )
    except Exception as error:
        return _fault("the model failed", error, model)


def encode(prediction: Union[Prediction, Rejection], accept: Optional[str]) -> Any:
    """Encode a Prediction in the best type the Accept header allows, or answer a Rejection.

    Returns a werkzeug ``Response`` in every case, so the status code (200, 400, 406, 415, 500)
    reaches the client unchanged. The body is the :data:`ENCODERS` entry of the negotiated type
    (a JSON Lines alias is answered under its own name); an encoder may answer a Rejection
    (probabilities the type cannot carry). Error bodies are always JSON.
    """
    if isinstance(prediction, Rejection):
        return _error_response(prediction)
    try:
        if not isinstance(prediction, Prediction):
            prediction = Prediction(np.asarray(prediction))
        response_type = _negotiate(accept)
        if response_type is None:
            return _error_response(
                Rejection(
                    HTTPStatus.NOT_ACCEPTABLE,
                    "cannot answer in %r; accept one of %s" % (accept, ", ".join(RESPONSE_TYPES)),
                )
            )
        body = ENCODERS[_FORMAT_OF.get(response_type, response_type)](prediction)
        if isinstance(body, Rejection):
            return _error_response(body)
        return _response(body, 200, response_type)
    except Exception as error:
        return _error_response(_fault("could not encode the predictions", error))


def _outputs(model: Any, samples: Any, probabilities: bool) -> Tuple[np.ndarray, Any]:
    """The model's predictions, and its class probabilities when asked (else None)."""
    predictions = np.asarray(model.predict(samples))
    return predictions, model.predict_proba(samples) if probabilities else None


def _outputs_spared(model: Any, samples: np.ndarray, probabilities: bool) -> Tuple[np.ndarray, Any]:
    """:func:`_outputs` under ``assume_finite``, for a leaf given samples known to be finite.

    ``get_config``/``set_config`` rather than ``config_context``, which costs four times as
    much (a generator, and every setting copied and set twice). The setting is per thread (per
    greenlet under gevent), as ``config_context``'s is: from scikit-learn 1.0 on, the only
    versions :func:`_is_leaf` lets through (before, it was one setting for every thread).
    """
    before = get_config()["assume_finite"]
    set_config(assume_finite=True)
    try:
        return _outputs(model, samples, probabilities)
    finally:
        set_config(assume_finite=before)


def _all_finite(samples: Any) -> bool:
    """Whether ``samples`` is a float array of finite numbers: what scikit-learn checks first.

    scikit-learn's own check of a small array (``_assert_all_finite``, with its ``np.errstate``)
    costs about a third of a one-row ``predict``; this one a tenth of that. Only a
    :attr:`_Plan.leaf` model skips its own check, and only when this says the array passes it:
    any other array goes to scikit-learn's check, which answers with its own message. A few
    values are checked in Python, faster than numpy's set-up for a reduction; more by their sum,
    as scikit-learn does (NaN or infinity makes the sum so; a sum that overflows sends the
    array to scikit-learn's check, which finds it finite).
    """
    if type(samples) is not np.ndarray or samples.dtype.kind != "f":
        return False
    if samples.size <= SMALL_FINITE_CHECK:
        return all(map(math.isfinite, samples.ravel().tolist()))
    with np.errstate(over="ignore", invalid="ignore"):
        return math.isfinite(samples.sum())


def execution_parameters() -> Any:
    """``GET /execution-parameters``: how batch transform should call this container.

    The scikit-learn container (aws/sagemaker-scikit-learn-container,
    ``src/sagemaker_sklearn_container/serving.py``) passes the user module's
    ``execution_parameters_fn``, if it has one, to sagemaker-containers 2.8.6's
    ``_worker.Worker``, which routes ``GET /execution-parameters`` to it; without one that path
    is Flask's 404, and a transform job that sets no ``MaxConcurrentTransforms`` sends one
    request at a time (CreateTransformJob's documentation). The fields are the ones the
    CreateTransformJob API names: as many concurrent requests as the container runs gunicorn
    workers (``SAGEMAKER_MODEL_SERVER_WORKERS``, else one per CPU, as sagemaker-containers
    starts them), several records per request, and at most the InvokeEndpoint payload limit.
    """
    document = {
        "MaxConcurrentTransforms": _server_workers(),
        "BatchStrategy": BATCH_STRATEGY,
        "MaxPayloadInMB": MAX_PAYLOAD_IN_MB,
    }
    return _response(json.dumps(document), 200, JSON)


def _server_workers() -> int:
    """gunicorn's worker count in the container: the variable if it is a positive integer."""
    try:
        workers = int(os.environ.get(WORKERS_ENV, ""))
    except ValueError:
        workers = 0
    return workers if workers > 0 else (os.cpu_count() or 1)


# --- Content negotiation ------------------------------------------------------------------------


def _split_media_type(value: str) -> Tuple[str, List[Tuple[str, str]]]:
    """``type/subtype; key=value; ...`` as the lower-cased type and its (key, value) pairs.

    Keys are lower-cased; a value loses the spaces and double quotes around it.
    """
    parts = value.split(";")
    pairs = []
    for part in parts[1:]:
        key, _, val = part.partition("=")
        pairs.append((key.strip().lower(), val.strip().strip('"')))
    return parts[0].strip().lower(), pairs


@functools.lru_cache(maxsize=256)
def _parse_media_type(value: str) -> Tuple[str, Dict[str, str]]:
    """Split ``type/subtype; key=value`` into a lower-cased type and its parameters.

    Cached per header value (clients send the same few); callers must not change the dict.
    """
    media_type, pairs = _split_media_type(value)
    return media_type, dict(pairs)


@functools.lru_cache(maxsize=256)
def _request_type(
    content_type: str,
) -> Union[Tuple[str, str, Optional[bool], Optional[bool]], Rejection]:
    """What a request Content-Type asks for: (media type, codec name, probabilities, header).

    The media type of JSON Lines is :data:`JSONLINES` for any of its names. ``probabilities``
    and ``header`` (CSV's ``header=present``/``absent``, RFC 4180) are None when not given.
    Or the Rejection for an unsupported type, charset or parameter. Cached per header value, so
    the common request pays one dictionary lookup for all of it; the Rejection is never changed.
    """
    media_type, pairs = _split_media_type(content_type)
    if media_type in JSONLINES_ALIASES:
        media_type = JSONLINES
    if media_type not in REQUEST_TYPES:
        return Rejection(
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
            "unsupported Content-Type %r; send %s" % (content_type, ", ".join(REQUEST_TYPES)),
        )
    names = [key for key, _ in pairs]
    params = dict(pairs)
    checked = [
        ("charset", HTTPStatus.UNSUPPORTED_MEDIA_TYPE),
        ("probabilities", HTTPStatus.BAD_REQUEST),
    ]
    if media_type == CSV:
        checked.append(("header", HTTPStatus.BAD_REQUEST))
    for name, status in checked:
        if names.count(name) > 1:
            return Rejection(
                status, "Content-Type parameter %s is given %d times" % (name, names.count(name))
            )
    probabilities = _flag(params["probabilities"]) if "probabilities" in params else None
    if probabilities is None and "probabilities" in params:
        return Rejection(
            HTTPStatus.BAD_REQUEST,
            "Content-Type parameter probabilities must be true or false, got %r"
            % params["probabilities"],
        )
    header = None
    if media_type == CSV and "header" in params:
        header = {"present": True, "absent": False}.get(params["header"].strip().lower())
        if header is None:
            return Rejection(
                HTTPStatus.BAD_REQUEST,
                "Content-Type parameter header must be present or absent, got %r"
                % params["header"],
            )
    encoding = "utf-8"
    if "charset" in params:
        charset = _charset(media_type, params["charset"])
        if isinstance(charset, Rejection):
            return charset
        encoding = charset
    return media_type, encoding, probabilities, header


def _charset(media_type: str, charset: str) -> Union[str, Rejection]:
    """The codec name for a charset parameter, if ``media_type`` may be sent in it."""
    if media_type == NPY:
        return Rejection(
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
            "%s is binary and takes no charset, got charset %r" % (NPY, charset),
        )
    allowed = CSV_CHARSETS if media_type == CSV else JSON_CHARSETS
    name = None
    if _CHARSET_NAME.match(charset):  # Python's lookup would also take "'utf-8'" or "utf 8!"
        with contextlib.suppress(LookupError):
            name = codecs.lookup(charset).name  # one name for every alias: UTF8, latin-1, ...
    if name not in allowed:
        return Rejection(
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
            "unsupported charset %r for %s; send %s"
            % (charset, media_type, " or ".join(CHARSET_NAMES[media_type])),
        )
    return name


def _flag(value: str) -> Optional[bool]:
    """``true``/``false`` (any case) as a bool; anything else is None."""
    return {"true": True, "false": False}.get(value.strip().lower())


@functools.lru_cache(maxsize=256)
def _negotiate(accept: Optional[str]) -> Optional[str]:
    """Pick the response type from an Accept header; None when nothing offered is supported.

    Entries are tried by descending q-value, then in the client's order; an unreadable q counts
    as 1. ``q=0`` refuses a type, also for wildcards: ``*/*`` (and ``application/*``) give the
    first of JSON, CSV, NPY, JSON Lines not refused, ``text/*`` gives CSV. A JSON Lines alias
    is answered as itself.
    """
    if accept is None or not accept.strip():
        return JSON
    offers = []
    refused = set()
    for position, entry in enumerate(accept.split(",")):
        media_type, params = _parse_media_type(entry)
        try:
            quality = float(params.get("q", "1"))
        except ValueError:
            quality = 1.0
        if quality <= 0:
            refused.add(media_type)
        elif media_type:
            offers.append((-quality, position, media_type))
    for _, _, media_type in sorted(offers):
        candidates: Tuple[str, ...]
        if media_type in ("*/*", "*"):
            candidates = RESPONSE_TYPES
        elif media_type in JSONLINES_ALIASES:  # answered under the name the client used
            candidates = (media_type,)
        else:
            candidates = tuple(
                candidate
                for candidate in RESPONSE_TYPES
                if media_type in (candidate, candidate.split("/")[0] + "/*")
            )
        offered = {entry for _, _, entry in offers}
        for candidate in candidates:
            if not _refused(candidate, refused, offered):
                return candidate
    return None


def _refused(candidate: str, refused: "set[str]", offered: "set[str]") -> bool:
    """Whether the most specific Accept entry matching ``candidate`` has ``q=0`` (RFC 7231)."""
    for entry in (candidate, candidate.split("/")[0] + "/*", "*/*", "*"):
        if entry in refused:
            return True
        if entry in offered:
            return False
    return False


# --- Parsing ------------------------------------------------------------------------------------


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


def bulk_json_rows(text: str) -> Optional[np.ndarray]:
    """A large body of plain numeric rows, read by numpy's C parser; None for anything else.

    ``json.loads`` spends most of a bulk request building a Python float and list per value.
    A body of at least :data:`BULK_JSON_CHARS` ASCII characters that is exactly ``[[...], ...]``
    or ``{"instances": [[...], ...]}``, with its rows separated as ``json.dumps`` (``], [``) or
    ``JSON.stringify`` (``],[``) write them and each row as long as the first (counted by its
    commas), has its brackets turned into spaces and line breaks (whole rows, about
    :data:`VALUES_PER_LINE` values to a line) and goes to ``np.loadtxt``. Anything else
    (nesting, an empty row, ``null``, strings, booleans, ``-0``, a tab or line break or any
    other spacing, another field, a value that is not finite, a row of 65,536 values or more)
    returns None, and the general path answers, with its exact JSON rules and its error
    messages. Both paths round each number correctly, so they give the same matrix; the C
    parser also reads a few spellings JSON forbids (``+1``, ``.5``, ``5.``, ``007``) as the
    numbers they spell.
    """
    raw = _bulk_json_bytes(text)
    if raw is None:
        return None
    chars = np.frombuffer(raw, dtype=np.uint8)
    layout = _bulk_json_layout(chars, raw)
    if layout is None:
        return None
    return _bulk_json_read(raw, chars, *layout)


def _bulk_json_bytes(text: str) -> Optional[bytearray]:
    """The rows of a bulk body, ``[[...], ...]``, as a mutable copy of their ASCII bytes.

    None unless the body is a list of rows, or an object holding only ``"instances"``, and
    holds no byte that a plain numeric row cannot (:data:`_BULK_JSON_BYTES`).
    """
    text = text.strip(" \t\n\r")  # str.strip() would also drop \x1c, \xa0, \u2028...
    start = _BULK_JSON_START.match(text, 0, 64)
    if start is None:
        return None
    end = len(text)
    if start.group(1) is not None:  # {"instances": [[...]]}: the rows end where the object does
        closing = _BULK_JSON_OBJECT_END.search(text, max(0, len(text) - 64))
        if closing is None:
            return None
        end = closing.end(1)
    try:
        raw = bytearray(text[start.start(2) : end].encode("ascii"))
    except UnicodeEncodeError:
        return None
    if raw.translate(None, _BULK_JSON_BYTES):  # what is left is a byte a bulk body cannot hold
        return None
    return raw


def _bulk_json_layout(
    chars: np.ndarray, raw: bytearray
) -> Optional[Tuple[np.ndarray, np.ndarray, int, int]]:
    """Where the rows open and close, how many there are and their width; None if irregular.

    Every row must open right after the one before (after ``,`` or ``, ``, the same all
    through) and hold as many commas as the first.
    """
    # One pass finds both brackets: "[" (0x5B) and "]" (0x5D) differ only in the bits of 0x06
    # (as do "Y" and "_", which the allowed bytes exclude, so nothing else is found).
    brackets = np.flatnonzero((chars & 0xF9) == 0x59)
    kinds = chars[brackets]
    opens = brackets[kinds == ord("[")]
    closes = brackets[kinds == ord("]")]
    rows = len(opens) - 1
    if rows < 1 or len(closes) != rows + 1 or closes[-1] != len(raw) - 1:
        return None
    # Row i runs from opens[i + 1] to closes[i], and every next row opens right after "," or
    # every one after ", " (a body that mixes them goes to json.loads). That rules out nesting
    # and anything else between rows; np.loadtxt catches whatever is left inside a row.
    after = closes[:-2] + 1
    gap = int(opens[2] - after[0]) if rows > 1 else 1
    if (
        gap not in (1, 2)
        or (opens[2:] - after != gap).any()
        or (chars[after] != ord(",")).any()
        or (gap == 2 and (chars[after + 1] != ord(" ")).any())
    ):
        return None
    if raw[closes[-2] + 1 : -1].strip(b" "):  # only spaces between the last row and "]"
        return None
    # Rows share lines below, so np.loadtxt cannot check their lengths: every row must have as
    # many commas as the first, counted up to the next row's "[" (so with the "," between rows).
    # The counts wrap at 65536; the size of the result, checked below, settles that.
    commas = np.equal(chars, ord(",")).view(np.uint8)
    counts = np.add.reduceat(commas, opens[1:], dtype=np.uint16)
    width = int(counts[0]) + (rows == 1)
    if not 0 < width < 65536 or (counts[:-1] != width).any() or counts[-1] != width - 1:
        return None
    return opens, closes, rows, width


def _bulk_json_read(
    raw: bytearray, chars: np.ndarray, opens: np.ndarray, closes: np.ndarray, rows: int, width: int
) -> Optional[np.ndarray]:
    """The rows of a regular bulk body as a matrix, by np.loadtxt; None where JSON must decide."""
    # Brackets become spaces, and every per_line-th row ends its line (the "," after it becomes
    # a space): np.loadtxt reads a few long lines faster than many short ones.
    per_line = max(1, VALUES_PER_LINE // width)
    chars[opens] = ord(" ")  # raw is a copy: change it in place
    chars[closes] = ord(" ")
    chars[-1] = ord("\n")
    ends = closes[per_line - 1 : rows - 1 : per_line]
    chars[ends] = ord("\n")
    chars[ends + 1] = ord(" ")
    try:
        # ASCII bytes: a StringIO would hold 4 bytes per character.
        if rows % per_line == 0 or not len(ends):
            samples = _loadtxt(io.BytesIO(raw), "ascii")
        else:  # np.loadtxt wants lines of one length: the last, shorter line is a second read
            cut = int(ends[-1]) + 1
            view = memoryview(raw)
            head, tail = io.BytesIO(view[:cut]), io.BytesIO(view[cut:])
            samples = np.concatenate((_loadtxt(head, "ascii"), _loadtxt(tail, "ascii")), axis=None)
    except ValueError:  # an empty or blank value ([], [1,,2]), or a malformed number (1e, --1, 1 2)
        return None
    # np.loadtxt drops only empty lines, and every line here holds at least a bracket's space,
    # so it reads one value per comma and one more. Each row's real count of commas is the
    # checked count plus some multiple of 65536: the size is right only if every multiple is 0.
    # nan, inf and 1e999 keep JSON's own reading.
    if samples.size != rows * width or not np.isfinite(samples).all():
        return None
    samples = samples.reshape(rows, width)
    # "-0.0" and "-0e1" are -0.0 to json.loads too, but "-0" is the integer 0, so +0.0 (and
    # "-00", which only the C parser reads, would be too): such a body goes to json.loads.
    zeros = samples == 0
    if (
        zeros.any()
        and np.signbit(samples[zeros]).any()
        and _BULK_JSON_INTEGER_MINUS_ZERO.search(raw)
    ):
        return None
    return samples


def _loadtxt(source: Any, encoding: Optional[str]) -> np.ndarray:
    """Lines of comma-separated numbers as a float64 matrix, by np.loadtxt's C reader."""
    return np.loadtxt(
        source, delimiter=",", dtype=np.float64, ndmin=2, comments=None, encoding=encoding
    )


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


# --- Matching the model -------------------------------------------------------------------------


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


# --- Knowing the model --------------------------------------------------------------------------


#: scikit-learn's warning on unpickling an estimator another version wrote (all versions).
_VERSION_SKEW = re.compile(r"from version (\S+) when using version (\S+?)\.?(?:\s|$)")
#: model id -> (weak reference to the model, its plan). One model per worker in the container.
_PLANS: Dict[int, Tuple[Callable[[], Any], _Plan]] = {}
#: The model predict saw last, and its plan: one identity check on the usual request.
_LAST: Tuple[Any, Any] = (object(), None)


def _settings() -> Tuple[bool, str]:
    """The stack's defaults from the environment: (probabilities, CSV header mode)."""
    raw = os.environ.get(PROBABILITIES_ENV, "").strip()
    probabilities = _flag(raw) if raw else False
    if probabilities is None:
        raise ValueError("%s must be true or false, got %r" % (PROBABILITIES_ENV, raw))
    header = os.environ.get(CSV_HEADER_ENV, "").strip().lower() or "auto"
    if header not in CSV_HEADER_MODES:
        raise ValueError(
            "%s must be one of %s, got %r"
            % (CSV_HEADER_ENV, ", ".join(CSV_HEADER_MODES), os.environ[CSV_HEADER_ENV])
        )
    return probabilities, header


def _plan(model: Any) -> _Plan:
    """The model's plan: made by load_model, or on first use for a model it did not load."""
    entry = _PLANS.get(id(model))
    if entry is not None and entry[0]() is model:
        plan = entry[1]
    else:
        plan = _remember(model, _make_plan(model, _settings(), None))
    global _LAST
    _LAST = (model, plan)
    return plan


def _remember(model: Any, plan: _Plan) -> _Plan:
    key = id(model)
    try:
        reference: Callable[[], Any] = weakref.ref(model, lambda _: _PLANS.pop(key, None))
    except TypeError:  # no weak references to this type: keep the model alive with its plan
        reference = functools.partial(_same, model)
    _PLANS[key] = (reference, plan)
    return plan


def _same(value: Any) -> Any:
    return value


def _make_plan(model: Any, settings: Tuple[bool, str], skew: Optional[str]) -> _Plan:
    names = getattr(model, "feature_names_in_", None)
    width = getattr(model, "n_features_in_", None)
    if names is not None:
        names = [str(name) for name in list(names)]
        columns = _model_columns(model, names)
    else:
        columns = [(ANY, None)] * int(width) if width is not None else []
    probabilities = settings[0] and hasattr(model, "predict_proba")
    return _Plan(names, columns, settings[1], probabilities, skew, _is_leaf(model))


def _is_leaf(model: Any) -> bool:
    """A scikit-learn estimator that holds no other estimator (LinearRegression, a tree, ...).

    Such a model checks the array it is given, and nothing else, for NaN and infinity, so
    :func:`predict` may check that array itself (:func:`_all_finite`) and spare it the slower
    check. A Pipeline, a search or an ensemble of other estimators may check arrays its own
    steps make (a FunctionTransformer's log of 0), so it is never a leaf; nor is a class from
    outside scikit-learn, nor one whose parameters cannot be read. Nor, before scikit-learn 1.0,
    any model: its settings were shared by every thread, not kept per thread.
    """
    if not _CONFIG_PER_THREAD or not type(model).__module__.startswith("sklearn."):
        return False
    try:
        values = list(model.get_params(deep=False).values())
    except Exception:
        return False
    while values:
        value = values.pop()
        if hasattr(value, "fit") or hasattr(value, "predict") or hasattr(value, "transform"):
            return False
        if isinstance(value, (list, tuple, dict)):
            values.extend(value.values() if isinstance(value, dict) else value)
    holders = ("steps", "transformers_", "transformer_list", "best_estimator_", *META_ATTRIBUTES)
    return not any(hasattr(model, attribute) for attribute in holders)


def _model_columns(model: Any, names: List[str]) -> List[Tuple[str, Optional[FrozenSet[Any]]]]:
    """What each feature takes, from what the fitted model records; ANY where it does not say."""
    try:
        columns = _step_columns(model, names)
    except Exception:  # an estimator this cannot read: let the values decide
        logger.warning(
            "could not work out the column types of %s", type(model).__name__, exc_info=True
        )
        columns = None
    if columns is None or len(columns) != len(names):
        return [(ANY, None)] * len(names)
    return columns


def _step_columns(step: Any, names: List[str]) -> List[Tuple[str, Optional[FrozenSet[Any]]]]:
    """What each of a step's input columns (``names``) takes.

    A Pipeline: its first step decides, and a SimpleImputer lets the next step decide what it
    leaves open. A ColumnTransformer: each transformer decides for the columns it selects (as
    resolved when it was fitted). An encoder with ``categories_`` (OneHotEncoder, OrdinalEncoder,
    TargetEncoder): TEXT where its categories are strings, NUMBER where they are numbers, and
    with ``handle_unknown="error"`` the categories themselves. A text vectorizer: TEXT. Steps
    that take anything (imputers, FunctionTransformer, "passthrough", "drop", meta-estimators,
    classes from outside scikit-learn): ANY. Any other scikit-learn estimator: NUMBER.
    """
    width = len(names)
    anything: List[Tuple[str, Optional[FrozenSet[Any]]]] = [(ANY, None)] * width
    if step is None or isinstance(step, str):
        return anything
    composite = _composite_columns(step, names)
    if composite is not None:
        return composite
    categories = getattr(step, "categories_", None)
    if isinstance(categories, list) and len(categories) == width:
        strict = getattr(step, "handle_unknown", None) == "error"
        return [_category_column(values, strict) for values in categories]
    if callable(getattr(step, "build_analyzer", None)):  # CountVectorizer, TfidfVectorizer...
        return [(TEXT, None)] * width
    for attribute in ("best_estimator_", "regressor_"):  # searches, TransformedTargetRegressor
        inner = getattr(step, attribute, None)
        if inner is not None:
            return _step_columns(inner, names)
    kind = type(step)
    if (
        not kind.__module__.startswith("sklearn.")
        or kind.__name__ in ANY_INPUT_STEPS
        or any(hasattr(step, attribute) for attribute in META_ATTRIBUTES)
    ):
        return anything
    return [(NUMBER, None)] * width


def _composite_columns(
    step: Any, names: List[str]
) -> Optional[List[Tuple[str, Optional[FrozenSet[Any]]]]]:
    """:func:`_step_columns` for a Pipeline, ColumnTransformer or FeatureUnion; else None."""
    anything: List[Tuple[str, Optional[FrozenSet[Any]]]] = [(ANY, None)] * len(names)
    steps = getattr(step, "steps", None)
    if isinstance(steps, list):  # Pipeline
        columns = anything
        for _, sub in steps:
            if sub is None or isinstance(sub, str):
                continue
            found = _step_columns(sub, names)
            columns = [old if old[0] != ANY else new for old, new in zip(columns, found)]
            if type(sub).__name__ != "SimpleImputer":
                break
        return columns
    transformers = getattr(step, "transformers_", None)
    if isinstance(transformers, list):  # ColumnTransformer
        columns = list(anything)
        for entry in transformers:
            sub, selection = entry[1], entry[2]
            positions = _positions(selection, names)
            if not positions or (isinstance(sub, str) and sub == "drop"):
                continue
            found = _step_columns(sub, [names[index] for index in positions])
            for index, column in zip(positions, found):
                columns[index] = _merge(columns[index], column)
        return columns
    union = getattr(step, "transformer_list", None)
    if isinstance(union, list):  # FeatureUnion: every member sees every column
        columns = list(anything)
        for entry in union:
            for index, column in enumerate(_step_columns(entry[1], names)):
                columns[index] = _merge(columns[index], column)
        return columns
    return None


def _positions(selection: Any, names: List[str]) -> Optional[List[int]]:
    """A ColumnTransformer's fitted column selection as positions in ``names``; None if unread."""
    width = len(names)
    if isinstance(selection, (str, int, np.integer)) and not isinstance(selection, bool):
        selection = [selection]
    elif isinstance(selection, slice):
        if isinstance(selection.start, str) or isinstance(selection.stop, str):  # inclusive
            start = names.index(selection.start) if selection.start is not None else 0
            stop = names.index(selection.stop) + 1 if selection.stop is not None else width
            return list(range(start, stop))
        return list(range(width))[selection]
    elif callable(selection):
        return None
    try:
        items = list(selection)
    except TypeError:
        return None
    if not items:
        return []
    if all(isinstance(item, (bool, np.bool_)) for item in items):
        return [index for index, item in enumerate(items) if item] if len(items) == width else None
    if all(isinstance(item, str) for item in items):
        position = {name: index for index, name in enumerate(names)}
        return [position[item] for item in items] if all(i in position for i in items) else None
    if all(isinstance(item, (int, np.integer)) for item in items) and all(
        -width <= int(item) < width for item in items
    ):
        return [int(item) % width for item in items]
    return None


def _category_column(values: Any, strict: bool) -> Tuple[str, Optional[FrozenSet[Any]]]:
    """An encoder's categories for one column: what the column takes, and the known values."""
    values = np.asarray(values)
    items = [item for item in values.tolist() if item is not None and item == item]
    if values.dtype.kind in "US" or (items and all(isinstance(item, str) for item in items)):
        kind = TEXT
    elif values.dtype.kind in "iuf" or (
        items
        and all(isinstance(item, (int, float)) and not isinstance(item, bool) for item in items)
    ):
        kind = NUMBER
    else:
        return ANY, None
    return kind, frozenset(items) if strict and items else None


def _merge(
    old: Tuple[str, Optional[FrozenSet[Any]]], new: Tuple[str, Optional[FrozenSet[Any]]]
) -> Tuple[str, Optional[FrozenSet[Any]]]:
    """Two steps reading the same column: what both accept."""
    if old[0] == ANY:
        return new
    if new[0] == ANY:
        return old
    if old[0] != new[0]:
        return ANY, None
    if old[1] is None or new[1] is None:
        return old[0], old[1] if new[1] is None else new[1]
    return old[0], old[1] & new[1]


def _fault(what: str, error: BaseException, model: Any = None) -> Fault:
    """A server fault: the traceback goes to the log, the class and message to the client."""
    logger.error("%s: %s", what, error, exc_info=error)
    message = "%s: %s: %s" % (what, type(error).__name__, error)
    plan = None
    if model is not None:
        entry = _PLANS.get(id(model))
        plan = entry[1] if entry is not None and entry[0]() is model else None
    if plan is not None and plan.skew:
        message += " (the model was %s)" % plan.skew
    return Fault(HTTPStatus.INTERNAL_SERVER_ERROR, message)


# --- Encoding -----------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """numpy scalars and arrays (also inside object arrays) as plain Python values for json."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.floating):  # a longdouble's item() is a longdouble again
        return float(value)
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError("cannot encode %s as JSON" % type(value).__name__)


def _encode_json(prediction: Prediction) -> str:
    if prediction.probabilities is None:
        numbers = _json_numbers(prediction.predictions)
        if numbers is not None:
            return '{"predictions": %s}' % numbers
    document: Dict[str, Any] = {"predictions": prediction.predictions.tolist()}
    if prediction.probabilities is not None:
        document["probabilities"] = _tolist(prediction.probabilities)
        document["classes"] = _tolist(prediction.classes)
    return _JSON_ENCODER.encode(document)


def _json_numbers(values: np.ndarray) -> Optional[str]:
    """A 1-D array of finite numbers as a JSON list, without json's encoder; else None.

    For Python ints and finite floats, ``repr`` of a list is what ``json.dumps`` writes, byte
    for byte, at a fraction of the cost on small answers: both use ``", "`` and the numbers'
    own ``repr``. NaN and infinity (whose ``repr`` has an "n") and anything but numbers (strings,
    booleans, objects) return None and go to ``json.dumps``.
    """
    if values.ndim != 1 or values.dtype.kind not in "iuf" or values.dtype.itemsize > 8:
        return None  # (a longdouble's tolist() gives numpy scalars, not Python floats)
    bulk = bulk_floats(values)
    if bulk is not None:
        return "[%s]" % bulk
    text = repr(values.tolist())
    return None if "n" in text else text


def bulk_floats(values: np.ndarray) -> Optional[str]:
    """Many finite float predictions as JSON numbers with 17 significant digits; else None.

    ``json.dumps`` writes each float as its shortest ``repr``, which costs about 0.35 us a
    number; ``%.17g`` costs 0.25 us. 17 significant digits always read back as the same float64,
    so the client gets the same numbers; only their spelling can be longer. Where
    :func:`decimal_digits` can work them out with numpy, they are written as
    ``-7.4119586357663854e2`` (Python then formats three integers per number, about 0.1 us);
    otherwise with ``%.17g`` (``-741.19586357663854``). Small batches, which people read, keep
    the shortest spelling. So does a batch with any whole number in it (``%.17g`` would write
    ``1.0`` as ``1``, an integer to a JSON reader, and lose the sign of ``-0.0``), or with NaN
    or infinity (``json.dumps``' own spelling).
    """
    if len(values) < BULK_PREDICTIONS or values.ndim != 1 or values.dtype != np.float64:
        return None
    if not np.isfinite(values).all() or (np.floor(values) == values).any():
        return None
    digits = decimal_digits(values)
    if digits is None:
        return ("%.17g," * len(values))[:-1] % tuple(values.tolist())
    return ("%d.%016de%d," * len(values))[:-1] % tuple(digits.ravel().tolist())


#: 10**0 to 10**27 as long doubles: exact with a 64-bit significand, as 5**27 < 2**64.
POWERS_OF_TEN = np.longdouble(10) ** np.arange(28, dtype=np.longdouble)
#: Whether long doubles carry at least 64 significant bits (x86-64: 64; aarch64: 113; else 53),
#: also in arithmetic (an x87 unit set to 53-bit precision would round 1 + 2**-63 to 1).
LONG_DOUBLE_IS_WIDE = bool(
    np.finfo(np.longdouble).nmant >= 63 and np.longdouble(1) + np.longdouble(2) ** -63 != 1
)


def decimal_digits(values: np.ndarray) -> Optional[np.ndarray]:
    """For each value, a 17-digit decimal that reads back as it: rows of (lead, 16 digits, exp).

    For fractional ``|x|`` from 1e-10, ``y = |x| * 10**s`` with ``y`` in [1e16, 1e17) is
    computed in long double with one rounding (``10**s`` is exact), so ``y`` is off by at most
    1e17 * 2**-64 < 0.0055; rounded to the integer ``D``, it is off by at most 0.5055, at most
    5.06e-17 of ``y``. Half the gap from a float64 to either neighbour is at least 2**-54 =
    5.55e-17 of it (exactly that below a power of two, where the gap below is half as wide), so
    ``D * 10**-s`` is strictly nearer ``x`` than any other float64: any correctly rounding reader
    gets ``x`` back. None (use ``%.17g``) where long doubles are not wide enough or a value is
    below 1e-10.
    """
    size = np.abs(values)  # fractional, so below 2**52: a shift of at least 1
    if not LONG_DOUBLE_IS_WIDE or size.min() < 1e-10:
        return None
    shift = 16 - np.floor(np.log10(size)).astype(np.int64)  # log10 may be one off: fixed below
    scaled = size.astype(np.longdouble) * POWERS_OF_TEN[shift]
    shift += (scaled < 1e16).astype(np.int64) - (scaled >= 1e17)
    scaled = size.astype(np.longdouble) * POWERS_OF_TEN[shift]
    if scaled.min() < 1e16 or scaled.max() >= 1e17:
        return None
    whole = np.rint(scaled).astype(np.int64)  # at most 10**17: fits
    lead = whole // 10**16
    return np.stack((np.where(values < 0, -lead, lead), whole - lead * 10**16, 16 - shift), axis=1)


#: One encoder for every response: ``json.dumps(..., default=...)`` would build one per call.
_JSON_ENCODER = json.JSONEncoder(default=_plain)


def _tolist(value: Any) -> Any:
    """Arrays, or lists of arrays (multi-output classifiers), as nested lists."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_tolist(item) for item in value]
    return value


def _encode_csv(prediction: Prediction) -> Union[str, Rejection]:
    """One line per sample: the prediction(s), then the class probabilities if asked."""
    predictions = prediction.predictions
    rows = predictions.reshape(len(predictions), -1).tolist()
    if prediction.probabilities is not None:
        if not isinstance(prediction.probabilities, np.ndarray):
            if not prediction.asked:  # the stack's default: answer what CSV can carry
                return _encode_csv(Prediction(predictions))
            return Rejection(
                HTTPStatus.NOT_ACCEPTABLE,
                "probabilities of a multi-output classifier are only available as %s" % JSON,
            )
        for index, probabilities in enumerate(prediction.probabilities.tolist()):
            rows[index].extend(probabilities)
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def _encode_jsonlines(prediction: Prediction) -> str:
    """One object per sample, in request order: ``{"prediction": ...}``, with its probabilities
    (in ``classes_`` order; one list per output for a multi-output classifier) if asked.

    No newline after the last line: batch transform (AssembleWith Line) adds one after each
    response, and a trailing one would leave a blank line between mini-batches.
    """
    encode = _JSON_ENCODER.encode
    predictions = prediction.predictions.tolist()
    if prediction.probabilities is None:
        return "\n".join([encode({"prediction": value}) for value in predictions])
    probabilities = prediction.probabilities
    if isinstance(probabilities, np.ndarray):
        per_sample = probabilities.tolist()
    else:  # multi-output: one (samples x classes) array per output
        per_sample = [list(sample) for sample in zip(*_tolist(probabilities))]
    return "\n".join(
        [
            encode({"prediction": value, "probabilities": row})
            for value, row in zip(predictions, per_sample)
        ]
    )


def _encode_npy(prediction: Prediction) -> Union[bytes, Rejection]:
    """The predictions as ``.npy``; object arrays (string labels) become unicode, not pickles.

    ``.npy`` holds one array, so probabilities the request asked for are a 406.
    """
    if prediction.probabilities is not None and prediction.asked:
        return Rejection(
            HTTPStatus.NOT_ACCEPTABLE,
            "%s carries predictions only; accept %s, %s or %s to get probabilities"
            % (NPY, JSON, CSV, JSONLINES),
        )
    predictions = prediction.predictions
    if predictions.dtype.kind == "O":
        predictions = predictions.astype(str)
    out = io.BytesIO()
    np.save(out, predictions, allow_pickle=False)
    return out.getvalue()


@functools.lru_cache(maxsize=None)
def _response_class() -> Any:
    """werkzeug's Response, imported on first use: a Flask dependency, present where Flask is."""
    from werkzeug.wrappers import Response

    return Response


def _response(body: Union[str, bytes], status: int, mimetype: str) -> Any:
    return _response_class()(body, status=status, mimetype=mimetype)


def _error_response(rejection: Rejection) -> Any:
    if not isinstance(rejection, Fault):  # a Fault was logged, with its traceback, when made
        logger.info("rejected request with %d: %s", rejection.status, rejection.message)
    return _response(json.dumps({"error": rejection.message}), int(rejection.status), JSON)


# --- The format tables ----------------------------------------------------------------------------

#: Request media type -> ``decoder(body, header)``, a :class:`Batch` or a :class:`Rejection`. The
#: body is text (decoded with the request's charset, never blank), or bytes for BINARY_TYPES;
#: ``header`` is CSV's ``header`` parameter (None when not given; other types ignore it). The
#: order of the keys is the order a 415 lists them. Adding a format is a function and an entry
#: here (for a text type, also its charsets: CSV_CHARSETS or JSON_CHARSETS, and CHARSET_NAMES).
DECODERS: Dict[str, Callable[[Any, Optional[bool]], Union[Batch, Rejection]]] = {
    JSON: _parse_json,
    CSV: _decode_csv,
    NPY: _parse_npy,
    JSONLINES: _parse_jsonlines,
}
#: Response media type -> ``encoder(prediction)``: the body (str or bytes), or a Rejection. The
#: order of the keys is the order a wildcard (``*/*``) prefers them.
ENCODERS: Dict[str, Callable[[Prediction], Union[str, bytes, Rejection]]] = {
    JSON: _encode_json,
    CSV: _encode_csv,
    NPY: _encode_npy,
    JSONLINES: _encode_jsonlines,
}
#: The request types, in the order a 415 lists them.
REQUEST_TYPES = tuple(DECODERS)
#: The response types, in the order a wildcard (``*/*``) prefers them.
RESPONSE_TYPES = tuple(ENCODERS)
#: An Accept naming a JSON Lines alias is encoded as JSON Lines and answered under that name.
_FORMAT_OF = {alias: JSONLINES for alias in JSONLINES_ALIASES}
