"""The local batch: split and pack like SageMaker, score through a local endpoint, assemble.

Each input file's records are packed into mini-batches (:mod:`.records`) and sent to the
endpoint's ``/invocations`` with ``maxConcurrentTransforms`` requests in flight; the answers are
assembled with ``AssembleWith: Line`` in input order into ``<output>/<input name>.out``, one line
per record.

What happens to a bad record (SageMaker would fail the whole job): a mini-batch the endpoint
refuses, or whose answer does not hold one line per record, is sent again record by record, so
only the records that fail on their own are lost. Each is reported with its file, line number
and the endpoint's answer, and its line is left out of the ``.out`` file (so the summary's
written count is the records minus the failures); every other record's answer is written, in
order.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from skdeploy.core.settings import BatchSettings
from skdeploy.tooling.batch.http import Answer
from skdeploy.tooling.batch.records import (
    OUTPUT_SUFFIX,
    MiniBatch,
    Record,
    content_type,
    mini_batches,
    read_records,
)

#: ``(body, content_type, accept) -> Answer``: the endpoint, or a stand-in in tests.
Invoke = Callable[[bytes, str, str], Answer]
#: How often a progress line is printed, at most (seconds).
PROGRESS_EVERY_SECONDS = 1.0


@dataclass(frozen=True)
class RecordFailure:
    """A record the endpoint refused on its own: where it is, and what the endpoint said."""

    source: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.message}"


@dataclass
class BatchSummary:
    """What a batch did: records read, answers written, failures, files and seconds taken."""

    records: int = 0
    written: int = 0
    failures: list[RecordFailure] = field(default_factory=list)
    outputs: list[Path] = field(default_factory=list)
    seconds: float = 0.0
    #: Mini-batches the endpoint refused whole, sent again record by record (slow: see why).
    retried: int = 0

    def text(self) -> str:
        rate = self.records / self.seconds if self.seconds > 0 else 0.0
        retried = f", {self.retried} mini-batch(es) retried record by record" * bool(self.retried)
        return (
            f"{self.records:,} records in {len(self.outputs)} file(s), {self.written:,} written, "
            f"{len(self.failures)} failed{retried}, {self.seconds:.1f} s ({rate:,.0f} records/s)"
        )


def _shorten(body: bytes, limit: int = 200) -> str:
    text = body.decode("utf-8", "replace").strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _answer_lines(answer: Answer, count: int) -> list[bytes] | str:
    """One line per record, or why the answer is not that."""
    if answer.status != 200:
        return f"HTTP {answer.status}: {_shorten(answer.body)}"
    lines = answer.body.rstrip(b"\n").split(b"\n") if answer.body.strip() else []
    if len(lines) != count:
        return f"answered {len(lines)} line(s) for {count} record(s)"
    return lines


@dataclass(frozen=True)
class Scored:
    """A mini-batch's outcome: each record's answer line or failure, in order, and why the
    mini-batch itself failed when it was retried record by record (None when it was not)."""

    results: list[bytes | RecordFailure]
    retried: str | None = None


def score(batch: MiniBatch, invoke: Invoke, kind: str) -> Scored:
    """Each record's answer line or failure; a failed mini-batch is retried record by record."""
    outcome = _answer_lines(invoke(batch.body, kind, kind), len(batch.records))
    if not isinstance(outcome, str):
        return Scored(list(outcome))
    if len(batch.records) == 1:
        record = batch.records[0]
        return Scored([RecordFailure(record.source, record.line, outcome)])
    results: list[bytes | RecordFailure] = []
    for record in batch.records:
        results.extend(score(MiniBatch((record,)), invoke, kind).results)
    return Scored(results, retried=outcome)


class _Progress:
    """A progress line at most every second: records done of the file's total."""

    def __init__(self, name: str, total: int) -> None:
        self.name, self.total, self.done = name, total, 0
        self.last = time.monotonic()

    def advance(self, count: int, report: Callable[[str], None]) -> None:
        self.done += count
        now = time.monotonic()
        if now - self.last >= PROGRESS_EVERY_SECONDS or self.done == self.total:
            self.last = now
            percent = 100 * self.done // max(self.total, 1)
            report(f"batch {self.name}: {self.done:,}/{self.total:,} records ({percent}%)")


def run_file(
    path: Path,
    output_dir: Path,
    settings: BatchSettings,
    invoke: Invoke,
    summary: BatchSummary,
    *,
    given_type: str | None,
    concurrency: int,
    report: Callable[[str], None],
) -> None:
    """Score one input file into ``<output_dir>/<name>.out``, counting into ``summary``."""
    kind = content_type(path, given_type)
    records: Sequence[Record] = read_records(path, settings.split_type)
    batches = mini_batches(records, settings.strategy, settings.max_payload_bytes)
    out = output_dir / (path.name + OUTPUT_SUFFIX)
    progress = _Progress(path.name, len(records))
    summary.records += len(records)
    with ThreadPoolExecutor(max_workers=concurrency) as pool, out.open("wb") as sink:
        for scored in pool.map(lambda b: score(b, invoke, kind), batches):
            if scored.retried is not None:
                summary.retried += 1
                report(
                    f"batch {path.name}: a mini-batch failed ({scored.retried}); retried "
                    "record by record"
                )
            for result in scored.results:
                if isinstance(result, RecordFailure):
                    summary.failures.append(result)
                    report(f"batch: record failed: {result}")
                else:
                    sink.write(result + b"\n")
                    summary.written += 1
            progress.advance(len(scored.results), report)
    summary.outputs.append(out)


def run_local_batch(
    inputs: Sequence[Path],
    output_dir: Path,
    settings: BatchSettings,
    invoke: Invoke,
    *,
    given_type: str | None = None,
    concurrency: int = 1,
    report: Callable[[str], None] = lambda line: None,
) -> BatchSummary:
    """Score every input file, one after the other, each with ``concurrency`` requests in flight."""
    output_dir.mkdir(parents=True, exist_ok=True)
    summary = BatchSummary()
    started = time.perf_counter()
    for path in inputs:
        run_file(
            path,
            output_dir,
            settings,
            invoke,
            summary,
            given_type=given_type,
            concurrency=concurrency,
            report=report,
        )
    summary.seconds = time.perf_counter() - started
    return summary
