"""Layer 3 of ``skdeploy serve``: the container's serving module, on the library it wraps.

Runs in the runtime virtualenv beside ``_skdeploy_serve_app.py`` (see its docstring), which imports
it by
this unique name, so that no module in the user's code directory can replace it. Same rules
as there: the runtime's Python syntax, no skdeploy import.
"""

import importlib
import threading


class UserError(Exception):
    """The container's ``sagemaker_sklearn_container.exceptions.UserError``."""


def framework():
    # Imported late: sagemaker_containers reads SAGEMAKER_BASE_DIR when first imported.
    from sagemaker_containers.beta import framework

    return framework


def default_model_fn(model_dir):
    """No default loader: the library raises NotImplementedError asking for a model_fn."""
    return framework().transformer.default_model_fn(model_dir)


def default_input_fn(input_data, content_type):
    """Decode by the exact content type; JSON and CSV are cast to float32, as the container does."""
    library = framework()
    array = library.encoders.decode(input_data, content_type)
    if content_type in library.content_types.UTF8_TYPES:
        return array.astype("float32")
    return array


def default_predict_fn(input_data, model):
    """``model.predict`` on whatever input_fn returned."""
    return model.predict(input_data)


def default_output_fn(prediction, accept):
    """Encode to the Accept type with the library's encoders (json, csv, npy)."""
    library = framework()
    return library.worker.Response(
        library.encoders.encode(prediction, accept), accept, mimetype=accept
    )


def user_transformer(user_module):
    """The library's Transformer built from the user's handlers, defaults where one is missing."""
    transformer = framework().transformer
    model_fn = getattr(user_module, "model_fn", default_model_fn)
    input_fn = getattr(user_module, "input_fn", None)
    predict_fn = getattr(user_module, "predict_fn", None)
    output_fn = getattr(user_module, "output_fn", None)
    transform_fn = getattr(user_module, "transform_fn", None)
    if transform_fn and (input_fn or predict_fn or output_fn):
        raise UserError(
            "Cannot use transform_fn implementation with input_fn, predict_fn, and/or output_fn"
        )
    if transform_fn is not None:
        return transformer.Transformer(model_fn=model_fn, transform_fn=transform_fn)
    return transformer.Transformer(
        model_fn=model_fn,
        input_fn=input_fn or default_input_fn,
        predict_fn=predict_fn or default_predict_fn,
        output_fn=output_fn or default_output_fn,
    )


def load_user_module(module_name):
    """Import the user module, resolve its handlers and call model_fn (``initialize``)."""
    user_module = importlib.import_module(module_name)
    transformer = user_transformer(user_module)
    transformer.initialize()
    return transformer, getattr(user_module, "execution_parameters_fn", None)


_container = None
#: The class of what model_fn returned, for the load report.
_model_type = None
# Created at import, which in a gunicorn gevent worker comes after gevent's monkey-patching: a
# greenlet waiting for it yields to the others instead of blocking the worker.
_load_lock = threading.Lock()


def worker_app():
    """The container's Flask worker, built once per process: the user module and model_fn run here.

    The container builds it on each worker's first request without a guard; the lock makes a
    request that arrives during the load wait for it rather than start a second one.
    """
    global _container, _model_type
    if _container is None:
        with _load_lock:
            if _container is None:
                library = framework()
                serving_env = library.env.ServingEnv()
                transformer, execution_parameters_fn = load_user_module(serving_env.module_name)
                _model_type = type(getattr(transformer, "_model", None)).__name__
                _container = library.worker.Worker(
                    transform_fn=transformer.transform,
                    module_name=serving_env.module_name,
                    execution_parameters_fn=execution_parameters_fn,
                )
    return _container


def container_app(environ, start_response):
    """The container's WSGI entry point: the Flask worker (loaded at boot, see load_in_worker)."""
    return worker_app()(environ, start_response)


def model_type():
    """The class name of what model_fn returned in this process (None before the load)."""
    return _model_type
