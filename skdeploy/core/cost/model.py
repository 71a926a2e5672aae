"""The cost model: what a stack declares → its monthly cost, line by line, from the price table.

Pure: it receives the figures that drive the bill (:class:`CostInputs`, read from a plan or a
stack's settings by the caller) and a :class:`~skdeploy.core.cost.prices.PriceTable`, and returns
:class:`CostLine` s. A line's cost is a range, low to high: an autoscaled variant costs its
minimum instance count at least and its maximum at most. Usage-billed parts (serverless, the
front door, captured data) depend on traffic, which no stack file states, so they are computed
from a :class:`Traffic` assumption that every rendering prints and the user can change.

A line whose price the table could not source, or whose quantity is unknown, is *unpriced*
(``low`` and ``high`` None): it is listed, never counted as zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from skdeploy.core.cost.prices import PriceTable

Component = Literal["instances", "serverless", "data_capture", "front_door", "s3"]
#: Components in the order lines are listed.
COMPONENTS: Final[tuple[Component, ...]] = (
    "instances",
    "serverless",
    "data_capture",
    "front_door",
    "s3",
)
_MB_PER_GB: Final = 1024
_KB_PER_GB: Final = 1024 * 1024


@dataclass(frozen=True)
class Traffic:
    """The traffic assumption for usage-billed parts: requests a month, their mean duration, and
    the mean size of a request plus its response (for captured data)."""

    requests_per_month: int = 100_000
    duration_ms: float = 100.0
    payload_kb: float = 10.0

    def describe(self) -> str:
        """The assumption in words, as every cost rendering states it."""
        return (
            f"{self.requests_per_month:,} requests/month, {self.duration_ms:g} ms each, "
            f"{self.payload_kb:g} KB in+out"
        )


@dataclass(frozen=True)
class InstanceVariant:
    """A variant on instances: ``low``..``high`` instances (equal unless autoscaled)."""

    name: str
    instance_type: str
    low: int
    high: int


@dataclass(frozen=True)
class ServerlessVariant:
    """A serverless variant; billed per GB-second of memory while a request runs."""

    name: str
    memory_mb: int
    max_concurrency: int


@dataclass(frozen=True)
class CostInputs:
    """The figures of one stack that drive its bill."""

    region: str
    instances: tuple[InstanceVariant, ...] = ()
    serverless: tuple[ServerlessVariant, ...] = ()
    #: Percent of requests captured to S3 (None: no data capture).
    capture_percent: float | None = None
    #: Memory of the front door's Lambda function (None: no front door).
    front_door_memory_mb: int | None = None
    #: How many model artifacts the stack stores in S3 (their size is not known to a plan).
    artifacts: int = 0


@dataclass(frozen=True)
class CostLine:
    """One part of the bill: what it is, how it is computed, and its monthly cost range."""

    component: Component
    label: str
    detail: str
    low: float | None
    high: float | None

    @property
    def priced(self) -> bool:
        """False when the table has no figure (or the quantity is unknown)."""
        return self.low is not None and self.high is not None


@dataclass(frozen=True)
class StackCost:
    """A stack's monthly cost: its lines, the traffic assumed, and the totals of priced lines."""

    region: str
    traffic: Traffic
    lines: tuple[CostLine, ...]

    @property
    def low(self) -> float:
        """The total of priced lines at their low end."""
        return sum(line.low for line in self.lines if line.low is not None)

    @property
    def high(self) -> float:
        """The total of priced lines at their high end."""
        return sum(line.high for line in self.lines if line.high is not None)

    @property
    def complete(self) -> bool:
        """True when every line is priced (else the totals leave some parts out)."""
        return all(line.priced for line in self.lines)

    def of(self, component: Component) -> tuple[CostLine, ...]:
        """The lines of one component."""
        return tuple(line for line in self.lines if line.component == component)


class _Pricer:
    """Looks prices up for one region and words each line's source."""

    def __init__(self, table: PriceTable, region: str) -> None:
        self.table, self.region = table, region

    def rate(self, key: str) -> tuple[float | None, str]:
        """The figure for ``key`` (None if unsourced) and a note on where it stands in from."""
        found = self.table.lookup(key, self.region)
        if found is None:
            return None, f"no price for {key} in the table"
        note = f"{found.price.region} price, no {self.region} figure" if found.fallback else ""
        if found.price.value is None:
            return None, f"unpriced: the table has no sourced figure for {key}"
        return found.price.value, note


