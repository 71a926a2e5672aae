"""The public entry points the handlers in inference.py call: load, decode, predict, encode."""

import glob
import json
import math
import os
import warnings
from http import HTTPStatus
from typing import Any, Optional, Tuple, Union

import joblib
import numpy as np
from sklearn import get_config, set_config
from sklearn.exceptions import NotFittedError

from . import _model
from ._carriers import Batch, Prediction, Rejection
from ._encoding import _error_response, _response
from ._formats import _FORMAT_OF, DECODERS, ENCODERS, RESPONSE_TYPES, _negotiate, _request_type
from ._limits import (
    BATCH_STRATEGY,
    BINARY_TYPES,
    CSV_HEADER_ENV,
    EMPTY,
    JSON,
    MAX_PAYLOAD_IN_MB,
    MODEL_SUFFIX,
    PROBABILITIES_ENV,
    SMALL_FINITE_CHECK,
    WORKERS_ENV,
    logger,
)
from ._matching import _conform
from ._model import _VERSION_SKEW, _fault, _make_plan, _plan, _remember, _settings
from ._parsing import _text


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
        last = _model._LAST  # rebound by _plan: read through the module, one attribute
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
