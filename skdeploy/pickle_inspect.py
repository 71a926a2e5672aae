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
version of :mod:`skdeploy.frameworks`.

joblib's layout
    ``joblib.dump`` does not write a plain pickle. Each numpy array is pickled as a
    ``joblib.numpy_pickle.NumpyArrayWrapper`` (shape, dtype, order), and the array's raw bytes
    follow right after the wrapper's BUILD opcode, preceded by one padding-length byte and that
    many padding bytes when the wrapper records ``numpy_array_alignment_bytes`` (joblib >= 1.2).
    An array of Python objects follows as a nested, complete pickle stream instead. joblib's
    ``NumpyUnpickler.load_build`` consumes those bytes; this walker does the same from the
    wrapper's recorded shape and dtype (a plain ``pickletools.genops`` stops at the first array).
    Compressed files are recognised by joblib's own magic prefixes and decompressed as a stream,
    capped at ``max_bytes`` so that a zip bomb is refused instead of filling memory.

What the allow-list promises
    Every global the unpickler would import is either one of a few named, data-only builtins, or
    lives in scikit-learn, numpy, scipy or pandas, which the container ships. Anything else is
    refused by name: the container may not have it, and an unknown callable can do anything when
    the unpickler calls it. The classic exploit gadgets (``os.system``, ``subprocess``,
    ``builtins.eval``/``exec``/``getattr``/``__import__``, ``importlib``, ``operator``, nested
    unpicklers) are refused with the reason; so are classes from ``__main__``, attribute paths
    (``module.Class.attr``) and special names (``__builtins__``), which is how exploits climb out
    of an allowed module. Inside the allowed libraries, a deny-list names their known entry
    points to code execution, files, the network or raw memory (``numpy.testing``,
    ``numpy.load``, ``numpy.lib.stride_tricks``, ``sklearn.utils._testing``, ``pandas.eval``,
    ``pandas.read_*``, ...), and numpy's ``_ufunc_reconstruct(module, name)`` (an import by
    string) is checked as the global it imports.

What it does not promise
    That a hostile author cannot find another gadget among the thousands of callables of those
    libraries, or cannot exhaust memory (``numpy.zeros`` of a huge shape is allowed). A model file
    from an untrusted source is code; the check makes honest mistakes and the well-known attacks
    fail fast, it is not a sandbox.
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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, ClassVar, NamedTuple, Protocol, cast

from skdeploy.frameworks import FRAMEWORKS, Framework
from skdeploy.pickle_policy import global_refusal, in_package

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = [
    "DEFAULT_MAX_BYTES",
    "Compatibility",
    "InspectionLimits",
    "PickleInspectionError",
    "PickleReport",
    "check_compatibility",
    "global_refusal",
    "inspect_pickle",
]

#: Largest decompressed pickle stream inspected (2 GiB); more is refused as a likely zip bomb.
DEFAULT_MAX_BYTES = 2 * 1024**3


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
_INLINE_LIMIT = 1 << 16  # longer bytes/text/int payloads are skipped, not kept in memory
_MAX_NESTING = 16  # object arrays nest pickle streams; deeper than this is not a real model
_HIGHEST_PROTOCOL = max(op.proto for op in pickletools.opcodes)
_OPCODES = {ord(op.code): op for op in pickletools.opcodes}

_WRAPPER = ("joblib.numpy_pickle", "NumpyArrayWrapper")
_INSTANCE_FACTORIES = frozenset(
    {"copyreg._reconstructor", "copyreg.__newobj__", "copyreg.__newobj_ex__"}
)

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


class _TooLarge(PickleInspectionError):
    pass


class _Corrupt(Exception):
    """Raised inside the walk; turned into a PickleInspectionError naming file and offset."""


