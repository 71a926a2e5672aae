"""Serving handlers for a scikit-learn model in the SageMaker scikit-learn container.

This file ships inside ``model.tar.gz`` as ``code/inference.py``. The container (``serving.py``
of aws/sagemaker-scikit-learn-container, built on ``sagemaker-containers`` 2.8.6) imports it and
calls, for every ``POST /invocations``::

    data = input_fn(body, content_type)     # body: str for exactly application/json or
    result = predict_fn(data, model)        # text/csv, bytes for anything else
    response = output_fn(result, accept)

It runs under the container's interpreter (Python 3.9 for the 1.2-1 image), so it keeps to
Python 3.9 syntax and imports only what the container has: the standard library, numpy,
scikit-learn and joblib at import time; pandas (for feature names) and werkzeug (Flask's
response class) only where they are needed, so the module also imports where they are absent.

Why the handlers never raise for bad input
    ``sagemaker-containers`` 2.8.6 wraps every handler it is given (and the sklearn container
    always gives it one) so that any exception raised becomes a ``ClientError``; its 415/406
    branches never fire and every bad request is answered with a 500 HTML page. So ``input_fn``
    returns a :class:`Rejection` (status + message) instead of raising, ``predict_fn`` passes it
    through, and ``output_fn`` turns it into a response with that status. ``output_fn`` returns
    a werkzeug ``Response``: the container's transformer hands any non-tuple result straight to
    Flask, which keeps its status code.

Request (Content-Type; types and parameter names are case-insensitive)
    ``charset``: CSV may be UTF-8 (the default), US-ASCII, ISO-8859-1, windows-1252, UTF-16 or
    UTF-32 (any name Python's codecs give these, such as ``UTF8`` or ``latin-1``); JSON is UTF-8
    (RFC 8259), so only ``utf-8`` or ``us-ascii``; ``.npy`` is binary and takes none. Any other
    charset, an empty one, or ``charset`` given twice is a 415. Other parameters are ignored,
    except ``probabilities`` (below).
    ``text/csv``
        One sample per line, numbers separated by commas, no header. Always 2-D: a single line
        is one sample, never a column of features.
    ``application/json``
        ``{"instances": [[...], ...]}``, a bare list of rows ``[[...], ...]``, or a list of
        objects keyed by feature name ``[{"a": 1, "b": 2}, ...]`` (optionally inside
        ``{"instances": ...}``). Objects need a model fitted on a DataFrame
        (``feature_names_in_``); every object must carry exactly those names, and the values may
        be strings when the model's pipeline encodes them. ``null`` is a missing value (NaN).
        Large bodies of plain numeric rows are read by numpy's C parser (``_bulk_json_rows``).
    ``application/x-npy``
        One 2-D numeric ``.npy`` array, read with ``allow_pickle=False``: a request body is never
        unpickled.

Probabilities (classifiers with ``predict_proba``)
    Ask with ``"probabilities": true`` in a JSON object body, or with the Content-Type
    parameter ``probabilities=true`` (any content type, e.g. ``text/csv; probabilities=true``).
    A model without ``predict_proba`` (a regressor) answers 400.

Response (Accept; a list with q-values is honoured, ``*/*`` or none means JSON)
    ``application/json``
        ``{"predictions": [...]}``; with probabilities also ``"probabilities": [[...], ...]``
        (one row per sample) and ``"classes": [...]`` (the column order). From 1,000 fractional
        float predictions on, each is written with 17 significant digits, as
        ``-7.4119586357663854e2`` (``_bulk_floats``): the same float64 when read back.
    ``text/csv``
        One line per sample; with probabilities the prediction is followed by one probability
        per class, in the order of the model's ``classes_`` (sorted).
    ``application/x-npy``
        The predictions as one ``.npy`` array (no probabilities: ask for JSON or CSV).

Status codes
    200 success; 400 malformed body, empty body, non-numeric value, wrong number of features,
    missing or unknown feature names, a value the model rejects (its ``ValueError``/
    ``TypeError``, such as NaN for a model that does not accept missing values), probabilities
    from a model without ``predict_proba``; 406 no supported type in Accept, or probabilities
    asked for as ``.npy``; 415 unsupported Content-Type or charset. Every error body is JSON:
    ``{"error": "<what is wrong>"}``. A fault of the model itself (not fitted, not loadable)
    still raises, and is a 500.
"""

