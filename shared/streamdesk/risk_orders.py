"""Price rules of each order type: ticks, the limit collar, stops, trailing stops, brackets.

Pure, like the rest of :mod:`streamdesk.risk` (whose :func:`~streamdesk.risk.check_trade`
runs :func:`price_violations`); docs/order-types.md, "Risk rules", is the table of rules.
The reference price is the quote's touch on the order's side (ask to buy, bid to sell; the
last price if that side is missing), the price the order would trade at now.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from .models import (
    OPENING_INSTRUCTIONS,
    Instruction,
    OrderType,
    TradeRequest,
    TrailType,
    exit_instruction,
    is_buy,
)
from .risk import Violation, on_tick, price_tick

if TYPE_CHECKING:
    from .risk import Quote, RiskLimits

HUNDRED = Decimal(100)


def _pct(fraction: Decimal) -> str:
    """``0.05`` as ``5`` (``:g`` would keep the exponent: ``5.00``)."""
    return format((fraction * HUNDRED).normalize(), "f")


def side_reference(instruction: Instruction | str, quote: Quote | None) -> Decimal | None:
    """The touch an order with ``instruction`` trades at: ask to buy, bid to sell (``last``
    if that side is missing); None without a usable quote."""
    if quote is None:
        return None
    touch = quote.ask if is_buy(instruction) else quote.bid
    if touch > 0:
        return touch
    return quote.last if quote.last > 0 else None


def trail_stop_price(req: TradeRequest, reference: Decimal) -> Decimal:
    """Where a trailing stop starts: ``reference`` -/+ the offset (sell below, buy above)."""
    assert req.trail_offset is not None
    offset = req.trail_offset
    if req.trail_type is TrailType.PERCENT:
        offset = reference * offset / HUNDRED
    return reference + offset if is_buy(req.instruction) else reference - offset


def notional_price(req: TradeRequest, quote: Quote | None) -> Decimal | None:
    """The price a request's notional and buying power are counted at.

    A limit order its limit; a market order the touch; a stop its stop price, a stop-limit
    whichever of stop and limit is further from the market; a trailing stop where it starts.
    """
    kind = req.order_type
    if kind is OrderType.STOP:
        return req.stop_price
    if kind is OrderType.STOP_LIMIT:
        assert req.stop_price is not None and req.limit_price is not None
        pick = max if is_buy(req.instruction) else min
        return pick(req.stop_price, req.limit_price)
    if req.limit_price is not None:
        return req.limit_price
    reference = side_reference(req.instruction, quote)
    if reference is None or kind is not OrderType.TRAILING_STOP:
        return reference
    return trail_stop_price(req, reference)


def _ticks(req: TradeRequest) -> list[Violation]:
    out = []
    for name in ("limit_price", "stop_price", "take_profit_price", "stop_loss_price"):
        price: Decimal | None = getattr(req, name)
        if price is not None and not on_tick(req.asset_type, price):
            tick = price_tick(req.asset_type, price)
            label = name.removesuffix("_price").replace("_", "-")
            out.append(
                Violation("bad_tick", f"{label} price {price} is not a multiple of the tick {tick}")
            )
    return out


def _collar(req: TradeRequest, quote: Quote | None, limits: RiskLimits) -> Violation | None:
    price = req.limit_price
    if price is None or quote is None or quote.bid <= 0 or quote.ask <= 0:
        return None
    low = quote.bid * (1 - limits.collar_pct)
    high = quote.ask * (1 + limits.collar_pct)
    if low <= price <= high:
        return None
    return Violation(
        "price_collar",
        f"limit price {price} is outside the collar {low:.4f}..{high:.4f} "
        f"(bid {quote.bid}, ask {quote.ask}, ±{_pct(limits.collar_pct)}%)",
    )


def stop_side(
    req: TradeRequest, quote: Quote | None, stop: Decimal | None = None
) -> Violation | None:
    """``stop_side``: a buy stop must be above the reference, a sell stop below it (else it
    would trigger at once). ``stop`` overrides the request's (a requested move)."""
    stop = stop if stop is not None else req.stop_price
    if req.order_type not in (OrderType.STOP, OrderType.STOP_LIMIT) or stop is None:
        return None
    reference = side_reference(req.instruction, quote)
    if reference is None:
        return None
    if is_buy(req.instruction) and stop <= reference:
        return Violation(
            "stop_side",
            f"a buy stop must be above the market: stop {stop} is at or below the ask "
            f"{reference}, it would trigger at once",
        )
    if not is_buy(req.instruction) and stop >= reference:
        return Violation(
            "stop_side",
            f"a sell stop must be below the market: stop {stop} is at or above the bid "
            f"{reference}, it would trigger at once",
        )
    return None


