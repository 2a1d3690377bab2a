"""Stop orders against a quote: what a stop watches, when it triggers, how a trail moves.

A stop watches the price its ``stopType`` names (``STANDARD`` and ``LAST``: the last trade;
``BID``; ``ASK``; ``MARK``: the mid) and triggers when that price reaches ``stopPrice`` (a buy
at or above, a sell at or below). A ``TRAILING_STOP``'s ``stopPrice`` is its
``stopPriceLinkBasis`` price minus (sell) or plus (buy) ``stopPriceOffset`` dollars
(``VALUE``) or percent (``PERCENT``), recomputed on every tick and only ever tightened: a sell
stop only moves up, a buy stop only down.
"""

from __future__ import annotations

from typing import Any

from streamdesk_sim.orders import BUYS
from streamdesk_sim.pricing import cents

#: (bid, ask, last) of an instrument.
Prices = tuple[float, float, float]


def watched_price(kind: str, prices: Prices) -> float:
    """The price a ``stopType`` / ``stopPriceLinkBasis`` of ``kind`` follows."""
    bid, ask, last = prices
    if kind == "BID":
        return bid
    if kind == "ASK":
        return ask
    if kind == "MARK":
        return cents((bid + ask) / 2) if bid > 0 and ask > 0 else last
    return last  # STANDARD, LAST


def is_buy(order: dict[str, Any]) -> bool:
    """Whether ``order`` buys."""
    return bool(order["orderLegCollection"][0]["instruction"] in BUYS)


def trail_stop(order: dict[str, Any], prices: Prices) -> float | None:
    """Where a trailing stop would sit at ``prices`` (None: no usable price)."""
    basis = watched_price(order.get("stopPriceLinkBasis", "LAST"), prices)
    if basis <= 0:
        return None
    offset = float(order["stopPriceOffset"])
    if order["stopPriceLinkType"] == "PERCENT":
        offset = basis * offset / 100
    stop = basis + offset if is_buy(order) else basis - offset
    return max(cents(stop), 0.01)


def follow(order: dict[str, Any], prices: Prices) -> bool:
    """Tighten a trailing stop's ``stopPrice`` (first call: set it); True if it moved."""
    stop = trail_stop(order, prices)
    if stop is None:
        return False
    old = order.get("stopPrice")
    if old is not None and (stop >= old if is_buy(order) else stop <= old):
        return False
    order["stopPrice"] = stop
    return True


def triggered(order: dict[str, Any], prices: Prices) -> bool:
    """Whether a stop order's watched price has reached its ``stopPrice``."""
    stop = order.get("stopPrice")
    if stop is None:
        return False
    price = watched_price(order.get("stopType", "STANDARD"), prices)
    if price <= 0:
        return False
    return price >= float(stop) if is_buy(order) else price <= float(stop)


def wrong_side(order: dict[str, Any], prices: Prices) -> str | None:
    """Why a new ``STOP`` / ``STOP_LIMIT`` would trigger at once (None: it would not).

    Schwab refuses a stop on the wrong side of the market; a trailing stop cannot be (its
    stop is derived from the market).
    """
    if order["orderType"] not in ("STOP", "STOP_LIMIT") or not triggered(order, prices):
        return None
    price = watched_price(order.get("stopType", "STANDARD"), prices)
    side, where = ("buy", "above") if is_buy(order) else ("sell", "below")
    return (
        f"Stop price {float(order['stopPrice']):.2f} of a {side} stop must be {where} the "
        f"market ({order.get('stopType', 'STANDARD')} {price:.2f})"
    )
