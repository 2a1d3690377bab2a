"""The fill model shared by market-sim's paper broker and the backtester.

:func:`touch_fill` is the one price rule (market-sim's ``matching.fill_price`` calls it with
the fields of a Schwab order): a market order fills at the touch (a buy at the ask, a sell at
the bid); a limit order fills at the touch once the market crosses its limit, so never worse
than the limit; a stop waits for its trigger, then ``STOP``/``TRAILING_STOP`` fill as market
orders and ``STOP_LIMIT`` works as a limit order. Nothing fills at a touch <= 0.

The backtester adds what a replay needs on top of that rule (:class:`FillModel`):

* **bars** (no quotes): the order is matched against the bar's path ``open -> ... -> close``
  with ``bid = ask = open`` first (:func:`touch_fill`); a limit that the open does not cross
  but the bar's range reaches (a buy limit >= low, a sell limit <= high) fills *at the limit*:
  the price path is continuous, so the first touch that crosses is the limit itself.
* **per-second rows**: ``bid``/``ask`` of the row (its ``price`` on a side that is missing).
* **latency**: an order becomes eligible ``latency_ms`` after it was submitted, and is matched
  against the first bar (row) that *starts* at or after that time. With the default 0 an
  order placed when a bar closes fills in the next bar, at its open.
* **slippage**: ``slippage_bps`` moves a market (or triggered stop) fill against the order:
  a buy pays ``price * (1 + bps/1e4)``, a sell gets ``price * (1 - bps/1e4)``. A limit fill is
  then capped at its limit (never worse than the limit).
* **commission**: ``commission_per_share * qty + commission_bps/1e4 * notional``, at least
  ``commission_min`` per fill (all 0 by default: Schwab charges no equity commission).
"""

from __future__ import annotations

from dataclasses import dataclass

#: Order types that wait for a stop trigger before they can fill.
STOP_ORDER_TYPES = frozenset({"STOP", "STOP_LIMIT", "TRAILING_STOP"})
#: Order types that fill at the touch once allowed to (no limit price).
MARKET_LIKE = frozenset({"MARKET", "STOP", "TRAILING_STOP"})


def touch_fill(
    order_type: str,
    buy: bool,
    bid: float,
    ask: float,
    limit: float | None = None,
    triggered: bool = True,
) -> float | None:
    """The price an order fills at with the market at ``bid``/``ask`` (``None``: no fill).

    ``limit``: the limit price of ``LIMIT``/``STOP_LIMIT`` orders. ``triggered``: whether a
    stop order's stop has been reached (ignored for other types).
    """
    touch = ask if buy else bid
    if touch <= 0 or (order_type in STOP_ORDER_TYPES and not triggered):
        return None
    if order_type in MARKET_LIKE:
        return touch
    if limit is None:
        raise ValueError(f"a {order_type} order needs a limit price")
    if (buy and ask <= limit) or (not buy and bid >= limit):
        return touch
    return None


def bar_fill(
    order_type: str, buy: bool, open_: float, high: float, low: float, limit: float | None
) -> float | None:
    """The price an order eligible at a bar's start fills at within that bar (``None``: none).

    :func:`touch_fill` at the open (``bid = ask = open``); else a limit the range reaches
    fills at the limit.
    """
    price = touch_fill(order_type, buy, open_, open_, limit)
    if price is not None or limit is None:
        return price
    if (buy and low <= limit) or (not buy and high >= limit):
        return limit
    return None


@dataclass(frozen=True, slots=True)
class FillModel:
    """Latency, slippage and commission options of the backtester (defaults: all 0)."""

    latency_ms: int = 0
    slippage_bps: float = 0.0
    commission_per_share: float = 0.0
    commission_bps: float = 0.0
    commission_min: float = 0.0

    def __post_init__(self) -> None:
        for name in (
            "latency_ms",
            "slippage_bps",
            "commission_per_share",
            "commission_bps",
            "commission_min",
        ):
            value = getattr(self, name)
            if not (value >= 0 and value - value == 0):
                raise ValueError(f"fill model: {name} must be finite and >= 0, not {value!r}")

    def slipped(self, price: float, buy: bool, limit: float | None) -> float:
        """``price`` moved by the slippage against the order, capped at ``limit``."""
        if self.slippage_bps:
            k = self.slippage_bps / 10_000.0
            price = price * (1.0 + k) if buy else price * (1.0 - k)
        if limit is not None:
            price = min(price, limit) if buy else max(price, limit)
        return price

    def commission(self, quantity: int, price: float) -> float:
        """Commission of one fill of ``quantity`` at ``price``."""
        if not (self.commission_per_share or self.commission_bps or self.commission_min):
            return 0.0
        c = self.commission_per_share * quantity + self.commission_bps / 10_000.0 * (
            quantity * price
        )
        return max(c, self.commission_min)