def stop_limit_collar(
    req: TradeRequest, limits: RiskLimits, stop: Decimal | None = None
) -> Violation | None:
    """``stop_limit_collar``: a stop-limit's limit on the far side of its stop (sell: at or
    below it, buy: at or above it) and within ``limits.stop_limit_collar_pct`` of it."""
    stop = stop if stop is not None else req.stop_price
    limit = req.limit_price
    if req.order_type is not OrderType.STOP_LIMIT or stop is None or limit is None:
        return None
    buy = is_buy(req.instruction)
    if (buy and limit < stop) or (not buy and limit > stop):
        side = "below" if buy else "above"
        return Violation(
            "stop_limit_collar",
            f"the limit {limit} of a {'buy' if buy else 'sell'} stop-limit is {side} its stop "
            f"{stop}; it could never fill once triggered",
        )
    band = stop * limits.stop_limit_collar_pct
    if abs(limit - stop) > band:
        return Violation(
            "stop_limit_collar",
            f"the limit {limit} is {abs(limit - stop)} from the stop {stop}, more than "
            f"{_pct(limits.stop_limit_collar_pct)}% ({band:.4f})",
        )
    return None


def trail_bounds(req: TradeRequest, quote: Quote | None, limits: RiskLimits) -> Violation | None:
    """``trail_bounds``: a percent trail within [``trail_min_pct``, ``trail_max_pct``]; a
    dollar trail above 0, at most ``trail_max_pct`` % of the reference, on the price tick."""
    offset = req.trail_offset
    if req.order_type is not OrderType.TRAILING_STOP or offset is None:
        return None
    low, high = limits.trail_min_pct, limits.trail_max_pct
    if req.trail_type is TrailType.PERCENT:
        if not low <= offset <= high:
            return Violation(
                "trail_bounds", f"a trailing stop of {offset}% is outside {low:g}%..{high:g}%"
            )
        return None
    if offset <= 0:
        return Violation("trail_bounds", f"a trailing stop's offset must be above 0 (got {offset})")
    reference = side_reference(req.instruction, quote)
    if reference is not None and offset > reference * high / HUNDRED:
        return Violation(
            "trail_bounds",
            f"a trailing stop of ${offset} is more than {high:g}% of the price {reference}",
        )
    tick = price_tick(req.asset_type, reference if reference is not None else offset)
    if offset % tick != 0:
        return Violation(
            "trail_bounds",
            f"a trailing stop's offset {offset} is not a multiple of the tick {tick}",
        )
    return None


def bracket_entry(req: TradeRequest) -> Violation | None:
    """``bracket_entry``: a bracket's entry is a ``MARKET`` or ``LIMIT`` order that opens a
    position (the model refuses other shapes too; this guards rows built without it)."""
    if not req.is_bracket:
        return None
    if req.order_type not in (OrderType.MARKET, OrderType.LIMIT):
        return Violation(
            "bracket_entry",
            f"a bracket's entry must be MARKET or LIMIT, not {req.order_type.value}",
        )
    if req.instruction not in OPENING_INSTRUCTIONS:
        return Violation(
            "bracket_entry",
            "a bracket's entry must open a position (BUY, BUY_TO_OPEN, SELL_TO_OPEN), "
            f"not {req.instruction.value}",
        )
    return None


def bracket_sides(req: TradeRequest, quote: Quote | None) -> list[Violation]:
    """``bracket_sides``: a long entry needs ``stop_loss < entry < take_profit``, a short one
    (``SELL_TO_OPEN``) the reverse, where entry is the limit (the reference for a market
    entry); and each exit on its side of the current reference of the exit order."""
    if not req.is_bracket or req.instruction not in OPENING_INSTRUCTIONS:
        return []
    long = is_buy(req.instruction)
    entry = req.limit_price
    if entry is None:
        entry = side_reference(req.instruction, quote)
    now = side_reference(exit_instruction(req.instruction), quote)
    out: list[Violation] = []
    for label, price, above in (
        ("take-profit", req.take_profit_price, long),
        ("stop-loss", req.stop_loss_price, not long),
    ):
        if price is None:
            continue
        where = "above" if above else "below"
        for what, ref in (("the entry", entry), ("the market", now)):
            if ref is not None and ((price <= ref) if above else (price >= ref)):
                out.append(
                    Violation(
                        "bracket_sides",
                        f"the {label} {price} of a {'long' if long else 'short'} bracket must "
                        f"be {where} {what} ({ref})",
                    )
                )
                break
    return out


def price_violations(req: TradeRequest, quote: Quote | None, limits: RiskLimits) -> list[Violation]:
    """Every price rule ``req`` breaks: ticks, the limit collar, and the order-type rules."""
    out = _ticks(req)
    for found in (
        _collar(req, quote, limits),
        stop_side(req, quote),
        stop_limit_collar(req, limits),
        trail_bounds(req, quote, limits),
        bracket_entry(req),
    ):
        if found is not None:
            out.append(found)
    out.extend(bracket_sides(req, quote))
    return out


def stop_move_violations(
    req: TradeRequest, stop: Decimal, quote: Quote | None, limits: RiskLimits
) -> list[Violation]:
    """The rules a requested stop move (``replace_stop_price``) must pass: tick, stop side,
    and for a stop-limit the collar to its limit."""
    out: list[Violation] = []
    if not on_tick(req.asset_type, stop):
        tick = price_tick(req.asset_type, stop)
        out.append(Violation("bad_tick", f"stop price {stop} is not a multiple of the tick {tick}"))
    for found in (stop_side(req, quote, stop), stop_limit_collar(req, limits, stop)):
        if found is not None:
            out.append(found)
    return out
