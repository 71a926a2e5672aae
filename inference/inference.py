"""Serving handlers for a scikit-learn model in the SageMaker scikit-learn container.

This file ships inside ``model.tar.gz`` as ``code/inference.py``, next to ``skdeploy_wire/``
(the wire format: every content type, status code and message). The container (``serving.py``
of aws/sagemaker-scikit-learn-container, on ``sagemaker-containers`` 2.8.6) imports this module,
calls ``model_fn`` once per worker, then for every ``POST /invocations``::

    data = input_fn(body, content_type)     # body: str for exactly application/json or
    result = predict_fn(data, model)        # text/csv, bytes for anything else
    response = output_fn(result, accept)

and ``execution_parameters_fn`` for ``GET /execution-parameters`` (batch transform).

Each handler is a few lines that call ``skdeploy_wire``; edit them here. The usual change is in
``predict_fn``: post-process ``result.predictions`` (a numpy array) when ``result`` is a
``wire.Prediction``. Two rules the wire keeps, and an edit should too:

- Never raise from ``input_fn``, ``predict_fn`` or ``output_fn``: sagemaker-containers turns
  any exception into a 500 HTML page. Bad input travels as a ``wire.Rejection`` (a status and a
  message) from ``input_fn`` through ``predict_fn`` to ``output_fn``, which answers it as JSON
  ``{"error": ...}`` with that status; ``wire.Fault`` is the 500 for a failure of the model or
  of this code.
- Keep to Python 3.8 syntax, and import at the top only the standard library, numpy,
  scikit-learn and joblib (pandas and werkzeug inside a function): what every container has.

The formats, parameters, status codes and stack settings (``SKDEPLOY_PROBABILITIES``,
``SKDEPLOY_CSV_HEADER``) are documented in ``skdeploy_wire``'s docstring and in the README,
"Calling the endpoint". A project may replace this file entirely; it then needs only a
``model_fn``, and may keep ``skdeploy_wire/`` for its codecs or delete it.
"""

from typing import Any, Optional, Union

import skdeploy_wire as wire


def model_fn(model_dir: str) -> Any:
    """Load the model: the single ``*.joblib`` file at the top of ``model_dir``.

    Called once per worker. Raising here is right: an endpoint without a model must fail its
    health checks. Also reads the stack's settings, and raises on an invalid one.
    """
    return wire.load_model(model_dir)


def input_fn(
    body: Union[str, bytes], content_type: Optional[str]
) -> Union[wire.Batch, wire.Rejection]:
    """Read the request body: CSV, JSON, JSON Lines or ``.npy`` (``wire.DECODERS``).

    Returns the samples as a ``wire.Batch``, or a ``wire.Rejection`` (400 malformed, 415
    unsupported Content-Type or charset) for ``output_fn`` to answer.
    """
    return wire.decode(body, content_type)


def predict_fn(
    data: Union[wire.Batch, wire.Rejection], model: Any
) -> Union[wire.Prediction, wire.Rejection]:
    """Predict, with class probabilities when asked for; pass a Rejection through.

    Checks the samples against the model's features first (400 naming what does not match).
    To post-process, change the predictions of a ``wire.Prediction`` before returning it::

        result = wire.predict(data, model)
        if isinstance(result, wire.Prediction):
            result.predictions = result.predictions.round(2)
        return result
    """
    return wire.predict(data, model)


def output_fn(prediction: Union[wire.Prediction, wire.Rejection], accept: Optional[str]) -> Any:
    """Write the answer in the type Accept asks for (``wire.ENCODERS``), or answer a Rejection.

    Returns a werkzeug ``Response`` whatever happens, so its status code (200, 400, 406, 415,
    500) reaches the client; error bodies are JSON ``{"error": "<what is wrong>"}``.
    """
    return wire.encode(prediction, accept)


def execution_parameters_fn() -> Any:
    """``GET /execution-parameters``: how batch transform should call this endpoint.

    As many concurrent requests as gunicorn workers, several records per request, 6 MB each.
    """
    return wire.execution_parameters()