import codecs
import contextlib
import csv
import functools
import glob
import io
import json
import logging
import os
import re
from http import HTTPStatus
from typing import Any, Dict, List, Optional, Tuple, Union

import joblib
import numpy as np
from sklearn.exceptions import NotFittedError

logger = logging.getLogger(__name__)

JSON = "application/json"
CSV = "text/csv"
NPY = "application/x-npy"
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
}
#: ``GET /execution-parameters`` (:func:`execution_parameters_fn`): the InvokeEndpoint body limit
#: (6 MiB, ``skdeploy.constants.MAX_PAYLOAD_BYTES``) and CreateTransformJob's default payload.
MAX_PAYLOAD_IN_MB = 6
#: Several records per request: CSV rows, one per line, are what a batch body is made of.
BATCH_STRATEGY = "MULTI_RECORD"
#: How many gunicorn workers the container starts (sagemaker-containers' ServingEnv).
WORKERS_ENV = "SAGEMAKER_MODEL_SERVER_WORKERS"
#: Response types in the order a wildcard (``*/*``) prefers them.
RESPONSE_TYPES = (JSON, CSV, NPY)
MODEL_SUFFIX = ".joblib"
EMPTY = "empty request body"
#: Top-level fields a JSON object body may carry.
JSON_FIELDS = ("instances", "probabilities")
#: A JSON body at least this long is first tried as plain numeric rows (``_bulk_json_rows``).
BULK_JSON_CHARS = 4096
#: Float predictions from a batch at least this large are written with 17 significant digits.
BULK_PREDICTIONS = 1000
#: About how many values the bulk JSON reader puts on one line for np.loadtxt (whole rows).
VALUES_PER_LINE = 4096
# JSON's own whitespace only: ``\s`` would also match \x0b, \x0c, \x1c-\x1f and Unicode spaces.
_BULK_JSON_START = re.compile(r'(\{[ \t\n\r]*"instances"[ \t\n\r]*:[ \t\n\r]*)?(\[)[ \t\n\r]*\[')
_BULK_JSON_OBJECT_END = re.compile(r"\][ \t\n\r]*(\])[ \t\n\r]*\}\Z")
#: The only bytes the rows of a bulk body may hold (no tab or line break: those go to json.loads).
_BULK_JSON_BYTES = b"0123456789+-.eE, []"
#: A whole "-0" (or "-00"), once the bulk reader has turned brackets into spaces and line breaks.
_BULK_JSON_INTEGER_MINUS_ZERO = re.compile(rb"-0+[ ,\n]")


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


class Batch:
    """A parsed request: samples (a 2-D float64 ndarray or Records) and the probabilities flag."""

    __slots__ = ("data", "probabilities")

    def __init__(self, data: Any, probabilities: bool = False) -> None:
        self.data = data
        self.probabilities = probabilities


class Records:
    """JSON objects keyed by feature name, all with the same keys; ordered once the model is known.

    ``input_fn`` cannot see the model, so the DataFrame is built in ``predict_fn``.
    """

    __slots__ = ("names", "records")

    def __init__(self, records: List[Dict[str, Any]], names: List[str]) -> None:
        self.records = records
        self.names = set(names)


class Prediction:
    """What ``predict_fn`` returns: predictions, and probabilities with their classes if asked."""

    __slots__ = ("classes", "predictions", "probabilities")

    def __init__(
        self,
        predictions: np.ndarray,
        probabilities: Optional[Any] = None,
        classes: Optional[Any] = None,
    ) -> None:
        self.predictions = predictions
        self.probabilities = probabilities
        self.classes = classes


def model_fn(model_dir: str) -> Any:
    """Load the single ``*.joblib`` file at the top of ``model_dir``.

    Called once per worker, on its first request. Raising here is right: the endpoint must not
    pass its health checks without a model, and the message says which files were there.
    """
    paths = sorted(glob.glob(os.path.join(glob.escape(model_dir), "*" + MODEL_SUFFIX)))
    if len(paths) != 1:
        found = sorted(os.listdir(model_dir)) if os.path.isdir(model_dir) else []
        raise FileNotFoundError(
            "expected exactly one %s file in %s, found %d (directory holds: %s)"
            % (MODEL_SUFFIX, model_dir, len(paths), ", ".join(found) or "nothing")
        )
    model = joblib.load(paths[0])
    logger.info(
        "loaded %s from %s (features: %s)",
        type(model).__name__,
        paths[0],
        getattr(model, "n_features_in_", "unknown"),
    )
    return model


