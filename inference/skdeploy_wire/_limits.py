"""Names and limits: media types, environment variables, sizes the wire holds to."""

import logging
import re

import sklearn

logger = logging.getLogger("skdeploy_wire")  # one logger for the package, as when it was one module


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
