"""The wire format of skdeploy's serving handlers: every request and response codec.

This package ships beside ``inference.py`` as ``code/skdeploy_wire/`` (the container puts
``code/`` on the import path). ``inference.py`` keeps the four handlers the container calls,
each a few lines a user may edit; they delegate to this package's public functions::

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

One package, one name on the import path
    It ships beside ``inference.py`` in ``code/``, where the container imports user modules by
    plain name: the package is the one name ``skdeploy_wire`` to keep clear of the user's (the
    tool refuses a trusted module of that name, ``skdeploy.core.constants.WIRE_MODULE``); its
    modules are private and reached only through it. In the order each imports the ones before
    it: ``_limits`` (names and limits), ``_carriers`` (what the handlers pass along: Rejection,
    Batch, Prediction, the plan), ``_bulk`` (the bulk JSON reader), ``_parsing`` (request
    bodies), ``_matching`` (typing columns to the model), ``_encoding`` (with the 17-digit
    writer), ``_formats`` (content negotiation and the format tables), ``_model`` (the plan,
    made once per model at load) and ``_handlers`` (the public entry points).

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

from ._bulk import bulk_json_rows
from ._carriers import Batch, Cells, Fault, Prediction, Records, Rejection
from ._encoding import LONG_DOUBLE_IS_WIDE, POWERS_OF_TEN, bulk_floats, decimal_digits
from ._formats import DECODERS, ENCODERS, REQUEST_TYPES, RESPONSE_TYPES
from ._handlers import decode, encode, execution_parameters, load_model, predict
from ._limits import (
    BATCH_STRATEGY,
    BINARY_TYPES,
    BULK_JSON_CHARS,
    BULK_PREDICTIONS,
    CSV,
    CSV_HEADER_ENV,
    CSV_HEADER_MODES,
    JSON,
    JSONLINES,
    JSONLINES_ALIASES,
    MAX_PAYLOAD_IN_MB,
    NPY,
    PROBABILITIES_ENV,
    VALUES_PER_LINE,
)

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
