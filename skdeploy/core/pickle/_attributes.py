"""Which attributes a BUILD may set on an instance: plain names only, read from the file."""

from __future__ import annotations

from skdeploy.core.pickle._arrays import RECONSTRUCTOR
from skdeploy.core.pickle._errors import Unsafe
from skdeploy.core.pickle._values import Call, Dictionary, Global

__all__ = ["check_attribute_state"]


def check_attribute_state(state: object) -> None:
    """Refuse a BUILD state that could set special or unseen attributes on an instance.

    Python's BUILD copies a dict state into the instance's ``__dict__`` (``__setstate__`` of
    scikit-learn's estimators does the same) and ``setattr``s a slot state. A special name there
    changes how libraries treat the object: an ``__array_interface__`` entry makes numpy read
    memory at any address, ``__class__`` swaps the class. So keys must be plain strings (not a
    ``numpy.str_``, which matches a name in ``__dict__`` too) and not special names, in a dict or
    in a list of pairs (``BaseEstimator.__setstate__`` updates ``__dict__`` from either), and a
    mapping built by a call (``dict(pairs)``, a pandas Series) is refused, since its keys are
    unseen. Tuple states of classes with their own ``__setstate__`` (Cython classes, numpy's)
    are passed to that method, not copied into ``__dict__``, and are not checked here.
    """
    if isinstance(state, Call) and _is_mapping_call(state):
        raise Unsafe(
            "a BUILD state is a mapping built by a call (dict(pairs), a pandas Series), so the "
            "attributes it sets cannot be read from the file; real pickles write a dictionary"
        )
    if isinstance(state, list) and any(
        isinstance(item, tuple) and item and not _plain_attribute(item[0]) for item in state
    ):
        raise Unsafe(
            "a BUILD state is a list of (name, value) pairs with a special or computed name; "
            "real pickles set plain attribute names only"
        )
    if isinstance(state, Dictionary) and not all(_plain_attribute(key) for key, _ in state.pairs):
        raise Unsafe(
            "a BUILD sets a special or computed attribute (__class__, __array_interface__, a "
            "numpy.str_ key) on an instance; real pickles set plain attribute names only"
        )


#: Callables whose result has an ``items()`` or ``keys()`` a BUILD would copy into ``__dict__``.
_MAPPING_CALLS = (
    "builtins.dict",
    "collections.",
    "types.",
    "sklearn.utils._bunch.",
    "sklearn.utils.Bunch",
    "pandas.Series",
    "pandas.DataFrame",
    "pandas.core.series.Series",
    "pandas.core.frame.DataFrame",
)


def _is_mapping_call(state: Call) -> bool:
    func = state.func
    if isinstance(func, Global) and func.qualname in (RECONSTRUCTOR, "copyreg.__newobj__"):
        args = state.args
        func = args[0] if isinstance(args, tuple) and args else func
    return isinstance(func, Global) and func.qualname.startswith(_MAPPING_CALLS)


def _plain_attribute(name: object) -> bool:
    """A plain ``str`` (not a subclass) that is not a special ``__name__``."""
    return type(name) is str and not (name.startswith("__") and name.endswith("__"))