def input_fn(body: Union[str, bytes], content_type: Optional[str]) -> Union[Batch, Rejection]:
    """Parse a request body into a :class:`Batch`, or describe what is wrong in a Rejection.

    ``content_type`` may carry parameters (``charset``, ``probabilities``); a missing one is
    read as JSON, as the container does.
    """
    if content_type == JSON and isinstance(body, str):  # the usual request: nothing else to read
        return _parse_json(body) if body.strip() else Rejection(HTTPStatus.BAD_REQUEST, EMPTY)
    request_type = _request_type(content_type or JSON)
    if isinstance(request_type, Rejection):
        return request_type
    media_type, encoding, probabilities = request_type
    if media_type == NPY:
        parsed = _parse_npy(body)
    else:
        text = _decode(body, encoding)
        if isinstance(text, Rejection):
            return text
        if not text.strip():
            return Rejection(HTTPStatus.BAD_REQUEST, EMPTY)
        parsed = _parse_csv(text) if media_type == CSV else _parse_json(text)
    if isinstance(parsed, Rejection):
        return parsed
    parsed.probabilities = parsed.probabilities or probabilities
    return parsed


def predict_fn(data: Union[Batch, Rejection], model: Any) -> Union[Prediction, Rejection]:
    """Check the batch against the model, then predict (and add probabilities if asked).

    A Rejection from ``input_fn`` passes through untouched. A ``ValueError`` or ``TypeError`` from
    the model itself is scikit-learn refusing the values (NaN, strings, ...), so it becomes a 400
    carrying scikit-learn's message; anything else is a server fault and is raised.
    """
    if type(data) is not Batch:  # one check on the usual path
        if isinstance(data, Rejection):
            return data
        if not isinstance(data, Batch):
            data = Batch(data)
    samples = _conform(data.data, model)
    if isinstance(samples, Rejection):
        return samples
    if data.probabilities and not hasattr(model, "predict_proba"):
        return Rejection(
            HTTPStatus.BAD_REQUEST,
            "probabilities were requested but %s has no predict_proba (not a classifier?)"
            % type(model).__name__,
        )
    try:
        predictions = np.asarray(model.predict(samples))
        if not data.probabilities:
            return Prediction(predictions)
        probabilities = model.predict_proba(samples)
    except NotFittedError:
        raise
    except (ValueError, TypeError, OverflowError) as error:
        return Rejection(HTTPStatus.BAD_REQUEST, "the model rejected the input: %s" % error)
    return Prediction(predictions, probabilities, getattr(model, "classes_", None))


def output_fn(prediction: Union[Prediction, Rejection], accept: Optional[str]) -> Any:
    """Encode a Prediction in the best type the Accept header allows, or answer a Rejection.

    Returns a werkzeug ``Response`` in every case, so the status code (200, 400, 406, 415)
    reaches the client unchanged. Error bodies are always JSON.
    """
    if isinstance(prediction, Rejection):
        return _error_response(prediction)
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
    if response_type == JSON:
        return _response(_encode_json(prediction), 200, JSON)
    if response_type == CSV:
        body = _encode_csv(prediction)
        if isinstance(body, Rejection):
            return _error_response(body)
        return _response(body, 200, CSV)
    if prediction.probabilities is not None:
        return _error_response(
            Rejection(
                HTTPStatus.NOT_ACCEPTABLE,
                "%s carries predictions only; accept %s or %s to get probabilities"
                % (NPY, JSON, CSV),
            )
        )
    return _response(_encode_npy(prediction.predictions), 200, NPY)


