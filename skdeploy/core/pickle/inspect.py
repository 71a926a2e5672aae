"""Inspect a joblib or pickle model file without executing anything from it.

A model that the container cannot unpickle only fails 10-20 minutes into endpoint creation, on the
first health check (``shared/domain/deploy-pitfalls.md`` #1 and #4). Unpickling the file to find
out would run whatever the file asks for, so this module never unpickles: it reads the pickle
*opcodes* and simulates the unpickler's stack and memo with inert placeholders. Nothing is
imported, no callable is called and no object of the file's choosing is created. From that walk
it reports every global the unpickler would import (checked against an allow-list), the
scikit-learn versions estimators recorded in their state (``_sklearn_version``), whether the
pickle refers to ``numpy._core`` (only numpy 2 writes and imports it), the compression and the
pickle protocol. :func:`check_compatibility` turns a report into problems for one framework
version of :mod:`skdeploy.core.frameworks`.

joblib's layout
    ``joblib.dump`` does not write a plain pickle. Each numpy array is pickled as a
    ``joblib.numpy_pickle.NumpyArrayWrapper`` (shape, dtype, order), and the array's raw bytes
    follow right after the wrapper's BUILD opcode, preceded by one padding-length byte and that
    many padding bytes when the wrapper records ``numpy_array_alignment_bytes`` (joblib >= 1.2).
    An array of Python objects follows as a nested, complete pickle stream instead. joblib's
    ``NumpyUnpickler.load_build`` consumes those bytes; this walker does the same from the
    wrapper's recorded shape and dtype (a plain ``pickletools.genops`` stops at the first array).
    Compressed files are recognised by joblib's own magic prefixes and decompressed as a stream,
    capped by ``InspectionLimits.max_stream_mb`` so that a zip bomb is refused.

Agreeing with the loader by construction
    Wherever joblib reads raw bytes, the walk reads exactly as many, or refuses: the placeholder
    only in the two forms joblib writes, its state only as joblib writes it, dtypes only in the
    states numpy writes (:func:`_dtype_layout`), array data never inside an open pickle frame.
    Constructs whose effect cannot be read from the file (calling an object the pickle built,
    a BUILD that sets special or unseen attributes) are refused. A refusal stops the walk.

What the allow-list promises
    See :mod:`skdeploy.core.pickle.policy`: globals are allowed by the object they reach, under
    every name that reaches it. The work is bounded by :class:`InspectionLimits`.

What it does not promise
    That no allowed class or function can be turned into a gadget, or that the loader's own
    memory is bounded (``numpy.zeros`` of a huge shape is allowed). A model file from an
    untrusted source is code; the check makes honest mistakes and known attacks fail fast.
"""

from __future__ import annotations

import _compat_pickle
import bz2
import importlib
import io
import lzma
import math
import pickletools  # nosec B403 - only reads opcodes; never unpickles
import re
import zlib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, ClassVar, NamedTuple, Protocol, cast

from skdeploy.core.frameworks import FRAMEWORKS, Framework
from skdeploy.core.pickle.policy import global_refusal, in_package

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = [
    "Compatibility",
    "InspectionLimits",
    "PickleInspectionError",
    "PickleLimitExceeded",
    "PickleReport",
    "check_compatibility",
    "global_refusal",
    "inspect_pickle",
]


@dataclass(frozen=True)
class InspectionLimits:
    """Bounds on the work one inspection may do, set per stack by ``skdeploy:pickleLimits``.

    Each refusal names the limit it hit and the setting key that raises it: ``maxStreamMb``
    (decompressed bytes read, arrays included), ``maxOpcodes`` (pickle opcodes walked, which
    bounds time), ``maxValues`` (values the walk holds at once on its stack, memo and
    containers, which bounds memory) and ``maxNesting`` (open MARKs plus nested object-array
    pickles).
    """

    max_stream_mb: int = 2048
    max_opcodes: int = 20_000_000
    max_values: int = 5_000_000
    max_nesting: int = 1_000

    #: The ``skdeploy:pickleLimits`` key of each field, for messages and the settings parser.
    SETTING_KEYS: ClassVar[dict[str, str]] = {
        "max_stream_mb": "maxStreamMb",
        "max_opcodes": "maxOpcodes",
        "max_values": "maxValues",
        "max_nesting": "maxNesting",
    }


_CHUNK = 1 << 20  # bytes read at a time when skipping array data or decompressing
_INLINE_LIMIT = 1 << 12  # longer bytes/text/int payloads are skipped, not kept in memory
_MAX_LINE = 1 << 20  # longest argument line of a text opcode (protocol 0)
_MAX_DTYPE_DEPTH = 32  # structured dtypes nest fields; deeper than this is not a real model
_CHECK_EVERY = 1 << 16  # opcodes between two counts of the values the walk holds
_BYTES_PER_VALUE = 64  # a kept payload counts as one value per this many bytes
_HIGHEST_PROTOCOL = max(op.proto for op in pickletools.opcodes)
_OPCODES = {ord(op.code): op for op in pickletools.opcodes}

_WRAPPER = ("joblib.numpy_pickle", "NumpyArrayWrapper")
_RECONSTRUCTOR = "copyreg._reconstructor"
#: What joblib may record as the array's class (the loader rebuilds other ndarray subclasses).
_WRAPPER_SUBCLASSES = frozenset({"numpy.ndarray", "numpy.matrix", "numpy.memmap"})
#: The wrapper's attributes, as joblib >= 0.10 writes them (the last one since joblib 1.2).
_WRAPPER_KEYS = frozenset(
    {"subclass", "shape", "order", "dtype", "allow_mmap", "numpy_array_alignment_bytes"}
)
_WRAPPER_REQUIRED = frozenset({"subclass", "shape", "order", "dtype"})

# --------------------------------------------------------------------------------------------
# Results.


class PickleInspectionError(Exception):
    """The file is not a joblib/pickle stream this module can read (corrupt, truncated, other)."""


