"""What a stack costs a month, from a price table kept as data in the repo (issue 17, part 2).

:mod:`~.prices` reads the table (``prices.json``: every figure with its region, source and
date; a figure that could not be sourced is null and shown as unpriced), :mod:`~.model` turns a
stack's figures and a traffic assumption into monthly cost lines. Pure: nothing is fetched, so
``skdeploy plan`` prices a stack offline.
"""

from skdeploy.core.cost.model import (
    COMPONENTS,
    Component,
    CostInputs,
    CostLine,
    InstanceVariant,
    ServerlessVariant,
    StackCost,
    Traffic,
    monthly_cost,
)
from skdeploy.core.cost.prices import (
    BASE_REGION,
    PRICES_FILE,
    Price,
    PriceLookup,
    PriceTable,
    PriceTableError,
    load_prices,
    price_table_from_json,
)

__all__ = [
    "BASE_REGION",
    "COMPONENTS",
    "PRICES_FILE",
    "Component",
    "CostInputs",
    "CostLine",
    "InstanceVariant",
    "Price",
    "PriceLookup",
    "PriceTable",
    "PriceTableError",
    "ServerlessVariant",
    "StackCost",
    "Traffic",
    "load_prices",
    "monthly_cost",
    "price_table_from_json",
]
