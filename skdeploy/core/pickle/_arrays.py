"""joblib's arrays: the placeholder it pickles, and how many raw bytes follow it in the file.

Wherever joblib reads raw bytes, the walk must read exactly as many, or refuse: the placeholder
only in the two forms joblib writes, its state only as joblib writes it, dtypes only in the states
numpy writes (:func:`dtype_layout`). This module decides those counts from the placeholders; the
walker in :mod:`skdeploy.core.pickle._walker` reads the bytes.
"""

from __future__ import annotations

import math
import re
from typing import NamedTuple, cast

from skdeploy.core.pickle._errors import Unsafe
from skdeploy.core.pickle._values import Call, Dictionary, Global

__all__ = [
    "HIDDEN_WRAPPER",
    "RECONSTRUCTOR",
    "ArrayLayout",
    "DtypeLayout",
    "array_layout",
    "dtype_layout",
    "hides_wrapper",
    "is_wrapper_args",
    "is_wrapper_class",
    "plain_int",
]

_MAX_DTYPE_DEPTH = 32  # structured dtypes nest fields; deeper than this is not a real model

_WRAPPER = ("joblib.numpy_pickle", "NumpyArrayWrapper")
RECONSTRUCTOR = "copyreg._reconstructor"
#: What joblib may record as the array's class (the loader rebuilds other ndarray subclasses).
_WRAPPER_SUBCLASSES = frozenset({"numpy.ndarray", "numpy.matrix", "numpy.memmap"})
#: The wrapper's attributes, as joblib >= 0.10 writes them (the last one since joblib 1.2).
_WRAPPER_KEYS = frozenset(
    {"subclass", "shape", "order", "dtype", "allow_mmap", "numpy_array_alignment_bytes"}
)
_WRAPPER_REQUIRED = frozenset({"subclass", "shape", "order", "dtype"})

HIDDEN_WRAPPER = (
    "joblib's array placeholder (joblib.numpy_pickle.NumpyArrayWrapper) is built or passed "
    "around other than the two ways joblib writes it: the loader would read raw bytes where "
    "this check cannot follow"
)


def is_wrapper_class(value: object) -> bool:
    return isinstance(value, Global) and (value.module, value.name) == _WRAPPER


def is_wrapper_args(args: object) -> bool:
    """``(NumpyArrayWrapper, object, None)``: copyreg._reconstructor's arguments (protocol < 2)."""
    return (
        isinstance(args, tuple)
        and len(args) == 3
        and is_wrapper_class(args[0])
        and isinstance(args[1], Global)
        and args[1].qualname == "builtins.object"
        and args[2] is None
    )


def hides_wrapper(value: object) -> bool:
    """joblib's array class, or the one tuple it may sit in (which no other tuple may hold)."""
    return is_wrapper_class(value) or is_wrapper_args(value)


#: The spellings of ``numpy.dtype`` a dtype's REDUCE may use (numpy 1 and 2 write ``numpy.dtype``).
_DTYPE_GLOBALS = frozenset(
    {"numpy.dtype", "numpy.core.multiarray.dtype", "numpy._core.multiarray.dtype"}
)

#: Type strings numpy writes for fixed-size dtypes, and their item size in bytes.
_FIXED_TYPESTR = re.compile(r"(b1|[iu][1248]|f(?:2|4|8|12|16)|c(?:8|16|24|32)|O[48]|[Mm]8)")
#: Flexible type strings (bytes, text, void): the digits are a count (4 bytes a character for U).
_FLEXIBLE_TYPESTR = re.compile(r"([SUV])([1-9][0-9]{0,9})")
_BYTEORDERS = frozenset({"<", ">", "|", "="})


class DtypeLayout(NamedTuple):
    itemsize: int
    has_objects: bool


class ArrayLayout(NamedTuple):
    """What joblib reads after a placeholder: a nested pickle (objects) or ``items`` items."""

    items: int
    itemsize: int
    has_objects: bool
    aligned: bool


def array_layout(state: object) -> ArrayLayout:
    """The raw data that follows a joblib placeholder with this BUILD state, or refuse.

    Exact only when the state is a plain dictionary of the attributes joblib writes (plain string
    keys, each once) and the dtype is one :func:`dtype_layout` reads exactly.
    """
    if not isinstance(state, Dictionary):
        raise Unsafe("a joblib array placeholder's state is not a dictionary")
    keys = [key for key, _ in state.pairs]
    if not all(type(key) is str for key in keys) or len(set(keys)) != len(keys):
        raise Unsafe(
            "a joblib array placeholder's state has computed or repeated keys (a numpy.str_ "
            "'shape', say): the loader would read a different number of bytes"
        )
    values = {cast(str, key): value for key, value in state.pairs}
    if not (_WRAPPER_REQUIRED <= values.keys() <= _WRAPPER_KEYS):
        raise Unsafe("a joblib array placeholder's attributes are not the ones joblib writes")
    shape, order = values["shape"], values["order"]
    subclass, alignment = values["subclass"], values.get("numpy_array_alignment_bytes")
    if not (isinstance(shape, tuple) and all(plain_int(n) and n >= 0 for n in shape)):
        raise Unsafe("a joblib array's shape is not a tuple of counts")
    if not (
        type(order) is str
        and order in ("C", "F")
        and isinstance(subclass, Global)
        and subclass.qualname in _WRAPPER_SUBCLASSES
        and type(values.get("allow_mmap", False)) is bool
        and (alignment is None or plain_int(alignment))
    ):
        raise Unsafe("a joblib array's order, class or alignment is not one joblib writes")
    layout = dtype_layout(values["dtype"])
    count = math.prod(shape)
    if count >= 2**63:
        raise Unsafe("a joblib array's element count overflows the loader's 64-bit count")
    return ArrayLayout(count, layout.itemsize, layout.has_objects, alignment is not None)