@dataclass(frozen=True)
class PickleReport:
    """What a model file would make the unpickler do, found without unpickling it.

    ``globals`` lists each ``(module, name)`` the unpickler would import, in order of first use,
    after Python 2 name mapping (protocols < 3) as the unpickler applies it. ``refused`` holds one
    message per refused global or construct, each naming it. ``sklearn_versions`` are the distinct
    ``_sklearn_version`` values estimators recorded. ``compression`` is joblib's name for the
    compressor (``None`` when uncompressed); ``protocol`` is the outer pickle's protocol.
    """

    globals: tuple[tuple[str, str], ...]
    refused: tuple[str, ...]
    sklearn_versions: tuple[str, ...]
    uses_numpy_core: bool
    compression: str | None
    protocol: int


class Compatibility(NamedTuple):
    """Problems between a pickle and a framework: ``errors`` refuse, ``warnings`` inform."""

    errors: tuple[str, ...]
    warnings: tuple[str, ...]


# --------------------------------------------------------------------------------------------
# Reading the (decompressed) stream.


class _Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...

    def readline(self, size: int = ..., /) -> bytes: ...


class _InflateReader(io.RawIOBase):
    """zlib or gzip data decompressed on demand, never more than the caller asked for."""

    def __init__(self, compressed: IO[bytes], wbits: int) -> None:
        super().__init__()
        self._compressed = compressed
        self._inflate = zlib.decompressobj(wbits)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        while True:
            if self._inflate.unconsumed_tail:
                data = self._inflate.unconsumed_tail
            elif self._inflate.eof:
                return 0
            else:
                data = self._compressed.read(_CHUNK)
                if not data:
                    raise EOFError("compressed data ended before its end-of-stream marker")
            out = self._inflate.decompress(data, len(view))
            if out:
                view[: len(out)] = out
                return len(out)


_NOT_PICKLE_PREFIXES: tuple[tuple[bytes, str], ...] = (
    (b"ZF", "joblib's pre-0.10 compressed format; re-save the model with a current joblib"),
    (b"\x93NUMPY", "a NumPy .npy file, not a pickled model"),
    (b"PK\x03\x04", "a zip archive (.npz, or a skops file), not a joblib or pickle file"),
)

#: joblib's own magic prefixes (joblib/compressor.py), so detection agrees with joblib.load.
_COMPRESSORS: tuple[tuple[str, bytes], ...] = (
    ("zlib", b"\x78"),
    ("gzip", b"\x1f\x8b"),
    ("bz2", b"BZ"),
    ("lzma", b"\x5d\x00"),
    ("xz", b"\xfd\x37\x7a\x58\x5a"),
    ("lz4", b"\x04\x22\x4d\x18"),
)


def _decompressed(raw: IO[bytes], compression: str | None) -> _Readable:
    if compression is None:
        return raw
    if compression in ("zlib", "gzip"):
        wbits = 15 if compression == "zlib" else 31
        return io.BufferedReader(_InflateReader(raw, wbits), buffer_size=_CHUNK)
    if compression == "bz2":
        return bz2.BZ2File(raw)
    if compression in ("lzma", "xz"):
        fmt = lzma.FORMAT_ALONE if compression == "lzma" else lzma.FORMAT_XZ
        return lzma.LZMAFile(raw, format=fmt)
    try:
        frame = importlib.import_module("lz4.frame")
    except ImportError:
        raise PickleInspectionError(
            "the file is lz4-compressed; install the lz4 package to inspect it"
        ) from None
    return cast(_Readable, frame.LZ4FrameFile(raw))


class PickleLimitExceeded(PickleInspectionError):
    """The file needs more work than a limit of :class:`InspectionLimits` allows."""


def _limit_message(limits: InspectionLimits, attribute: str, what: str) -> str:
    key = InspectionLimits.SETTING_KEYS[attribute]
    return (
        f"{what}: over the limit pickleLimits.{key}={getattr(limits, attribute)} (a hostile or "
        f"damaged file, or a model bigger than the default allows: raise skdeploy:pickleLimits."
        f"{key} in the stack file)"
    )


class _Corrupt(Exception):
    """Raised inside the walk; turned into a PickleInspectionError naming file and offset."""


class _Unsafe(Exception):
    """Raised inside the walk for a construct whose effect on the real loader is not certain.

    The walk stops there: what the loader would read next is unknown, so nothing after it can be
    vouched for. The message becomes one of the report's refusals.
    """


