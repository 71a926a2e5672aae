"""The bulk JSON reader: large bodies of plain numeric rows through numpy's C parser."""

import io
from typing import Any, Optional, Tuple

import numpy as np

from ._limits import (
    _BULK_JSON_BYTES,
    _BULK_JSON_INTEGER_MINUS_ZERO,
    _BULK_JSON_OBJECT_END,
    _BULK_JSON_START,
    VALUES_PER_LINE,
)


def bulk_json_rows(text: str) -> Optional[np.ndarray]:
    """A large body of plain numeric rows, read by numpy's C parser; None for anything else.

    ``json.loads`` spends most of a bulk request building a Python float and list per value.
    A body of at least :data:`BULK_JSON_CHARS` ASCII characters that is exactly ``[[...], ...]``
    or ``{"instances": [[...], ...]}``, with its rows separated as ``json.dumps`` (``], [``) or
    ``JSON.stringify`` (``],[``) write them and each row as long as the first (counted by its
    commas), has its brackets turned into spaces and line breaks (whole rows, about
    :data:`VALUES_PER_LINE` values to a line) and goes to ``np.loadtxt``. Anything else
    (nesting, an empty row, ``null``, strings, booleans, ``-0``, a tab or line break or any
    other spacing, another field, a value that is not finite, a row of 65,536 values or more)
    returns None, and the general path answers, with its exact JSON rules and its error
    messages. Both paths round each number correctly, so they give the same matrix; the C
    parser also reads a few spellings JSON forbids (``+1``, ``.5``, ``5.``, ``007``) as the
    numbers they spell.
    """
    raw = _bulk_json_bytes(text)
    if raw is None:
        return None
    chars = np.frombuffer(raw, dtype=np.uint8)
    layout = _bulk_json_layout(chars, raw)
    if layout is None:
        return None
    return _bulk_json_read(raw, chars, *layout)


def _bulk_json_bytes(text: str) -> Optional[bytearray]:
    """The rows of a bulk body, ``[[...], ...]``, as a mutable copy of their ASCII bytes.

    None unless the body is a list of rows, or an object holding only ``"instances"``, and
    holds no byte that a plain numeric row cannot (:data:`_BULK_JSON_BYTES`).
    """
    text = text.strip(" \t\n\r")  # str.strip() would also drop \x1c, \xa0, \u2028...
    start = _BULK_JSON_START.match(text, 0, 64)
    if start is None:
        return None
    end = len(text)
    if start.group(1) is not None:  # {"instances": [[...]]}: the rows end where the object does
        closing = _BULK_JSON_OBJECT_END.search(text, max(0, len(text) - 64))
        if closing is None:
            return None
        end = closing.end(1)
    try:
        raw = bytearray(text[start.start(2) : end].encode("ascii"))
    except UnicodeEncodeError:
        return None
    if raw.translate(None, _BULK_JSON_BYTES):  # what is left is a byte a bulk body cannot hold
        return None
    return raw


def _bulk_json_layout(
    chars: np.ndarray, raw: bytearray
) -> Optional[Tuple[np.ndarray, np.ndarray, int, int]]:
    """Where the rows open and close, how many there are and their width; None if irregular.

    Every row must open right after the one before (after ``,`` or ``, ``, the same all
    through) and hold as many commas as the first.
    """
    # One pass finds both brackets: "[" (0x5B) and "]" (0x5D) differ only in the bits of 0x06
    # (as do "Y" and "_", which the allowed bytes exclude, so nothing else is found).
    brackets = np.flatnonzero((chars & 0xF9) == 0x59)
    kinds = chars[brackets]
    opens = brackets[kinds == ord("[")]
    closes = brackets[kinds == ord("]")]
    rows = len(opens) - 1
    if rows < 1 or len(closes) != rows + 1 or closes[-1] != len(raw) - 1:
        return None
    # Row i runs from opens[i + 1] to closes[i], and every next row opens right after "," or
    # every one after ", " (a body that mixes them goes to json.loads). That rules out nesting
    # and anything else between rows; np.loadtxt catches whatever is left inside a row.
    after = closes[:-2] + 1
    gap = int(opens[2] - after[0]) if rows > 1 else 1
    if (
        gap not in (1, 2)
        or (opens[2:] - after != gap).any()
        or (chars[after] != ord(",")).any()
        or (gap == 2 and (chars[after + 1] != ord(" ")).any())
    ):
        return None
    if raw[closes[-2] + 1 : -1].strip(b" "):  # only spaces between the last row and "]"
        return None
    # Rows share lines below, so np.loadtxt cannot check their lengths: every row must have as
    # many commas as the first, counted up to the next row's "[" (so with the "," between rows).
    # The counts wrap at 65536; the size of the result, checked below, settles that.
    commas = np.equal(chars, ord(",")).view(np.uint8)
    counts = np.add.reduceat(commas, opens[1:], dtype=np.uint16)
    width = int(counts[0]) + (rows == 1)
    if not 0 < width < 65536 or (counts[:-1] != width).any() or counts[-1] != width - 1:
        return None
    return opens, closes, rows, width


def _bulk_json_read(
    raw: bytearray, chars: np.ndarray, opens: np.ndarray, closes: np.ndarray, rows: int, width: int
) -> Optional[np.ndarray]:
    """The rows of a regular bulk body as a matrix, by np.loadtxt; None where JSON must decide."""
    # Brackets become spaces, and every per_line-th row ends its line (the "," after it becomes
    # a space): np.loadtxt reads a few long lines faster than many short ones.
    per_line = max(1, VALUES_PER_LINE // width)
    chars[opens] = ord(" ")  # raw is a copy: change it in place
    chars[closes] = ord(" ")
    chars[-1] = ord("\n")
    ends = closes[per_line - 1 : rows - 1 : per_line]
    chars[ends] = ord("\n")
    chars[ends + 1] = ord(" ")
    try:
        # ASCII bytes: a StringIO would hold 4 bytes per character.
        if rows % per_line == 0 or not len(ends):
            samples = _loadtxt(io.BytesIO(raw), "ascii")
        else:  # np.loadtxt wants lines of one length: the last, shorter line is a second read
            cut = int(ends[-1]) + 1
            view = memoryview(raw)
            head, tail = io.BytesIO(view[:cut]), io.BytesIO(view[cut:])
            samples = np.concatenate((_loadtxt(head, "ascii"), _loadtxt(tail, "ascii")), axis=None)
    except ValueError:  # an empty or blank value ([], [1,,2]), or a malformed number (1e, --1, 1 2)
        return None
    # np.loadtxt drops only empty lines, and every line here holds at least a bracket's space,
    # so it reads one value per comma and one more. Each row's real count of commas is the
    # checked count plus some multiple of 65536: the size is right only if every multiple is 0.
    # nan, inf and 1e999 keep JSON's own reading.
    if samples.size != rows * width or not np.isfinite(samples).all():
        return None
    samples = samples.reshape(rows, width)
    # "-0.0" and "-0e1" are -0.0 to json.loads too, but "-0" is the integer 0, so +0.0 (and
    # "-00", which only the C parser reads, would be too): such a body goes to json.loads.
    zeros = samples == 0
    if (
        zeros.any()
        and np.signbit(samples[zeros]).any()
        and _BULK_JSON_INTEGER_MINUS_ZERO.search(raw)
    ):
        return None
    return samples


def _loadtxt(source: Any, encoding: Optional[str]) -> np.ndarray:
    """Lines of comma-separated numbers as a float64 matrix, by np.loadtxt's C reader."""
    return np.loadtxt(
        source, delimiter=",", dtype=np.float64, ndmin=2, comments=None, encoding=encoding
    )
