"""The pickle machine: stack, memo and MARKs, the opcode loop and the limits on its work.

What each opcode does to the placeholders is :mod:`skdeploy.core.pickle._walker`'s; this module
only reads opcodes and their arguments and keeps the unpickler's bookkeeping.
"""

from __future__ import annotations

import pickletools  # nosec B403 - only reads opcodes; never unpickles
from collections.abc import Callable
from typing import IO, cast

from skdeploy.core.pickle._errors import Corrupt, Unsafe
from skdeploy.core.pickle._findings import Findings
from skdeploy.core.pickle._limits import PickleLimitExceeded, limit_message
from skdeploy.core.pickle._stream import Stream
from skdeploy.core.pickle._values import Opaque

__all__ = ["Machine"]

_INLINE_LIMIT = 1 << 12  # longer bytes/text/int payloads are skipped, not kept in memory
_CHECK_EVERY = 1 << 16  # opcodes between two counts of the values the walk holds
_BYTES_PER_VALUE = 64  # a kept payload counts as one value per this many bytes
_OPCODES = {ord(op.code): op for op in pickletools.opcodes}

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


class Machine:
    """The unpickler's bookkeeping over one pickle stream; subclasses say what opcodes do.

    ``handlers`` maps each opcode's name (except STOP) to a function of its argument.
    """

    handlers: dict[str, Callable[[object], object]]

    def __init__(self, stream: Stream, findings: Findings, *, depth: int) -> None:
        self.stream = stream
        self.findings = findings
        self.depth = depth
        self.proto = 0
        self.highest_opcode_proto = 0
        self.stack: list[object] = []
        self.metastack: list[list[object]] = []
        self.memo: dict[int, object] = {}
        self.limits = findings.limits

    # -- the loop -------------------------------------------------------------------------

    def run(self) -> None:
        """Walk opcodes up to STOP, within the limits."""
        findings, stream, limits = self.findings, self.stream, self.limits
        while True:
            code = stream.opcode()
            if code < 0:
                raise Corrupt("the data ended before the pickle's STOP opcode (truncated file?)")
            op = _OPCODES.get(code)
            if op is None:
                raise Corrupt(f"byte {bytes([code])!r} is not a pickle opcode")
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
                    raise Unsafe("a nested pickle stops before the end of its frame")
                return
            self.handlers[op.name](arg)
            if len(self.metastack) + self.depth > limits.max_nesting:
                raise PickleLimitExceeded(
                    limit_message(limits, "max_nesting", "the pickle nests MARKs too deep")
                )

    def check_work(self) -> None:
        """Refuse once the opcodes walked or the values held pass their limits."""
        findings, limits = self.findings, self.limits
        if findings.opcodes > limits.max_opcodes:
            raise PickleLimitExceeded(
                limit_message(limits, "max_opcodes", "the pickle has too many opcodes")
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
                limit_message(limits, "max_values", "the pickle holds too many values at once")
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
                raise Corrupt(f"{op.name} has a negative length")
            if length > _INLINE_LIMIT:
                self.stream.skip(length, op.name)
                return Opaque(f"{op.name} of {length} bytes")
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
            raise Corrupt(f"the data ended inside {what} (truncated file?)")
        return data[:-1].decode("utf-8")

    # -- stack helpers ----------------------------------------------------------------------

    def top(self) -> object:
        if not self.stack:
            raise Corrupt("an opcode needs a value but the unpickler's stack is empty")
        return self.stack[-1]

    def pop(self) -> object:
        value = self.top()
        del self.stack[-1]
        return value

    def pop_mark(self) -> list[object]:
        if not self.metastack:
            raise Corrupt("an opcode needs a MARK but there is none")
        items = self.stack
        self.stack = self.metastack.pop()
        return items

    def push_marked(self, make: Callable[[list[object]], object]) -> None:
        """Pop up to the MARK, then push what ``make`` builds (on the outer stack)."""
        items = self.pop_mark()
        self.stack.append(make(items))