class _Stream:
    """The decompressed pickle bytes, read forward only, counted and capped.

    Reads are served from a buffer of up to ``_CHUNK`` bytes, so the opcode loop costs a slice,
    not a call into the decompressor. ``frame_end`` is the stream offset where the current pickle
    FRAME ends (0 outside frames); :meth:`_check_frame` refuses a read that starts inside a frame
    and ends past it, as Python's unpickler does ("pickle exhausted before end of frame").
    """

    def __init__(self, source: _Readable, limits: InspectionLimits) -> None:
        self._source = source
        self.limits = limits
        self._max = limits.max_stream_mb * 1024 * 1024
        self._buffer = b""
        self._offset = 0  # position inside _buffer
        self._consumed = 0  # stream offset of _buffer[0]
        self._pulled = 0  # bytes taken from the source so far
        self.frame_end = 0

    def tell(self) -> int:
        return self._consumed + self._offset

    def _pull(self, size: int) -> bytes:
        """Up to ``size`` more bytes from the source (b"" at its end), within the stream limit."""
        try:
            data = self._source.read(min(size, self._max - self._pulled + 1))
        # lz4.frame reports a corrupt frame as a RuntimeError (LZ4F_decompress failed ...).
        except (OSError, EOFError, RuntimeError, zlib.error, lzma.LZMAError) as exc:
            raise _Corrupt(f"the compressed data is corrupt or truncated ({exc})") from exc
        self._pulled += len(data)
        if self._pulled > self._max:
            raise PickleLimitExceeded(
                _limit_message(self.limits, "max_stream_mb", "the decompressed pickle stream")
            )
        return data

    def _refill(self, wanted: int) -> None:
        """Make at least ``wanted`` unread bytes available in the buffer, if the data has them."""
        rest = self._buffer[self._offset :]
        self._consumed += self._offset
        self._offset = 0
        parts = [rest]
        have = len(rest)
        while have < wanted:
            more = self._pull(max(_CHUNK, wanted - have))
            if not more:
                break
            parts.append(more)
            have += len(more)
        self._buffer = b"".join(parts)

    def _check_frame(self, size: int, what: str) -> None:
        start = self.tell()
        if start < self.frame_end < start + size:
            raise _Corrupt(f"{what} runs past the end of its pickle frame")

    def opcode(self) -> int:
        """The next byte, or -1 at the end of the data."""
        if self._offset >= len(self._buffer):
            self._refill(1)
            if not self._buffer:
                return -1
        byte = self._buffer[self._offset]
        self._offset += 1
        return byte

    def read(self, size: int) -> bytes:
        """Exactly ``size`` bytes, fewer only at the end of the data."""
        self._check_frame(size, "an opcode's argument")
        if self._offset + size > len(self._buffer):
            self._refill(size)
        data = self._buffer[self._offset : self._offset + size]
        self._offset += len(data)
        return data

    def readline(self) -> bytes:
        """One line of a text opcode, newline included; at most ``_MAX_LINE`` bytes."""
        while (end := self._buffer.find(b"\n", self._offset)) < 0:
            if len(self._buffer) - self._offset > _MAX_LINE:
                raise _Unsafe(
                    f"a text opcode's argument is longer than {_MAX_LINE} bytes; no model "
                    "pickled with protocol 2 or later has one (re-save it with joblib.dump)"
                )
            available = len(self._buffer) - self._offset
            self._refill(available + _CHUNK)
            if len(self._buffer) - self._offset == available:
                return self.read(available)  # no newline before the end of the data
        return self.read(end + 1 - self._offset)

    def exact(self, size: int, what: str) -> bytes:
        data = self.read(size)
        if len(data) < size:
            raise _Corrupt(f"the data ended inside {what} (truncated file?)")
        return data

    def skip_raw(self, size: int, what: str) -> None:
        """Skip ``size`` bytes that joblib reads straight from the file, outside any frame."""
        while size > 0:
            if self._offset >= len(self._buffer):
                self._refill(min(size, _CHUNK))
                if not self._buffer:
                    raise _Corrupt(f"the data ended inside {what} (truncated file?)")
            step = min(size, len(self._buffer) - self._offset)
            self._offset += step
            size -= step

    def skip(self, size: int, what: str) -> None:
        """Skip an opcode's long argument, which must lie inside the current frame if any."""
        self._check_frame(size, what)
        self.skip_raw(size, what)


# --------------------------------------------------------------------------------------------
# The walk: a pickle machine whose values are inert placeholders.


@dataclass(frozen=True)
class _Global:
    module: str
    name: str

    @property
    def qualname(self) -> str:
        return f"{self.module}.{self.name}"


_NO_STATE = object()


@dataclass(eq=False)
class _Call:
    """What a REDUCE, NEWOBJ, OBJ or INST would have created (never created here).

    ``wrapper`` marks joblib's array placeholder, created in one of the two ways joblib's pickler
    writes it; ``builds`` counts the BUILD opcodes applied to the object.
    """

    func: object
    args: object
    state: object = _NO_STATE
    wrapper: bool = False
    builds: int = 0


@dataclass(eq=False)
class _Dict:
    pairs: list[tuple[object, object]] = field(default_factory=list)

    def get(self, key: str) -> object:
        for k, value in reversed(self.pairs):
            if isinstance(k, str) and k == key:
                return value
        return None


@dataclass(eq=False)
class _Opaque:
    """A value the walk does not need: a long payload, an array, a persistent id."""

    what: str


@dataclass
class _Findings:
    """What one inspection found, and the work it has done so far (shared by nested walks)."""

    trusted: Mapping[str, Collection[str]]
    limits: InspectionLimits
    opcodes: int = 0
    contained: int = 0  # values put into lists, dicts and sets
    kept_bytes: int = 0  # payload bytes kept as values
    globals: dict[tuple[str, str], None] = field(default_factory=dict)
    refused: dict[str, None] = field(default_factory=dict)
    versions: dict[str, None] = field(default_factory=dict)

    def refuse(self, message: str) -> None:
        self.refused[message] = None

    def record_global(self, module: str, name: str) -> _Global:
        self.globals[(module, name)] = None
        reason = global_refusal(module, name, self.trusted)
        if reason is not None:
            self.refuse(f"{module}.{name}: {reason}")
        return _Global(module, name)


_LENGTH_PREFIXED: dict[str, tuple[int, bool]] = {
    # argument name -> (size of the little-endian length, signed)
    "bytes4": (4, False),
    "bytes8": (8, False),
    "bytearray8": (8, False),
    "string4": (4, True),
    "unicodestring4": (4, False),
    "unicodestring8": (8, False),
    "long4": (4, True),
}


