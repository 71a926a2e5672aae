"""Knowing the model: its plan (feature names, columns, settings), made once per model."""

import functools
import os
import re
import weakref
from http import HTTPStatus
from typing import Any, Callable, Dict, FrozenSet, List, Optional, Tuple

import numpy as np

from ._carriers import Fault, _Plan
from ._formats import _flag
from ._limits import (
    _CONFIG_PER_THREAD,
    ANY,
    ANY_INPUT_STEPS,
    CSV_HEADER_ENV,
    CSV_HEADER_MODES,
    META_ATTRIBUTES,
    NUMBER,
    PROBABILITIES_ENV,
    TEXT,
    logger,
)

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
