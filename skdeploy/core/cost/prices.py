"""The price table: figures kept as data in the repo (``prices.json``), each with region, source
and date, so that a plan's cost works offline and says where every number comes from.

A price the table could not source has the value ``None``: the cost model shows that line as
unpriced rather than guessing. A region the table has no figure for falls back to the table's
base region (us-east-1) or, lacking that, another region's figure, and the cost line says so.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

#: The table shipped with skdeploy.
PRICES_FILE: Final = Path(__file__).resolve().parent / "prices.json"
#: The region whose figures stand in for a region the table lacks.
BASE_REGION: Final = "us-east-1"


class PriceTableError(ValueError):
    """A price table that cannot be read or is not in the expected shape."""


@dataclass(frozen=True)
class Price:
    """One figure: ``value`` US dollars per ``unit`` in ``region`` (None: not sourced)."""

    key: str
    region: str
    unit: str
    value: float | None
    source: str
    date: datetime.date


@dataclass(frozen=True)
class PriceLookup:
    """The price used for a region, and whether it is another region's figure standing in."""

    price: Price
    fallback: bool


@dataclass(frozen=True)
class PriceTable:
    """Every price, by (key, region), and the hours a month is billed for."""

    prices: Mapping[tuple[str, str], Price]
    hours_per_month: float
    currency: str = "USD"

    def lookup(self, key: str, region: str) -> PriceLookup | None:
        """The price of ``key`` in ``region``, else another region's (marked as standing in: the
        base region's first), else None."""
        if (key, region) in self.prices:
            return PriceLookup(self.prices[(key, region)], fallback=False)
        others = sorted(r for k, r in self.prices if k == key)
        if not others:
            return None
        chosen = BASE_REGION if BASE_REGION in others else others[0]
        return PriceLookup(self.prices[(key, chosen)], fallback=True)

    @property
    def oldest(self) -> datetime.date:
        """The date of the oldest figure: the table is as old as that."""
        return min(p.date for p in self.prices.values())

    def age_days(self, today: datetime.date) -> int:
        """How many days old the oldest figure is on ``today``."""
        return (today - self.oldest).days

    def unsourced(self) -> list[Price]:
        """Prices the table could not source (value None), by key."""
        return sorted((p for p in self.prices.values() if p.value is None), key=lambda p: p.key)


def _price(item: Any, where: str) -> Price:
    if not isinstance(item, dict):
        raise PriceTableError(f"{where} is not an object")
    for name in ("key", "region", "unit", "source", "date"):
        if not isinstance(item.get(name), str) or not item[name]:
            raise PriceTableError(f"{where}.{name} must be a non-empty string")
    value = item.get("value")
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise PriceTableError(f"{where}.value must be a number or null")
    if value is not None and value < 0:
        raise PriceTableError(f"{where}.value must not be negative")
    try:
        date = datetime.date.fromisoformat(item["date"])
    except ValueError:
        raise PriceTableError(f"{where}.date must be a date (YYYY-MM-DD)") from None
    return Price(
        item["key"],
        item["region"],
        item["unit"],
        None if value is None else float(value),
        item["source"],
        date,
    )


def price_table_from_json(data: Any) -> PriceTable:
    """Read a price table document (raises PriceTableError)."""
    if not isinstance(data, dict) or not isinstance(data.get("prices"), list):
        raise PriceTableError('a price table is an object with a "prices" list')
    hours = data.get("hours_per_month")
    if isinstance(hours, bool) or not isinstance(hours, int | float) or hours <= 0:
        raise PriceTableError('"hours_per_month" must be a positive number')
    prices: dict[tuple[str, str], Price] = {}
    for index, item in enumerate(data["prices"]):
        price = _price(item, f"prices[{index}]")
        if (price.key, price.region) in prices:
            raise PriceTableError(f"prices[{index}]: {price.key} in {price.region} appears twice")
        prices[(price.key, price.region)] = price
    if not prices:
        raise PriceTableError("the price table has no prices")
    return PriceTable(prices, float(hours), str(data.get("currency", "USD")))


def load_prices(path: Path = PRICES_FILE) -> PriceTable:
    """The price table at ``path`` (default: the one shipped with skdeploy)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PriceTableError(f"cannot read the price table {path}: {exc}") from None
    return price_table_from_json(data)