def execution_parameters_fn() -> Any:
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
def _request_type(content_type: str) -> Union[Tuple[str, str, bool], Rejection]:
    """What a request Content-Type asks for: (media type, codec name, probabilities flag).

    Or the Rejection for an unsupported type, charset or parameter. Cached per header value, so
    the common request pays one dictionary lookup for all of it; the Rejection is never changed.
    """
    media_type, pairs = _split_media_type(content_type)
    if media_type not in (JSON, CSV, NPY):
        return Rejection(
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
            "unsupported Content-Type %r; send %s" % (content_type, ", ".join((JSON, CSV, NPY))),
        )
    names = [key for key, _ in pairs]
    params = dict(pairs)
    for name, status in (
        ("charset", HTTPStatus.UNSUPPORTED_MEDIA_TYPE),
        ("probabilities", HTTPStatus.BAD_REQUEST),
    ):
        if names.count(name) > 1:
            return Rejection(
                status, "Content-Type parameter %s is given %d times" % (name, names.count(name))
            )
    probabilities = _flag(params["probabilities"]) if "probabilities" in params else False
    if probabilities is None:
        return Rejection(
            HTTPStatus.BAD_REQUEST,
            "Content-Type parameter probabilities must be true or false, got %r"
            % params["probabilities"],
        )
    encoding = "utf-8"
    if "charset" in params:
        charset = _charset(media_type, params["charset"])
        if isinstance(charset, Rejection):
            return charset
        encoding = charset
    return media_type, encoding, probabilities