def _line(
    component: Component,
    label: str,
    detail: str,
    rate: float | None,
    note: str,
    low_qty: float,
    high_qty: float,
) -> CostLine:
    shown = f"{detail}; {note}" if note else detail
    if rate is None:
        return CostLine(component, label, shown, None, None)
    return CostLine(component, label, shown, rate * low_qty, rate * high_qty)


def _instance_lines(inputs: CostInputs, pricer: _Pricer, hours: float) -> list[CostLine]:
    lines = []
    for variant in inputs.instances:
        rate, note = pricer.rate(f"sagemaker.instance.{variant.instance_type}")
        counted = (
            f"{variant.low}" if variant.low == variant.high else f"{variant.low}-{variant.high}"
        )
        detail = f"{counted} x {variant.instance_type} x {hours:g} h"
        low, high = variant.low * hours, variant.high * hours
        lines.append(_line("instances", f"variant {variant.name}", detail, rate, note, low, high))
    return lines


def _serverless_lines(inputs: CostInputs, pricer: _Pricer, traffic: Traffic) -> list[CostLine]:
    lines = []
    seconds = traffic.requests_per_month * traffic.duration_ms / 1000
    for variant in inputs.serverless:
        rate, note = pricer.rate("sagemaker.serverless.gb_second")
        gb_seconds = seconds * variant.memory_mb / _MB_PER_GB
        detail = (
            f"{variant.memory_mb} MB x {seconds:g} s of requests = {gb_seconds:g} GB-s "
            f"(max concurrency {variant.max_concurrency} caps, does not bill)"
        )
        label = f"variant {variant.name} (serverless)"
        lines.append(_line("serverless", label, detail, rate, note, gb_seconds, gb_seconds))
    return lines


def _front_door_lines(inputs: CostInputs, pricer: _Pricer, traffic: Traffic) -> list[CostLine]:
    if inputs.front_door_memory_mb is None:
        return []
    requests = traffic.requests_per_month
    gb_seconds = requests * traffic.duration_ms / 1000 * inputs.front_door_memory_mb / _MB_PER_GB
    lambda_rate, lambda_note = pricer.rate("lambda.gb_second")
    request_rate, request_note = pricer.rate("lambda.request")
    api_rate, api_note = pricer.rate("apigateway.http.request")
    return [
        _line(
            "front_door",
            "Lambda duration",
            f"{inputs.front_door_memory_mb} MB, {gb_seconds:g} GB-s",
            lambda_rate,
            lambda_note,
            gb_seconds,
            gb_seconds,
        ),
        _line(
            "front_door",
            "Lambda requests",
            f"{requests:,} requests",
            request_rate,
            request_note,
            requests,
            requests,
        ),
        _line(
            "front_door",
            "HTTP API requests",
            f"{requests:,} requests",
            api_rate,
            api_note,
            requests,
            requests,
        ),
    ]


def _storage_lines(inputs: CostInputs, pricer: _Pricer, traffic: Traffic) -> list[CostLine]:
    rate, note = pricer.rate("s3.standard.gb_month")
    lines = []
    if inputs.capture_percent is not None:
        captured = traffic.requests_per_month * inputs.capture_percent / 100
        gb = captured * traffic.payload_kb / _KB_PER_GB
        detail = f"{inputs.capture_percent:g}% of requests, {gb:g} GB added a month"
        lines.append(_line("data_capture", "captured data (S3)", detail, rate, note, gb, gb))
    if inputs.artifacts:
        # The artifacts' size is not in the plan: listed, never counted as zero.
        why = f"{inputs.artifacts} object(s), size not known to the plan" + (
            f"; {note}" if note else ""
        )
        lines.append(CostLine("s3", "model artifacts (S3)", why, None, None))
    return lines


def monthly_cost(
    inputs: CostInputs, table: PriceTable, traffic: Traffic | None = None
) -> StackCost:
    """The monthly cost of a stack with ``inputs``, line by line, at ``table``'s prices."""
    traffic = Traffic() if traffic is None else traffic
    pricer = _Pricer(table, inputs.region)
    lines = [
        *_instance_lines(inputs, pricer, table.hours_per_month),
        *_serverless_lines(inputs, pricer, traffic),
        *_front_door_lines(inputs, pricer, traffic),
        *_storage_lines(inputs, pricer, traffic),
    ]
    lines.sort(key=lambda line: COMPONENTS.index(line.component))
    return StackCost(inputs.region, traffic, tuple(lines))
