"""Schwab order JSON: built with schwab-py's builders, and parsed back from the broker."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from streamdesk.models import Duration, Instruction, OrderType, TradeRequest, TradeStatus
from streamdesk.schwab import schwab_equities, schwab_options

Builder = Callable[..., Any]

_MARKET: dict[Instruction, Builder] = {
    Instruction.BUY: schwab_equities.equity_buy_market,
    Instruction.SELL: schwab_equities.equity_sell_market,
    Instruction.BUY_TO_OPEN: schwab_options.option_buy_to_open_market,
    Instruction.SELL_TO_CLOSE: schwab_options.option_sell_to_close_market,
    Instruction.SELL_TO_OPEN: schwab_options.option_sell_to_open_market,
    Instruction.BUY_TO_CLOSE: schwab_options.option_buy_to_close_market,
}
_LIMIT: dict[Instruction, Builder] = {
    Instruction.BUY: schwab_equities.equity_buy_limit,
    Instruction.SELL: schwab_equities.equity_sell_limit,
    Instruction.BUY_TO_OPEN: schwab_options.option_buy_to_open_limit,
    Instruction.SELL_TO_CLOSE: schwab_options.option_sell_to_close_limit,
    Instruction.SELL_TO_OPEN: schwab_options.option_sell_to_open_limit,
    Instruction.BUY_TO_CLOSE: schwab_options.option_buy_to_close_limit,
}

#: Broker statuses that end an order's life, mapped to our status words.
FINAL_BROKER_STATUS = {
    "FILLED": TradeStatus.FILLED,
    "CANCELED": TradeStatus.CANCELLED,
    "REJECTED": TradeStatus.REJECTED,
    "EXPIRED": TradeStatus.EXPIRED,
    "REPLACED": TradeStatus.CANCELLED,
}


def format_price(price: Decimal) -> str:
    """Price as the string schwab-py passes through untouched (no float truncation)."""
    return format(price.normalize(), "f") if price == price.to_integral() else format(price, "f")


def build_order(req: TradeRequest) -> dict[str, Any]:
    """The Schwab order JSON for ``req`` (single leg, equity or option, market or limit)."""
    qty = int(req.quantity)
    if req.order_type is OrderType.MARKET:
        builder = _MARKET[req.instruction](req.symbol, qty)
    else:
        assert req.limit_price is not None
        builder = _LIMIT[req.instruction](req.symbol, qty, format_price(req.limit_price))
    builder.set_duration(schwab_equities.Duration[Duration(req.duration).value])
    spec: dict[str, Any] = builder.build()
    return spec


def _dec(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def parse_time(value: Any) -> datetime | None:
    """Parse Schwab's ``2024-03-04T15:00:00+0000`` (or ISO with ``Z``/``+00:00``)."""
    if not isinstance(value, str) or not value:
        return None
    text = value.replace("Z", "+00:00")
    if len(text) >= 5 and text[-5] in "+-" and text[-3] != ":":
        text = text[:-2] + ":" + text[-2:]
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


@dataclass(frozen=True, slots=True)
class BrokerOrder:
    """The fields of a Schwab order the executor uses."""

    order_id: str
    status: str
    symbol: str
    instruction: str
    quantity: Decimal
    order_type: str
    price: Decimal | None
    entered: datetime | None
    filled_quantity: Decimal
    avg_fill_price: Decimal | None
    reason: str

    @property
    def final_status(self) -> TradeStatus | None:
        """Our final status word for this order, or None while it lives."""
        return FINAL_BROKER_STATUS.get(self.status)


def parse_order(raw: Mapping[str, Any]) -> BrokerOrder | None:
    """A :class:`BrokerOrder` from Schwab's order JSON; None if it is not a single-leg order."""
    legs = raw.get("orderLegCollection") or []
    if not isinstance(legs, list) or len(legs) != 1 or not isinstance(legs[0], Mapping):
        return None
    leg = legs[0]
    instrument = leg.get("instrument") or {}
    order_id = raw.get("orderId")
    quantity = _dec(raw.get("quantity", leg.get("quantity")))
    if order_id is None or quantity is None or not isinstance(instrument, Mapping):
        return None
    filled = _dec(raw.get("filledQuantity")) or Decimal(0)
    total_qty = Decimal(0)
    total_value = Decimal(0)
    for activity in raw.get("orderActivityCollection") or []:
        if not isinstance(activity, Mapping):
            continue
        for ex in activity.get("executionLegs") or []:
            if not isinstance(ex, Mapping):
                continue
            q, p = _dec(ex.get("quantity")), _dec(ex.get("price"))
            if q is not None and p is not None and q > 0:
                total_qty += q
                total_value += q * p
    avg = (total_value / total_qty).quantize(Decimal("0.000001")) if total_qty else None
    if avg is None and filled > 0:
        avg = _dec(raw.get("price"))
    return BrokerOrder(
        order_id=str(order_id),
        status=str(raw.get("status", "UNKNOWN")),
        symbol=str(instrument.get("symbol", "")),
        instruction=str(leg.get("instruction", "")),
        quantity=quantity,
        order_type=str(raw.get("orderType", "")),
        price=_dec(raw.get("price")),
        entered=parse_time(raw.get("enteredTime")),
        filled_quantity=filled,
        avg_fill_price=avg,
        reason=str(raw.get("statusDescription") or raw.get("cancelMessage") or ""),
    )
