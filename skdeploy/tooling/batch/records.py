"""A dataset as SageMaker batch transform sees it: records split from files, packed into requests.

``SplitType: Line`` makes each line a record (CSV and JSON Lines); ``None`` makes each file one.
``BatchStrategy: MultiRecord`` packs consecutive records into one request body until the next
would pass ``MaxPayloadInMB``; ``SingleRecord`` sends each record alone. Records keep their file
and line number, so a failure is reported where the user can find it. Blank lines are not
records (SageMaker drops them too: an empty body is no request).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

CSV: Final = "text/csv"
JSONLINES: Final = "application/jsonlines"
#: The content type of an input file, by its suffix; ``--content-type`` overrides it.
CONTENT_TYPES: Final = {
    ".csv": CSV,
    ".jsonl": JSONLINES,
    ".jsonlines": JSONLINES,
    ".ndjson": JSONLINES,
}
#: SageMaker writes each input's results to ``<input name>.out``.
OUTPUT_SUFFIX: Final = ".out"


class BatchInputError(ValueError):
    """An input the batch cannot read: a missing path, a suffix with no known content type."""


@dataclass(frozen=True)
class Record:
    """One record: its bytes without the newline, and where it came from (line counts from 1)."""

    source: Path
    line: int
    data: bytes


@dataclass(frozen=True)
class MiniBatch:
    """Consecutive records sent as one request: their lines joined by newlines."""

    records: tuple[Record, ...]

    @property
    def body(self) -> bytes:
        return b"\n".join(r.data for r in self.records) + b"\n"


def input_files(path: Path) -> list[Path]:
    """A file, or the files of a folder (not hidden, sorted, not recursing), as SageMaker lists
    an S3 prefix."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise BatchInputError(f"--input {path} is neither a file nor a folder")
    files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise BatchInputError(f"--input {path} holds no files")
    return files


def content_type(path: Path, given: str | None) -> str:
    """``--content-type`` when given, else the one the file's suffix names."""
    if given:
        return given
    found = CONTENT_TYPES.get(path.suffix.lower())
    if found is None:
        known = ", ".join(CONTENT_TYPES)
        raise BatchInputError(
            f"{path}: no content type for {path.suffix!r} ({known}); pass --content-type"
        )
    return found


def read_records(path: Path, split_type: str) -> list[Record]:
    """The records of one file: one per non-blank line (``Line``), or the whole file (``None``)."""
    data = path.read_bytes()
    if split_type == "None":
        return [Record(path, 1, data.rstrip(b"\r\n"))] if data.strip() else []
    records = []
    for number, line in enumerate(data.split(b"\n"), start=1):
        line = line.rstrip(b"\r")
        if line.strip():
            records.append(Record(path, number, line))
    return records


def mini_batches(
    records: Iterable[Record], strategy: str, max_payload_bytes: int
) -> Iterator[MiniBatch]:
    """Requests as SageMaker packs them: one record each, or as many as fit in the payload.

    A record larger than the payload on its own still goes alone: the endpoint answers it (a
    413 when it is over the endpoint's limit), and it is reported as that record's failure.
    """
    pending: list[Record] = []
    size = 0
    for record in records:
        length = len(record.data) + 1
        if pending and (strategy == "SingleRecord" or size + length > max_payload_bytes):
            yield MiniBatch(tuple(pending))
            pending, size = [], 0
        pending.append(record)
        size += length
    if pending:
        yield MiniBatch(tuple(pending))
