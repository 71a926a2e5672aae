"""Predictions into response bodies (with the 17-digit writer for bulk answers)."""

import csv
import functools
import io
import json
from http import HTTPStatus
from typing import Any, Dict, Optional, Union

import numpy as np

from ._carriers import Fault, Prediction, Rejection
from ._limits import BULK_PREDICTIONS, CSV, JSON, JSONLINES, NPY, logger


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