class _Stream:
    """The decompressed pickle bytes, read forward only, counted and capped at ``max_bytes``."""

    def __init__(self, source: _Readable, max_bytes: int) -> None:
        self._source = source
        self._max = max_bytes
        self._pos = 0

    def tell(self) -> int:
        return self._pos

    def _account(self, data: bytes) -> bytes:
        self._pos += len(data)
        if self._pos > self._max:
            raise _TooLarge(
                f"the pickle stream is larger than max_bytes={self._max} bytes "
                "(a zip bomb, or raise the limit)"
            )
        return data

    def _guard(self, read: Callable[[int], bytes], size: int) -> bytes:
        try:
            return self._account(read(min(size, self._max - self._pos + 1)))
        # lz4.frame reports a corrupt frame as a RuntimeError (LZ4F_decompress failed ...).
        except (OSError, EOFError, RuntimeError, zlib.error, lzma.LZMAError) as exc:
            raise _Corrupt(f"the compressed data is corrupt or truncated ({exc})") from exc

    def read(self, size: int) -> bytes:
        """Exactly ``size`` bytes, fewer only at the end of the data."""
        data = self._guard(self._source.read, size)
        if len(data) == size or not data:
            return data
        parts = [data]
        while (missing := size - sum(map(len, parts))) > 0:
            more = self._guard(self._source.read, missing)
            if not more:
                break
            parts.append(more)
        return b"".join(parts)

    def readline(self) -> bytes:
        return self._guard(self._source.readline, self._max)

    def exact(self, size: int, what: str) -> bytes:
        data = self.read(size)
        if len(data) < size:
            raise _Corrupt(f"the data ended inside {what} (truncated file?)")
        return data

    def skip(self, size: int, what: str) -> None:
        while size > 0:
            size -= len(self.exact(min(size, _CHUNK), what))


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
    """What a REDUCE, NEWOBJ, OBJ or INST would have created (never created here)."""

    func: object
    args: object
    state: object = _NO_STATE

    def instance_class(self) -> _Global | None:
        """The class the call instantiates, seen through copyreg's helpers."""
        if isinstance(self.func, _Global) and self.func.qualname in _INSTANCE_FACTORIES:
            args = self.args
            if isinstance(args, tuple) and args and isinstance(args[0], _Global):
                return args[0]
            return None
        return self.func if isinstance(self.func, _Global) else None


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
    extra_allowed: tuple[str, ...]
    globals: dict[tuple[str, str], None] = field(default_factory=dict)
    refused: dict[str, None] = field(default_factory=dict)
    versions: dict[str, None] = field(default_factory=dict)

    def refuse(self, message: str) -> None:
        self.refused[message] = None

    def record_global(self, module: str, name: str) -> _Global:
        self.globals[(module, name)] = None
        reason = global_refusal(module, name, self.extra_allowed)
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
            "LIST": lambda _: self.push_marked(list),
            "TUPLE": lambda _: self.push_marked(tuple),
            "TUPLE1": lambda _: self.op_tuple(1),
            "TUPLE2": lambda _: self.op_tuple(2),
            "TUPLE3": lambda _: self.op_tuple(3),
            "DICT": lambda _: self.push_marked(lambda items: _Dict(self.pairs(items))),
            "FROZENSET": lambda _: self.push_marked(list),
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
            "FRAME": lambda _: None,
            "PROTO": self.op_proto,
        }

    # -- the loop -------------------------------------------------------------------------

    def run(self) -> None:
        """Walk opcodes up to STOP."""
        while True:
            code = self.stream.read(1)
            if not code:
                raise _Corrupt("the data ended before the pickle's STOP opcode (truncated file?)")
            op = _OPCODES.get(code[0])
            if op is None:
                raise _Corrupt(f"byte {code!r} is not a pickle opcode")
            self.highest_opcode_proto = max(self.highest_opcode_proto, op.proto)
            arg = self.read_arg(op)
            if op.name == "STOP":
                self.top()
                return
            self.handlers[op.name](arg)

    def read_arg(self, op: pickletools.OpcodeInfo) -> object:
        if op.arg is None:
            return None
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

    @staticmethod
    def pairs(items: list[object]) -> list[tuple[object, object]]:
        if len(items) % 2:
            raise _Corrupt("a dictionary has a key without a value")
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
        items = tuple(self.stack[-size:])
        del self.stack[-size:]
        self.stack.append(items)

    def op_append(self, _: object) -> None:
        value = self.pop()
        self.extend(self.top(), [value])

    def op_appends(self, _: object) -> None:
        items = self.pop_mark()
        self.extend(self.top(), items)

    def extend(self, target: object, items: list[object]) -> None:
        self.refuse_mutation(target, "APPEND")
        if isinstance(target, list):
            target.extend(items)

    def op_setitem(self, _: object) -> None:
        value = self.pop()
        key = self.pop()
        self.update(self.top(), [(key, value)])

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
        self.push_marked(lambda items: _Call(cls, tuple(items)))

    def op_obj(self, _: object) -> None:
        items = self.pop_mark()
        if not items:
            raise _Corrupt("OBJ without a class")
        self.stack.append(_Call(items[0], tuple(items[1:])))

    def op_reduce(self, _: object) -> None:
        args = self.pop()
        func = self.pop()
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
        self.stack.append(_Call(cls, args))

    def op_newobj_ex(self, _: object) -> None:
        kwargs = self.pop()
        args = self.pop()
        cls = self.pop()
        self.stack.append(_Call(cls, (args, kwargs)))

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
        for candidate in state if isinstance(state, tuple) else (state,):
            if isinstance(candidate, _Dict):
                version = candidate.get("_sklearn_version")
                if isinstance(version, str):
                    self.findings.versions[version] = None
        if not isinstance(obj, _Call):
            return
        obj.state = state
        cls = obj.instance_class()
        if self.joblib_arrays and cls is not None and (cls.module, cls.name) == _WRAPPER:
            self.skip_joblib_array(state)
            self.stack[-1] = _Opaque("numpy array")

    def skip_joblib_array(self, state: object) -> None:
        """Consume the array data joblib wrote after the wrapper, as ``read_array`` does."""
        if not isinstance(state, _Dict):
            raise _Corrupt("a joblib array wrapper has no state dictionary")
        shape = state.get("shape")
        if not (isinstance(shape, tuple) and all(isinstance(n, int) and n >= 0 for n in shape)):
            raise _Corrupt(f"a joblib array wrapper has an unusable shape {shape!r}")
        itemsize, has_objects = _dtype_layout(state.get("dtype"))
        if has_objects:
            if self.depth >= _MAX_NESTING:
                raise _Corrupt("object arrays nested deeper than any real model")
            nested = _Walker(self.stream, self.findings, joblib_arrays=False, depth=self.depth + 1)
            nested.run()
            return
        if state.get("numpy_array_alignment_bytes") is not None:
            padding = self.stream.exact(1, "a joblib array's padding")[0]
            self.stream.skip(padding, "a joblib array's padding")
        self.stream.skip(math.prod(shape) * itemsize, "a joblib array's data")