class _Walker:
    """Simulates ``pickle.Unpickler`` (and joblib's array reading) over one pickle stream."""

    def __init__(self, stream: _Stream, findings: _Findings, *, joblib_arrays: bool, depth: int):
        self.stream = stream
        self.findings = findings
        self.joblib_arrays = joblib_arrays
        self.depth = depth
        self.proto = 0
        self.highest_opcode_proto = 0
        self.stack: list[object] = []
        self.metastack: list[list[object]] = []
        self.memo: dict[int, object] = {}
        self.limits = findings.limits
        push = self.stack_push_arg
        self.handlers: dict[str, Callable[[object], object]] = {
            **{
                name: push
                for name in [
                    "INT",
                    "BININT",
                    "BININT1",
                    "BININT2",
                    "LONG",
                    "LONG1",
                    "LONG4",
                    "FLOAT",
                    "BINFLOAT",
                    "STRING",
                    "BINSTRING",
                    "SHORT_BINSTRING",
                    "BINBYTES",
                    "SHORT_BINBYTES",
                    "BINBYTES8",
                    "BYTEARRAY8",
                    "UNICODE",
                    "SHORT_BINUNICODE",
                    "BINUNICODE",
                    "BINUNICODE8",
                ]
            },
            "NONE": lambda _: self.stack.append(None),
            "NEWTRUE": lambda _: self.stack.append(True),
            "NEWFALSE": lambda _: self.stack.append(False),
            "EMPTY_LIST": lambda _: self.stack.append([]),
            "EMPTY_TUPLE": lambda _: self.stack.append(()),
            "EMPTY_DICT": lambda _: self.stack.append(_Dict()),
            "EMPTY_SET": lambda _: self.stack.append([]),
            "MARK": self.op_mark,
            "POP": self.op_pop,
            "POP_MARK": lambda _: self.pop_mark(),
            "DUP": lambda _: self.stack.append(self.top()),
            "LIST": lambda _: self.push_marked(self.contain),
            "TUPLE": lambda _: self.push_marked(self.new_tuple),
            "TUPLE1": lambda _: self.op_tuple(1),
            "TUPLE2": lambda _: self.op_tuple(2),
            "TUPLE3": lambda _: self.op_tuple(3),
            "DICT": lambda _: self.push_marked(lambda items: _Dict(self.pairs(items))),
            "FROZENSET": lambda _: self.push_marked(self.contain),
            "APPEND": self.op_append,
            "APPENDS": self.op_appends,
            "ADDITEMS": self.op_appends,
            "SETITEM": self.op_setitem,
            "SETITEMS": self.op_setitems,
            "GET": self.op_get,
            "BINGET": self.op_get,
            "LONG_BINGET": self.op_get,
            "PUT": self.op_put,
            "BINPUT": self.op_put,
            "LONG_BINPUT": self.op_put,
            "MEMOIZE": lambda _: self.op_put(len(self.memo)),
            "GLOBAL": self.op_global,
            "STACK_GLOBAL": self.op_stack_global,
            "INST": self.op_inst,
            "OBJ": self.op_obj,
            "REDUCE": self.op_reduce,
            "NEWOBJ": self.op_newobj,
            "NEWOBJ_EX": self.op_newobj_ex,
            "BUILD": self.op_build,
            "PERSID": self.op_persid,
            "BINPERSID": self.op_persid,
            "EXT1": self.op_ext,
            "EXT2": self.op_ext,
            "EXT4": self.op_ext,
            "NEXT_BUFFER": self.op_next_buffer,
            "READONLY_BUFFER": lambda _: self.top(),
            "FRAME": self.op_frame,
            "PROTO": self.op_proto,
        }

    # -- the loop -------------------------------------------------------------------------

    def run(self) -> None:
        """Walk opcodes up to STOP, within the limits."""
        findings, stream, limits = self.findings, self.stream, self.limits
        while True:
            code = stream.opcode()
            if code < 0:
                raise _Corrupt("the data ended before the pickle's STOP opcode (truncated file?)")
            op = _OPCODES.get(code)
            if op is None:
                raise _Corrupt(f"byte {bytes([code])!r} is not a pickle opcode")
            findings.opcodes += 1
            if findings.opcodes % _CHECK_EVERY == 0:
                self.check_work()
            if op.proto > self.highest_opcode_proto:
                self.highest_opcode_proto = op.proto
            arg = self.read_arg(op) if op.arg is not None else None
            if op.name == "STOP":
                self.top()
                if self.depth and stream.tell() < stream.frame_end:
                    # The loader read the whole frame: it would resume after it, not here.
                    raise _Unsafe("a nested pickle stops before the end of its frame")
                return
            self.handlers[op.name](arg)
            if len(self.metastack) + self.depth > limits.max_nesting:
                raise PickleLimitExceeded(
                    _limit_message(limits, "max_nesting", "the pickle nests MARKs too deep")
                )

    def check_work(self) -> None:
        """Refuse once the opcodes walked or the values held pass their limits."""
        findings, limits = self.findings, self.limits
        if findings.opcodes > limits.max_opcodes:
            raise PickleLimitExceeded(
                _limit_message(limits, "max_opcodes", "the pickle has too many opcodes")
            )
        held = (
            len(self.stack)
            + sum(map(len, self.metastack))
            + len(self.memo)
            + findings.contained
            + findings.kept_bytes // _BYTES_PER_VALUE
        )
        if held > limits.max_values:
            raise PickleLimitExceeded(
                _limit_message(limits, "max_values", "the pickle holds too many values at once")
            )

    def read_arg(self, op: pickletools.OpcodeInfo) -> object:
        assert op.arg is not None
        name = op.arg.name
        if name == "stringnl_noescape_pair":
            return (self.line(op.name), self.line(op.name))
        if name in _LENGTH_PREFIXED:
            width, signed = _LENGTH_PREFIXED[name]
            length = int.from_bytes(self.stream.exact(width, op.name), "little", signed=signed)
            if length < 0:
                raise _Corrupt(f"{op.name} has a negative length")
            if length > _INLINE_LIMIT:
                self.stream.skip(length, op.name)
                return _Opaque(f"{op.name} of {length} bytes")
            data = self.stream.exact(length, op.name)
            self.findings.kept_bytes += length
            if name.startswith("unicode"):
                return data.decode("utf-8", "surrogatepass")
            if name == "string4":
                return data.decode("latin-1")
            if name == "long4":
                return int.from_bytes(data, "little", signed=True)
            return data
        # pickletools' readers only call read(n) and readline(); none of them evaluates data.
        return op.arg.reader(cast(IO[bytes], self.stream))

    def line(self, what: str) -> str:
        data = self.stream.readline()
        if not data.endswith(b"\n"):
            raise _Corrupt(f"the data ended inside {what} (truncated file?)")
        return data[:-1].decode("utf-8")

    # -- stack helpers ----------------------------------------------------------------------

    def top(self) -> object:
        if not self.stack:
            raise _Corrupt("an opcode needs a value but the unpickler's stack is empty")
        return self.stack[-1]

    def pop(self) -> object:
        value = self.top()
        del self.stack[-1]
        return value

    def pop_mark(self) -> list[object]:
        if not self.metastack:
            raise _Corrupt("an opcode needs a MARK but there is none")
        items = self.stack
        self.stack = self.metastack.pop()
        return items

    def push_marked(self, make: Callable[[list[object]], object]) -> None:
        """Pop up to the MARK, then push what ``make`` builds (on the outer stack)."""
        items = self.pop_mark()
        self.stack.append(make(items))

    def pairs(self, items: list[object]) -> list[tuple[object, object]]:
        if len(items) % 2:
            raise _Corrupt("a dictionary has a key without a value")
        self.contain(items)
        return list(zip(items[::2], items[1::2], strict=True))

    def stack_push_arg(self, arg: object) -> None:
        self.stack.append(arg)

    def refuse_mutation(self, target: object, what: str) -> None:
        if isinstance(target, _Global):
            self.findings.refuse(
                f"{target.qualname}: {what} would change the module or class itself, not an "
                "instance created by the pickle"
            )

    # -- opcodes ---------------------------------------------------------------------------

    def op_proto(self, arg: object) -> None:
        assert isinstance(arg, int)
        if arg > _HIGHEST_PROTOCOL:
            raise _Corrupt(f"pickle protocol {arg} is newer than any this Python knows")
        self.proto = arg

    def op_mark(self, _: object) -> None:
        self.metastack.append(self.stack)
        self.stack = []

    def op_pop(self, _: object) -> None:
        if self.stack:
            del self.stack[-1]
        else:
            self.pop_mark()

    def op_tuple(self, size: int) -> None:
        if len(self.stack) < size:
            raise _Corrupt("a tuple opcode needs more values than the stack holds")
        items = self.new_tuple(self.stack[-size:])
        del self.stack[-size:]
        self.stack.append(items)

    def new_tuple(self, items: list[object]) -> tuple[object, ...]:
        """A tuple; joblib's array class may only sit in ``(class, object, None)``."""
        if any(map(_hides_wrapper, items)) and not _is_wrapper_args(tuple(items)):
            raise _Unsafe(_HIDDEN_WRAPPER)
        return tuple(items)

    def contain(self, items: list[object]) -> list[object]:
        """A list or set's items: never joblib's array class, nor the tuple that builds one."""
        if any(map(_hides_wrapper, items)):
            raise _Unsafe(_HIDDEN_WRAPPER)
        self.findings.contained += len(items)
        return items

    def op_append(self, _: object) -> None:
        value = self.pop()
        self.extend(self.top(), [value])

    def op_appends(self, _: object) -> None:
        items = self.pop_mark()
        self.extend(self.top(), items)

    def extend(self, target: object, items: list[object]) -> None:
        self.refuse_mutation(target, "APPEND")
        self.contain(items)
        if isinstance(target, list):
            target.extend(items)

    def op_setitem(self, _: object) -> None:
        value = self.pop()
        key = self.pop()
        self.update(self.top(), self.pairs([key, value]))

    def op_setitems(self, _: object) -> None:
        pairs = self.pairs(self.pop_mark())
        self.update(self.top(), pairs)

    def update(self, target: object, pairs: list[tuple[object, object]]) -> None:
        self.refuse_mutation(target, "SETITEM")
        if isinstance(target, _Dict):
            target.pairs.extend(pairs)

    def op_get(self, arg: object) -> None:
        assert isinstance(arg, int)
        if arg not in self.memo:
            raise _Corrupt(f"memo entry {arg} is read before it is written")
        self.stack.append(self.memo[arg])

    def op_put(self, arg: object) -> None:
        assert isinstance(arg, int)
        if arg < 0:
            raise _Corrupt("negative memo index")
        self.memo[arg] = self.top()

    def record_global(self, module: str, name: str) -> _Global:
        """The global the unpickler would import, after its Python 2 renaming (protocol < 3)."""
        if self.proto < 3:
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            elif module in _compat_pickle.IMPORT_MAPPING:
                module = _compat_pickle.IMPORT_MAPPING[module]
        return self.findings.record_global(module, name)

    def op_global(self, arg: object) -> None:
        assert isinstance(arg, tuple)
        module, name = arg
        self.stack.append(self.record_global(module, name))

    def op_stack_global(self, _: object) -> None:
        name = self.pop()
        module = self.pop()
        if not (isinstance(module, str) and isinstance(name, str)):
            raise _Corrupt("STACK_GLOBAL needs a module and a name given as strings")
        self.stack.append(self.record_global(module, name))

    def op_inst(self, arg: object) -> None:
        assert isinstance(arg, tuple)
        module, name = arg
        cls = self.record_global(module, name)
        self.refuse_wrapper_call(cls)
        self.push_marked(lambda items: _Call(cls, self.new_tuple(items)))

    def op_obj(self, _: object) -> None:
        items = self.pop_mark()
        if not items:
            raise _Corrupt("OBJ without a class")
        self.refuse_wrapper_call(items[0])
        self.stack.append(_Call(items[0], self.new_tuple(items[1:])))

    def refuse_wrapper_call(self, func: object) -> None:
        """Refuse calls that build joblib's placeholder other than as joblib writes it."""
        if _is_wrapper_class(func):
            raise _Unsafe(_HIDDEN_WRAPPER)
        if not isinstance(func, _Global):
            raise _Unsafe(
                "the pickle calls an object it built itself (a functools.partial, say) instead "
                "of a named function or class: what that call does cannot be read from the file"
            )

    def op_reduce(self, _: object) -> None:
        args = self.pop()
        func = self.pop()
        if isinstance(func, _Global) and func.qualname == _RECONSTRUCTOR and _is_wrapper_args(args):
            self.stack.append(_Call(func, args, wrapper=self.joblib_arrays))
            return
        self.refuse_wrapper_call(func)
        if _hides_wrapper(args):
            raise _Unsafe(_HIDDEN_WRAPPER)
        if isinstance(func, _Global) and func.name == "_ufunc_reconstruct":
            self.stack.append(self.ufunc(func, args))
            return
        self.stack.append(_Call(func, args))

    def ufunc(self, func: _Global, args: object) -> object:
        """numpy's ``_ufunc_reconstruct(module, name)`` imports by string: check that import."""
        if (
            isinstance(args, tuple)
            and len(args) == 2
            and isinstance(args[0], str)
            and isinstance(args[1], str)
        ):
            return self.findings.record_global(args[0], args[1])
        self.findings.refuse(
            f"{func.qualname}: called with computed arguments, so the global it imports is unknown"
        )
        return _Call(func, args)

    def op_newobj(self, _: object) -> None:
        args = self.pop()
        cls = self.pop()
        if _is_wrapper_class(cls) and isinstance(args, tuple) and not args:
            self.stack.append(_Call(cls, args, wrapper=self.joblib_arrays))
            return
        self.refuse_wrapper_call(cls)
        if _hides_wrapper(args):
            raise _Unsafe(_HIDDEN_WRAPPER)
        self.stack.append(_Call(cls, args))

    def op_newobj_ex(self, _: object) -> None:
        kwargs = self.pop()
        args = self.pop()
        cls = self.pop()
        self.refuse_wrapper_call(cls)
        if _hides_wrapper(args) or _hides_wrapper(kwargs):
            raise _Unsafe(_HIDDEN_WRAPPER)
        self.stack.append(_Call(cls, (args, kwargs)))

    def op_frame(self, size: object) -> None:
        assert isinstance(size, int)
        stream = self.stream
        if stream.tell() < stream.frame_end:
            raise _Corrupt("a pickle frame begins before the previous one ends")
        stream.frame_end = stream.tell() + size

    def op_persid(self, arg: object) -> None:
        if arg is None:  # BINPERSID takes its id from the stack
            self.pop()
        self.findings.refuse(
            "persistent id: the pickle refers to objects stored elsewhere, and joblib.load "
            "has no persistent_load hook to find them"
        )
        self.stack.append(_Opaque("persistent id"))

    def op_ext(self, arg: object) -> None:
        self.findings.refuse(
            f"extension code {arg}: the pickle names a class through copyreg's extension "
            "registry, which is empty in the container"
        )
        self.stack.append(_Opaque(f"extension {arg}"))

    def op_next_buffer(self, _: object) -> None:
        self.findings.refuse(
            "out-of-band buffer: the pickle was written with a buffer_callback, and a model file "
            "loaded by joblib.load cannot supply the buffers"
        )
        self.stack.append(_Opaque("buffer"))

    def op_build(self, _: object) -> None:
        state = self.pop()
        obj = self.top()
        self.refuse_mutation(obj, "BUILD")
        if _hides_wrapper(state):
            raise _Unsafe(_HIDDEN_WRAPPER)
        pair = isinstance(state, tuple) and len(state) == 2
        parts = cast(tuple[object, object], state) if pair else (state, None)
        _check_attribute_state(parts[0])
        _check_attribute_state(parts[1])
        dict_state = cast(tuple[object, object], state)[0] if pair else state
        if isinstance(dict_state, _Dict):
            version = dict_state.get("_sklearn_version")
            if isinstance(version, str):
                self.findings.versions[version] = None
        if not isinstance(obj, _Call):
            return
        obj.builds += 1
        obj.state = state
        if obj.wrapper:
            if obj.builds > 1:
                raise _Unsafe("a joblib array placeholder is built twice")
            self.skip_joblib_array(state)
            self.stack[-1] = _Opaque("numpy array")

    def skip_joblib_array(self, state: object) -> None:
        """Consume the data joblib reads after its placeholder, exactly as ``read_array`` does.

        joblib's loader reads the array's bytes straight from the file, past the pickle machine:
        so this is only exact when no pickle frame is still open, the placeholder's state is a
        plain dictionary of the attributes joblib writes (plain string keys, each once), and the
        dtype is one :func:`_dtype_layout` reads exactly. Anything else is refused.
        """
        stream = self.stream
        if stream.tell() < stream.frame_end:
            raise _Unsafe("a joblib array's data starts inside a pickle frame")
        if not isinstance(state, _Dict):
            raise _Unsafe("a joblib array placeholder's state is not a dictionary")
        keys = [key for key, _ in state.pairs]
        if not all(type(key) is str for key in keys) or len(set(keys)) != len(keys):
            raise _Unsafe(
                "a joblib array placeholder's state has computed or repeated keys (a numpy.str_ "
                "'shape', say): the loader would read a different number of bytes"
            )
        values = {cast(str, key): value for key, value in state.pairs}
        if not (_WRAPPER_REQUIRED <= values.keys() <= _WRAPPER_KEYS):
            raise _Unsafe("a joblib array placeholder's attributes are not the ones joblib writes")
        shape, order = values["shape"], values["order"]
        subclass, alignment = values["subclass"], values.get("numpy_array_alignment_bytes")
        if not (isinstance(shape, tuple) and all(_plain_int(n) and n >= 0 for n in shape)):
            raise _Unsafe("a joblib array's shape is not a tuple of counts")
        if not (
            type(order) is str
            and order in ("C", "F")
            and isinstance(subclass, _Global)
            and subclass.qualname in _WRAPPER_SUBCLASSES
            and type(values.get("allow_mmap", False)) is bool
            and (alignment is None or _plain_int(alignment))
        ):
            raise _Unsafe("a joblib array's order, class or alignment is not one joblib writes")
        layout = _dtype_layout(values["dtype"])
        count = math.prod(shape)
        if count >= 2**63:
            raise _Unsafe("a joblib array's element count overflows the loader's 64-bit count")
        if layout.has_objects:
            nested = _Walker(stream, self.findings, joblib_arrays=False, depth=self.depth + 1)
            nested.run()
            return
        if alignment is not None:
            padding = stream.exact(1, "a joblib array's padding")[0]
            stream.skip_raw(padding, "a joblib array's padding")
        stream.skip_raw(count * layout.itemsize, "a joblib array's data")