def _charset(media_type: str, charset: str) -> Union[str, Rejection]:
    """The codec name for a charset parameter, if ``media_type`` may be sent in it."""
    if media_type == NPY:
        return Rejection(
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
            "%s is binary and takes no charset, got charset %r" % (NPY, charset),
        )
    allowed = JSON_CHARSETS if media_type == JSON else CSV_CHARSETS
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
    first of JSON, CSV, NPY not refused, ``text/*`` gives CSV.
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


def _decode(body: Union[str, bytes], encoding: str) -> Union[str, Rejection]:
    """Bytes to text with the codec :func:`_request_type` chose (a BOM is dropped)."""
    if isinstance(body, str):
        return body
    try:
        text = bytes(body).decode(encoding)
    except UnicodeError as error:
        return Rejection(HTTPStatus.BAD_REQUEST, "body is not valid %s: %s" % (encoding, error))
    return text[1:] if text.startswith("\ufeff") else text


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


def _parse_json(text: str) -> Union[Batch, Rejection]:
    """``{"instances": ...}``, a list of rows, or a list of objects keyed by feature name."""
    if len(text) >= BULK_JSON_CHARS:
        bulk = _bulk_json_rows(text)
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
    probabilities = False
    if isinstance(document, dict):
        unknown = sorted(set(document) - set(JSON_FIELDS))
        if unknown or "instances" not in document:
            return Rejection(
                HTTPStatus.BAD_REQUEST,
                "a JSON object body needs 'instances' and may have 'probabilities'; got fields %s"
                % ", ".join(repr(key) for key in sorted(document)),
            )
        probabilities = document.get("probabilities", False)
        if not isinstance(probabilities, bool):
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


def _bulk_json_rows(text: str) -> Optional[np.ndarray]:
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
    chars = np.frombuffer(raw, dtype=np.uint8)
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


def _rows(rows: List[Any], booleans: bool) -> Union[Batch, Rejection]:
    """A list of equal-length lists of numbers (``null`` = NaN) as a float64 matrix.

    ``booleans`` says whether the body may hold ``true``/``false``, which numpy would turn into
    1/0 among numbers; then the values are checked one by one.
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
            return Rejection(HTTPStatus.BAD_REQUEST, "rows must contain only numbers or null")
        try:
            samples = samples.astype(np.float64)
        except OverflowError:
            return Rejection(HTTPStatus.BAD_REQUEST, "a number is too large for a 64-bit float")
    elif samples.dtype.kind not in "iuf" or (
        booleans and any(type(value) is bool for row in rows for value in row)
    ):
        return Rejection(HTTPStatus.BAD_REQUEST, "rows must contain only numbers or null")
    return _checked(samples.astype(np.float64, copy=False))


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


def _parse_npy(body: Union[str, bytes]) -> Union[Batch, Rejection]:
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


def _conform(samples: Any, model: Any) -> Any:
    """Check the samples' width or feature names against the model; return what it should get.

    A model fitted on a DataFrame receives a DataFrame in its own column order, also for plain
    rows (scikit-learn would otherwise warn on every request). Anything but rows or records (a
    caller's own DataFrame) goes to the model as it is.
    """
    names = getattr(model, "feature_names_in_", None)
    expected = getattr(model, "n_features_in_", None)
    if isinstance(samples, np.ndarray):
        width = samples.shape[1]
        if expected is not None and width != expected:
            detail = " (%s)" % ", ".join(map(str, names)) if names is not None else ""
            return Rejection(
                HTTPStatus.BAD_REQUEST,
                "expected %d features per row%s, got %d" % (expected, detail, width),
            )
        if names is None:
            return samples
        import pandas as pd  # feature names come from a DataFrame: the container has pandas

        return pd.DataFrame(samples, columns=list(names))
    if not isinstance(samples, Records):
        return samples
    if names is None:
        return Rejection(
            HTTPStatus.BAD_REQUEST,
            "this model was fitted without feature names; send each row as a list of %s numbers"
            % (expected if expected is not None else "its"),
        )
    known = set(names)
    missing = [name for name in names if name not in samples.names]
    unknown = [name for name in samples.names if name not in known]
    if missing or unknown:
        return Rejection(
            HTTPStatus.BAD_REQUEST,
            "feature names do not match the model: missing %s; unknown %s"
            % (", ".join(map(str, missing)) or "none", ", ".join(map(str, unknown)) or "none"),
        )
    import pandas as pd

    return pd.DataFrame(samples.records, columns=list(names))


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
    bulk = _bulk_floats(values)
    if bulk is not None:
        return "[%s]" % bulk
    text = repr(values.tolist())
    return None if "n" in text else text


def _bulk_floats(values: np.ndarray) -> Optional[str]:
    """Many finite float predictions as JSON numbers with 17 significant digits; else None.

    ``json.dumps`` writes each float as its shortest ``repr``, which costs about 0.35 us a
    number; ``%.17g`` costs 0.25 us. 17 significant digits always read back as the same float64,
    so the client gets the same numbers; only their spelling can be longer. Where
    :func:`_decimal_digits` can work them out with numpy, they are written as
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
    digits = _decimal_digits(values)
    if digits is None:
        return ("%.17g," * len(values))[:-1] % tuple(values.tolist())
    return ("%d.%016de%d," * len(values))[:-1] % tuple(digits.ravel().tolist())


#: 10**0 to 10**27 as long doubles: exact with a 64-bit significand, as 5**27 < 2**64.
_POWERS_OF_TEN = np.longdouble(10) ** np.arange(28, dtype=np.longdouble)
#: Whether long doubles carry at least 64 significant bits (x86-64: 64; aarch64: 113; else 53),
#: also in arithmetic (an x87 unit set to 53-bit precision would round 1 + 2**-63 to 1).
_LONG_DOUBLE_IS_WIDE = bool(
    np.finfo(np.longdouble).nmant >= 63 and np.longdouble(1) + np.longdouble(2) ** -63 != 1
)


def _decimal_digits(values: np.ndarray) -> Optional[np.ndarray]:
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
    if not _LONG_DOUBLE_IS_WIDE or size.min() < 1e-10:
        return None
    shift = 16 - np.floor(np.log10(size)).astype(np.int64)  # log10 may be one off: fixed below
    scaled = size.astype(np.longdouble) * _POWERS_OF_TEN[shift]
    shift += (scaled < 1e16).astype(np.int64) - (scaled >= 1e17)
    scaled = size.astype(np.longdouble) * _POWERS_OF_TEN[shift]
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
            return Rejection(
                HTTPStatus.NOT_ACCEPTABLE,
                "probabilities of a multi-output classifier are only available as %s" % JSON,
            )
        for index, probabilities in enumerate(prediction.probabilities.tolist()):
            rows[index].extend(probabilities)
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def _encode_npy(predictions: np.ndarray) -> bytes:
    """The predictions as ``.npy``; object arrays (string labels) become unicode, not pickles."""
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
    logger.info("rejected request with %d: %s", rejection.status, rejection.message)
    return _response(json.dumps({"error": rejection.message}), int(rejection.status), JSON)
