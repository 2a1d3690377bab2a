"""Order requests: Schwab order JSON parsed and checked for shape, as Schwab does on POST.

A request that fails here is answered 400 with a message and creates nothing. Business rules
(buying power, holdings, short selling) come later, on an accepted order: see
:meth:`streamdesk_sim.broker.Broker.place`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from streamdesk.models import parse_occ

EQUITY_INSTRUCTIONS = {"BUY", "SELL", "SELL_SHORT", "BUY_TO_COVER"}
OPTION_INSTRUCTIONS = {"BUY_TO_OPEN", "SELL_TO_CLOSE", "SELL_TO_OPEN", "BUY_TO_CLOSE"}


class OrderError(ValueError):
    """A malformed order request (HTTP 400 with a message)."""


@dataclass(frozen=True, slots=True)
class OrderLeg:
    """The single leg of a valid order request, normalized."""

    symbol: str  # equities upper-cased; an OCC option symbol as sent
    asset_type: str  # EQUITY | OPTION
    instruction: str
    quantity: float  # a positive whole number
    price: float | None  # the limit of a LIMIT order
    order_type: str  # MARKET | LIMIT


def validate_order(spec: Any) -> OrderLeg:
    """Check an order request's shape; return its normalized single leg (or ``OrderError``)."""
    if not isinstance(spec, dict):
        raise OrderError("order must be a JSON object")
    strategy = spec.get("orderStrategyType", "SINGLE")
    if strategy != "SINGLE":
        raise OrderError(f"orderStrategyType {strategy!r} is not supported by market-sim")
    order_type = spec.get("orderType")
    if order_type not in ("MARKET", "LIMIT"):
        raise OrderError(f"orderType {order_type!r} is not supported (MARKET, LIMIT)")
    legs = spec.get("orderLegCollection")
    if not isinstance(legs, list) or len(legs) != 1 or not isinstance(legs[0], dict):
        raise OrderError("orderLegCollection must hold exactly one leg")
    leg = legs[0]
    symbol, asset_type, instruction = _instrument(leg)
    try:
        quantity = float(leg.get("quantity", ""))
    except (TypeError, ValueError):
        raise OrderError("leg quantity must be a number") from None
    # finite first: int() of inf/NaN raises, and NaN compares false to everything
    if not math.isfinite(quantity) or quantity <= 0 or quantity != int(quantity):
        raise OrderError("leg quantity must be a positive whole number")
    price = None
    if order_type == "LIMIT":
        try:
            price = float(spec.get("price", ""))
        except (TypeError, ValueError):
            raise OrderError("a LIMIT order needs a numeric price") from None
        if not math.isfinite(price) or price <= 0:
            raise OrderError("price must be a positive number")
    return OrderLeg(symbol, asset_type, instruction, quantity, price, order_type)


def _instrument(leg: dict[str, Any]) -> tuple[str, str, str]:
    """(symbol, asset type, instruction) of a leg, checked against each other."""
    instrument = leg.get("instrument")
    if not isinstance(instrument, dict):
        raise OrderError("leg instrument must be an object")
    symbol = instrument.get("symbol")
    asset_type = instrument.get("assetType")
    instruction = leg.get("instruction")
    if not isinstance(symbol, str) or not symbol:
        raise OrderError("instrument.symbol is required")
    if asset_type == "EQUITY":
        if instruction not in EQUITY_INSTRUCTIONS:
            raise OrderError(f"instruction {instruction!r} is invalid for an equity")
        symbol = symbol.upper()
    elif asset_type == "OPTION":
        if instruction not in OPTION_INSTRUCTIONS:
            raise OrderError(f"instruction {instruction!r} is invalid for an option")
        try:
            parse_occ(symbol)
        except ValueError as exc:
            raise OrderError(str(exc)) from None
    else:
        raise OrderError(f"assetType {asset_type!r} is not supported (EQUITY, OPTION)")
    return symbol, asset_type, instruction