def _check_attribute_state(state: object) -> None:
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
    if isinstance(state, _Call) and _is_mapping_call(state):
        raise _Unsafe(
            "a BUILD state is a mapping built by a call (dict(pairs), a pandas Series), so the "
            "attributes it sets cannot be read from the file; real pickles write a dictionary"
        )
    if isinstance(state, list) and any(
        isinstance(item, tuple) and item and not _plain_attribute(item[0]) for item in state
    ):
        raise _Unsafe(
            "a BUILD state is a list of (name, value) pairs with a special or computed name; "
            "real pickles set plain attribute names only"
        )
    if isinstance(state, _Dict) and not all(_plain_attribute(key) for key, _ in state.pairs):
        raise _Unsafe(
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


def _is_mapping_call(state: _Call) -> bool:
    func = state.func
    if isinstance(func, _Global) and func.qualname in (_RECONSTRUCTOR, "copyreg.__newobj__"):
        args = state.args
        func = args[0] if isinstance(args, tuple) and args else func
    return isinstance(func, _Global) and func.qualname.startswith(_MAPPING_CALLS)


def _plain_attribute(name: object) -> bool:
    """A plain ``str`` (not a subclass) that is not a special ``__name__``."""
    return type(name) is str and not (name.startswith("__") and name.endswith("__"))


_HIDDEN_WRAPPER = (
    "joblib's array placeholder (joblib.numpy_pickle.NumpyArrayWrapper) is built or passed "
    "around other than the two ways joblib writes it: the loader would read raw bytes where "
    "this check cannot follow"
)


def _is_wrapper_class(value: object) -> bool:
    return isinstance(value, _Global) and (value.module, value.name) == _WRAPPER


def _is_wrapper_args(args: object) -> bool:
    """``(NumpyArrayWrapper, object, None)``: copyreg._reconstructor's arguments (protocol < 2)."""
    return (
        isinstance(args, tuple)
        and len(args) == 3
        and _is_wrapper_class(args[0])
        and isinstance(args[1], _Global)
        and args[1].qualname == "builtins.object"
        and args[2] is None
    )


def _hides_wrapper(value: object) -> bool:
    """joblib's array class, or the one tuple it may sit in (which no other tuple may hold)."""
    return _is_wrapper_class(value) or _is_wrapper_args(value)


#: The spellings of ``numpy.dtype`` a dtype's REDUCE may use (numpy 1 and 2 write ``numpy.dtype``).
_DTYPE_GLOBALS = frozenset(
    {"numpy.dtype", "numpy.core.multiarray.dtype", "numpy._core.multiarray.dtype"}
)

#: Type strings numpy writes for fixed-size dtypes, and their item size in bytes.
_FIXED_TYPESTR = re.compile(r"(b1|[iu][1248]|f(?:2|4|8|12|16)|c(?:8|16|24|32)|O[48]|[Mm]8)")
#: Flexible type strings (bytes, text, void): the digits are a count (4 bytes a character for U).
_FLEXIBLE_TYPESTR = re.compile(r"([SUV])([1-9][0-9]{0,9})")
_BYTEORDERS = frozenset({"<", ">", "|", "="})


class _Layout(NamedTuple):
    itemsize: int
    has_objects: bool


def _plain_int(value: object) -> bool:
    """An int written by an int opcode (not a bool, not a numpy scalar)."""
    return type(value) is int


def _dtype_layout(dtype: object, depth: int = 0) -> _Layout:
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
        raise _Unsafe("a numpy dtype nested deeper than any real model")
    if not (
        isinstance(dtype, _Call)
        and isinstance(dtype.func, _Global)
        and dtype.func.qualname in _DTYPE_GLOBALS
        and isinstance(dtype.args, tuple)
        and len(dtype.args) == 3
        and type(dtype.args[0]) is str
        and type(dtype.args[1]) is bool
        and dtype.args[2] is True
    ):
        raise _Unsafe("a joblib array's dtype is not written as numpy writes one")
    if dtype.builds != 1 or not isinstance(dtype.state, tuple):
        raise _Unsafe("a joblib array's dtype is not given its state exactly once")
    typestr, state = dtype.args[0], dtype.state
    if not (
        len(state) in (8, 9)
        and state[0] in (3, 4)
        and _plain_int(state[0])
        and state[1] in _BYTEORDERS
        and all(_plain_int(state[i]) for i in (5, 6, 7))
    ):
        raise _Unsafe(f"the state of numpy dtype {typestr!r} is not one numpy writes")
    subarray, names, fields, elsize, flags = state[2], state[3], state[4], state[5], state[7]
    fixed = _FIXED_TYPESTR.fullmatch(typestr)
    flexible = _FLEXIBLE_TYPESTR.fullmatch(typestr)
    if fixed:
        itemsize, has_objects = int(re.sub(r"\D", "", typestr)), typestr[0] == "O"
        if elsize != -1 or subarray is not None or names is not None or fields is not None:
            raise _Unsafe(f"numpy dtype {typestr!r} comes with a size or fields of its own")
    elif flexible:
        kind, count = flexible.group(1), int(flexible.group(2))
        itemsize, has_objects = count * (4 if kind == "U" else 1), False
        if elsize != itemsize:
            raise _Unsafe(f"numpy dtype {typestr!r} claims {elsize} bytes an item")
        if kind != "V" and (subarray is not None or names is not None or fields is not None):
            raise _Unsafe(f"numpy dtype {typestr!r} has fields, which only void types have")
        if subarray is not None:
            has_objects = _subarray_objects(subarray, itemsize, depth)
        if names is not None or fields is not None:
            has_objects = _fields_objects(names, fields, itemsize, depth)
    else:
        raise _Unsafe(f"numpy dtype {typestr!r} is not one whose item size this check knows")
    if bool(flags & 1) != has_objects:
        raise _Unsafe(f"numpy dtype {typestr!r} has flags that disagree with its type")
    return _Layout(itemsize, has_objects)


def _subarray_objects(subarray: object, itemsize: int, depth: int) -> bool:
    if not (
        isinstance(subarray, tuple)
        and len(subarray) == 2
        and isinstance(subarray[1], tuple)
        and all(_plain_int(n) and n >= 0 for n in subarray[1])
    ):
        raise _Unsafe("a numpy subarray dtype is not written as numpy writes one")
    base = _dtype_layout(subarray[0], depth + 1)
    if base.itemsize * math.prod(subarray[1]) != itemsize:
        raise _Unsafe("a numpy subarray dtype's size disagrees with its shape")
    return base.has_objects


def _fields_objects(names: object, fields: object, itemsize: int, depth: int) -> bool:
    if not (
        isinstance(names, tuple)
        and isinstance(fields, _Dict)
        and all(type(name) is str for name in names)
        and len(set(names)) == len(names)
        and all(type(key) is str for key, _ in fields.pairs)
        and sorted(key for key, _ in fields.pairs) == sorted(names)  # type: ignore[type-var]
    ):
        raise _Unsafe("a numpy structured dtype's names and fields do not match")
    has_objects = False
    for _, spec in fields.pairs:
        if not (
            isinstance(spec, tuple) and len(spec) in (2, 3) and _plain_int(spec[1]) and spec[1] >= 0
        ):
            raise _Unsafe("a numpy structured dtype's field is not (dtype, offset[, title])")
        field_layout = _dtype_layout(spec[0], depth + 1)
        if spec[1] + field_layout.itemsize > itemsize:
            raise _Unsafe("a numpy structured dtype's field lies outside its item")
        has_objects = has_objects or field_layout.has_objects
    return has_objects


# --------------------------------------------------------------------------------------------
# Entry points.


def _detect_compression(head: bytes) -> str | None:
    for prefix, refusal in _NOT_PICKLE_PREFIXES:
        if head.startswith(prefix):
            raise PickleInspectionError(f"this is {refusal}")
    for name, prefix in _COMPRESSORS:
        if head.startswith(prefix):
            return name
    return None


def inspect_pickle(
    path: Path | str,
    *,
    limits: InspectionLimits | None = None,
    trusted: Mapping[str, Collection[str]] | None = None,
) -> PickleReport:
    """Report what unpickling ``path`` (as ``joblib.load`` does) would import, running nothing.

    ``limits`` bounds the work (default :class:`InspectionLimits`); passing one raises
    :class:`PickleLimitExceeded` naming the limit and its setting. ``trusted`` maps modules the
    model's own code ships to the classes they define (``skdeploy:trustedModules``, see
    :func:`global_refusal`). A construct whose effect on
    the real loader this walk cannot follow exactly ends the walk with a refusal. Raises
    :class:`PickleInspectionError` with the reason and byte offset for anything unreadable; no
    input makes it raise anything else.
    """
    path = Path(path)
    limits = limits or InspectionLimits()
    findings = _Findings(trusted=dict(trusted or {}), limits=limits)
    try:
        with path.open("rb") as raw:
            head = raw.read(8)
            if not head:
                raise PickleInspectionError("the file is empty")
            raw.seek(0)
            compression = _detect_compression(head)
            stream = _Stream(_decompressed(raw, compression), limits)
            walker = _Walker(stream, findings, joblib_arrays=True, depth=0)
            where = f"the {compression or 'uncompressed'} stream"
            try:
                walker.run()
                walker.check_work()
            except _Unsafe as exc:
                findings.refuse(
                    f"{exc} (at byte {stream.tell()} of {where}); nothing after it was inspected"
                )
            except (_Corrupt, ValueError, OverflowError, UnicodeDecodeError) as exc:
                raise PickleInspectionError(
                    f"not a readable joblib/pickle file: {exc} (at byte {stream.tell()} of {where})"
                ) from exc
    except PickleInspectionError as exc:
        raise type(exc)(f"{path}: {exc}") from exc
    except OSError as exc:
        raise PickleInspectionError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except (RecursionError, MemoryError) as exc:
        raise PickleInspectionError(
            f"{path}: the inspection ran out of "
            f"{'memory' if isinstance(exc, MemoryError) else 'stack'}; the file is refused"
        ) from exc
    return PickleReport(
        globals=tuple(findings.globals),
        refused=tuple(findings.refused),
        sklearn_versions=tuple(findings.versions),
        uses_numpy_core=any(in_package(module, "numpy._core") for module, _ in findings.globals),
        compression=compression,
        protocol=walker.proto if walker.proto else walker.highest_opcode_proto,
    )


def _major_minor(version: str) -> str | None:
    match = re.match(r"(\d+)\.(\d+)", version)
    return f"{match.group(1)}.{match.group(2)}" if match else None


def check_compatibility(
    report: PickleReport, framework: Framework, *, allow_version_skew: bool = False
) -> Compatibility:
    """Problems that would make ``framework``'s container fail to load or misuse the model.

    Errors: refused globals; a recorded scikit-learn version whose major.minor differs from the
    framework's (a warning instead with ``allow_version_skew``); ``numpy._core`` on a numpy-1
    framework; lz4 compression when the framework does not install lz4. Warnings: no recorded
    scikit-learn version, and pandas objects, whose pickles depend on the pandas version.
    """
    errors: list[str] = list(report.refused)
    warnings: list[str] = []
    for version in report.sklearn_versions:
        if _major_minor(version) == framework.sklearn_minor:
            continue
        matching = [
            f"{f.version} (scikit-learn {f.scikit_learn})"
            for f in FRAMEWORKS.values()
            if f.sklearn_minor == _major_minor(version)
        ]
        message = (
            f"the model was saved with scikit-learn {version}, but framework {framework.version} "
            f"runs scikit-learn {framework.scikit_learn} (major.minor {framework.sklearn_minor}): "
            "unpickling may fail, or predictions may differ. Re-save the model with "
            f"scikit-learn=={framework.scikit_learn}"
            + (f", or use framework {' or '.join(matching)}" if matching else "")
        )
        (warnings if allow_version_skew else errors).append(message)
    if report.uses_numpy_core and framework.numpy_major < 2:
        numpy2 = [f.version for f in FRAMEWORKS.values() if f.numpy_major >= 2]
        errors.append(
            "the pickle refers to numpy._core, which only numpy 2 writes and imports, but "
            f"framework {framework.version} has numpy {framework.numpy}: re-save the model "
            "under numpy<2" + (f", or use framework {' or '.join(numpy2)}" if numpy2 else "")
        )
    if report.compression == "lz4" and not any(
        requirement.lower().startswith("lz4") for requirement in framework.runtime_requirements()
    ):
        errors.append(
            f"the file is lz4-compressed, and lz4 is not among the packages framework "
            f"{framework.version} pins: joblib.load fails there. Re-save with compress=('zlib', 3)"
        )
    modules = {module for module, _ in report.globals}
    if not report.sklearn_versions and any(in_package(m, "sklearn") for m in modules):
        warnings.append(
            "no scikit-learn version is recorded in the pickle (scikit-learn < 0.18, or a custom "
            "__getstate__): the version match cannot be checked"
        )
    if any(in_package(m, "pandas") for m in modules):
        warnings.append(
            f"the pickle holds pandas objects, which only load reliably under the pandas that "
            f"wrote them; framework {framework.version} has pandas {framework.pandas}"
        )
    return Compatibility(errors=tuple(errors), warnings=tuple(warnings))
