"""The decompressed pickle bytes as the walk reads them: forward only, counted, capped, framed."""

from __future__ import annotations

import lzma
import zlib

from skdeploy.core.pickle._compression import CHUNK, Readable
from skdeploy.core.pickle._errors import Corrupt, Unsafe
from skdeploy.core.pickle._limits import InspectionLimits, PickleLimitExceeded, limit_message

__all__ = ["Stream"]

_MAX_LINE = 1 << 20  # longest argument line of a text opcode (protocol 0)


class Stream:
    """The decompressed pickle bytes, read forward only, counted and capped.

    Reads are served from a buffer of up to ``CHUNK`` bytes, so the opcode loop costs a slice,
    not a call into the decompressor. ``frame_end`` is the stream offset where the current pickle
    FRAME ends (0 outside frames); :meth:`_check_frame` refuses a read that starts inside a frame
    and ends past it, as Python's unpickler does ("pickle exhausted before end of frame").
    """

    def __init__(self, source: Readable, limits: InspectionLimits) -> None:
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
            raise Corrupt(f"the compressed data is corrupt or truncated ({exc})") from exc
        self._pulled += len(data)
        if self._pulled > self._max:
            raise PickleLimitExceeded(
                limit_message(self.limits, "max_stream_mb", "the decompressed pickle stream")
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
            more = self._pull(max(CHUNK, wanted - have))
            if not more:
                break
            parts.append(more)
            have += len(more)
        self._buffer = b"".join(parts)

    def _check_frame(self, size: int, what: str) -> None:
        start = self.tell()
        if start < self.frame_end < start + size:
            raise Corrupt(f"{what} runs past the end of its pickle frame")

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
                raise Unsafe(
                    f"a text opcode's argument is longer than {_MAX_LINE} bytes; no model "
                    "pickled with protocol 2 or later has one (re-save it with joblib.dump)"
                )
            available = len(self._buffer) - self._offset
            self._refill(available + CHUNK)
            if len(self._buffer) - self._offset == available:
                return self.read(available)  # no newline before the end of the data
        return self.read(end + 1 - self._offset)

    def exact(self, size: int, what: str) -> bytes:
        data = self.read(size)
        if len(data) < size:
            raise Corrupt(f"the data ended inside {what} (truncated file?)")
        return data

    def skip_raw(self, size: int, what: str) -> None:
        """Skip ``size`` bytes that joblib reads straight from the file, outside any frame."""
        while size > 0:
            if self._offset >= len(self._buffer):
                self._refill(min(size, CHUNK))
                if not self._buffer:
                    raise Corrupt(f"the data ended inside {what} (truncated file?)")
            step = min(size, len(self._buffer) - self._offset)
            self._offset += step
            size -= step

    def skip(self, size: int, what: str) -> None:
        """Skip an opcode's long argument, which must lie inside the current frame if any."""
        self._check_frame(size, what)
        self.skip_raw(size, what)


# --------------------------------------------------------------------------------------------
# The walk: a pickle machine whose values are inert placeholders.