def plain_int(value: object) -> bool:
    """An int written by an int opcode (not a bool, not a numpy scalar)."""
    return type(value) is int


def dtype_layout(dtype: object, depth: int = 0) -> DtypeLayout:
    """Item size and object-ness of a pickled dtype, exactly as numpy would build it, or refuse.

    numpy pickles a dtype as ``numpy.dtype(typestr, align, copy)`` and one BUILD with
    ``(version, byteorder, subarray, names, fields, elsize, alignment, flags[, metadata])``.
    numpy's ``__setstate__`` takes the item size from the type string for fixed-size types and
    ignores ``elsize`` (-1 is written), takes it from ``elsize`` for flexible ones (``U5`` is 20
    bytes), and takes object-ness from bit 0 of ``flags`` (NPY_ITEM_REFCOUNT) whatever the type
    string says. Rather than model every one of those rules, only the states numpy itself writes
    are accepted: ``elsize`` -1 for fixed types and equal to the type string's size for flexible
    ones, the flag bit equal to what the type (or its fields, or its subarray base) holds, fields
    inside the item. Then every rule numpy could apply gives the same answer. Anything else is
    refused: a file numpy never writes is not a model.
    """
    if depth > _MAX_DTYPE_DEPTH:
        raise Unsafe("a numpy dtype nested deeper than any real model")
    if not (
        isinstance(dtype, Call)
        and isinstance(dtype.func, Global)
        and dtype.func.qualname in _DTYPE_GLOBALS
        and isinstance(dtype.args, tuple)
        and len(dtype.args) == 3
        and type(dtype.args[0]) is str
        and type(dtype.args[1]) is bool
        and dtype.args[2] is True
    ):
        raise Unsafe("a joblib array's dtype is not written as numpy writes one")
    if dtype.builds != 1 or not isinstance(dtype.state, tuple):
        raise Unsafe("a joblib array's dtype is not given its state exactly once")
    typestr, state = dtype.args[0], dtype.state
    if not (
        len(state) in (8, 9)
        and state[0] in (3, 4)
        and plain_int(state[0])
        and state[1] in _BYTEORDERS
        and all(plain_int(state[i]) for i in (5, 6, 7))
    ):
        raise Unsafe(f"the state of numpy dtype {typestr!r} is not one numpy writes")
    layout = _typestr_layout(typestr, state, depth)
    if bool(state[7] & 1) != layout.has_objects:
        raise Unsafe(f"numpy dtype {typestr!r} has flags that disagree with its type")
    return layout


def _typestr_layout(typestr: str, state: tuple[object, ...], depth: int) -> DtypeLayout:
    """The layout a dtype's type string and its state's size, subarray and fields give."""
    subarray, names, fields, elsize = state[2], state[3], state[4], state[5]
    fixed = _FIXED_TYPESTR.fullmatch(typestr)
    flexible = _FLEXIBLE_TYPESTR.fullmatch(typestr)
    if fixed:
        itemsize, has_objects = int(re.sub(r"\D", "", typestr)), typestr[0] == "O"
        if elsize != -1 or subarray is not None or names is not None or fields is not None:
            raise Unsafe(f"numpy dtype {typestr!r} comes with a size or fields of its own")
    elif flexible:
        kind, count = flexible.group(1), int(flexible.group(2))
        itemsize, has_objects = count * (4 if kind == "U" else 1), False
        if elsize != itemsize:
            raise Unsafe(f"numpy dtype {typestr!r} claims {elsize} bytes an item")
        if kind != "V" and (subarray is not None or names is not None or fields is not None):
            raise Unsafe(f"numpy dtype {typestr!r} has fields, which only void types have")
        if subarray is not None:
            has_objects = _subarray_objects(subarray, itemsize, depth)
        if names is not None or fields is not None:
            has_objects = _fields_objects(names, fields, itemsize, depth)
    else:
        raise Unsafe(f"numpy dtype {typestr!r} is not one whose item size this check knows")
    return DtypeLayout(itemsize, has_objects)


def _subarray_objects(subarray: object, itemsize: int, depth: int) -> bool:
    if not (
        isinstance(subarray, tuple)
        and len(subarray) == 2
        and isinstance(subarray[1], tuple)
        and all(plain_int(n) and n >= 0 for n in subarray[1])
    ):
        raise Unsafe("a numpy subarray dtype is not written as numpy writes one")
    base = dtype_layout(subarray[0], depth + 1)
    if base.itemsize * math.prod(subarray[1]) != itemsize:
        raise Unsafe("a numpy subarray dtype's size disagrees with its shape")
    return base.has_objects


def _fields_objects(names: object, fields: object, itemsize: int, depth: int) -> bool:
    if not (
        isinstance(names, tuple)
        and isinstance(fields, Dictionary)
        and all(type(name) is str for name in names)
        and len(set(names)) == len(names)
        and all(type(key) is str for key, _ in fields.pairs)
        and sorted(key for key, _ in fields.pairs) == sorted(names)  # type: ignore[type-var]
    ):
        raise Unsafe("a numpy structured dtype's names and fields do not match")
    has_objects = False
    for _, spec in fields.pairs:
        if not (
            isinstance(spec, tuple) and len(spec) in (2, 3) and plain_int(spec[1]) and spec[1] >= 0
        ):
            raise Unsafe("a numpy structured dtype's field is not (dtype, offset[, title])")
        field_layout = dtype_layout(spec[0], depth + 1)
        if spec[1] + field_layout.itemsize > itemsize:
            raise Unsafe("a numpy structured dtype's field lies outside its item")
        has_objects = has_objects or field_layout.has_objects
    return has_objects


# --------------------------------------------------------------------------------------------
# Entry points.