def _dtype_layout(dtype: object) -> tuple[int, bool]:
    """Item size and whether it holds Python objects, from a pickled ``numpy.dtype`` call.

    numpy pickles a dtype as ``numpy.dtype(typestr, align, copy)`` followed by BUILD with
    ``(version, byteorder, subarray, names, fields, elsize, alignment, flags[, metadata])``.
    ``elsize`` is set for flexible and structured types (``U5`` is 20 bytes) and -1 otherwise,
    where the type string's digits give the size (``f8``, ``c16``, ``M8``); bit 0 of ``flags``
    (NPY_ITEM_REFCOUNT) marks dtypes that hold objects.
    """
    if not (
        isinstance(dtype, _Call)
        and isinstance(dtype.func, _Global)
        and dtype.func.qualname == "numpy.dtype"
        and isinstance(dtype.args, tuple)
        and dtype.args
        and isinstance(dtype.args[0], str)
    ):
        raise _Corrupt("a joblib array wrapper's dtype is not a numpy.dtype")
    typestr = dtype.args[0]
    state = dtype.state if isinstance(dtype.state, tuple) else ()
    elsize = state[5] if len(state) > 5 and isinstance(state[5], int) else -1
    flags = state[7] if len(state) > 7 and isinstance(state[7], int) else 0
    has_objects = bool(flags & 1) or typestr.startswith("O")
    if elsize > 0:
        return elsize, has_objects
    digits = re.fullmatch(r"[A-Za-z?]+(\d+)", typestr)
    if digits is None or int(digits.group(1)) == 0:
        raise _Corrupt(f"cannot tell the item size of numpy dtype {typestr!r}")
    return int(digits.group(1)), has_objects


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
    max_bytes: int = DEFAULT_MAX_BYTES,
    extra_allowed_modules: Iterable[str] = (),
) -> PickleReport:
    """Report what unpickling ``path`` (as ``joblib.load`` does) would import, running nothing.

    ``max_bytes`` caps the decompressed stream (default 2 GiB). ``extra_allowed_modules`` adds
    packages the model's own code ships (see :func:`global_refusal`). Raises
    :class:`PickleInspectionError` with the reason and byte offset for anything unreadable.
    """
    path = Path(path)
    if max_bytes <= 0:
        raise ValueError("max_bytes must be positive")
    findings = _Findings(extra_allowed=tuple(extra_allowed_modules))
    try:
        with path.open("rb") as raw:
            head = raw.read(8)
            if not head:
                raise PickleInspectionError("the file is empty")
            raw.seek(0)
            compression = _detect_compression(head)
            stream = _Stream(_decompressed(raw, compression), max_bytes)
            walker = _Walker(stream, findings, joblib_arrays=True, depth=0)
            try:
                walker.run()
            except (_Corrupt, ValueError, OverflowError) as exc:
                where = f"byte {stream.tell()} of the {compression or 'uncompressed'} stream"
                raise PickleInspectionError(
                    f"not a readable joblib/pickle file: {exc} (at {where})"
                ) from exc
    except PickleInspectionError as exc:
        raise PickleInspectionError(f"{path}: {exc}") from exc
    except OSError as exc:
        raise PickleInspectionError(f"cannot read {path}: {exc.strerror or exc}") from exc
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
