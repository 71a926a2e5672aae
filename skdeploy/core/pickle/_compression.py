"""joblib's compressed files, recognised by joblib's own prefixes and read as a capped stream."""

from __future__ import annotations

import bz2
import importlib
import io
import lzma
import zlib
from typing import IO, TYPE_CHECKING, Protocol, cast

from skdeploy.core.pickle._errors import PickleInspectionError

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = ["CHUNK", "Readable", "decompressed", "detect_compression"]

CHUNK = 1 << 20  # bytes read at a time when skipping array data or decompressing


class Readable(Protocol):
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
                data = self._compressed.read(CHUNK)
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


def decompressed(raw: IO[bytes], compression: str | None) -> Readable:
    if compression is None:
        return raw
    if compression in ("zlib", "gzip"):
        wbits = 15 if compression == "zlib" else 31
        return io.BufferedReader(_InflateReader(raw, wbits), buffer_size=CHUNK)
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
    return cast(Readable, frame.LZ4FrameFile(raw))


def detect_compression(head: bytes) -> str | None:
    for prefix, refusal in _NOT_PICKLE_PREFIXES:
        if head.startswith(prefix):
            raise PickleInspectionError(f"this is {refusal}")
    for name, prefix in _COMPRESSORS:
        if head.startswith(prefix):
            return name
    return None
