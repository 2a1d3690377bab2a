"""Schwab order JSON: built with schwab-py's builders, and parsed back from the broker."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from streamdesk.models import (
    STOP_ORDER_TYPES,
    Duration,
    Instruction,
    Leg,
    OrderType,
    StopTrigger,
    TradeRequest,
    TradeStatus,
)
from streamdesk.schwab import schwab_common, schwab_equities, schwab_options

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


#: ``stop_trigger`` -> Schwab's ``stopType`` (``LAST`` is ``STANDARD`` there).
_STOP_TYPE = {
    StopTrigger.LAST: schwab_common.StopType.STANDARD,
    StopTrigger.BID: schwab_common.StopType.BID,
    StopTrigger.ASK: schwab_common.StopType.ASK,
    StopTrigger.MARK: schwab_common.StopType.MARK,
}


def order_builder(req: TradeRequest) -> Any:
    """schwab-py's ``OrderBuilder`` for ``req`` as one order (its bracket exits ignored).

    ``MARKET``/``LIMIT`` are the equity/option builders as they are; ``STOP`` and
    ``TRAILING_STOP`` start from the market builder and ``STOP_LIMIT`` from the limit builder,
    then set the order type and the stop fields. Use it for a bracket's legs (one per leg row)
    and compose them with :func:`build_bracket`.
    """
    qty = int(req.quantity)
    kind = req.order_type
    if kind in (OrderType.LIMIT, OrderType.STOP_LIMIT):
        assert req.limit_price is not None
        builder = _LIMIT[req.instruction](req.symbol, qty, format_price(req.limit_price))
    else:
        builder = _MARKET[req.instruction](req.symbol, qty)
    builder.set_duration(schwab_common.Duration[Duration(req.duration).value])
    trigger = req.stop_trigger or StopTrigger.LAST
    if kind in (OrderType.STOP, OrderType.STOP_LIMIT):
        assert req.stop_price is not None
        builder.set_order_type(schwab_common.OrderType[kind.value])
        builder.set_stop_price(format_price(req.stop_price))
        builder.set_stop_type(_STOP_TYPE[trigger])
    elif kind is OrderType.TRAILING_STOP:
        assert req.trail_type is not None and req.trail_offset is not None
        builder.set_order_type(schwab_common.OrderType.TRAILING_STOP)
        builder.set_stop_price_link_basis(schwab_common.StopPriceLinkBasis[trigger.value])
        builder.set_stop_price_link_type(schwab_common.StopPriceLinkType[req.trail_type.value])
        # A JSON number, as Schwab documents stopPriceOffset (a Decimal would not serialize).
        builder.set_stop_price_offset(float(req.trail_offset))
        builder.set_stop_type(_STOP_TYPE[trigger])
    return builder


def build_bracket(entry: TradeRequest, exits: Sequence[TradeRequest]) -> dict[str, Any]:
    """The one conditional order of a bracket: the entry triggers its exits.

    ``exits`` are the leg rows' requests in tree order (take-profit, then stop-loss; see
    :meth:`TradeRequest.bracket_legs`): two become ``first_triggers_second(entry,
    one_cancels_other(tp, sl))``, one becomes ``first_triggers_second(entry, exit)``.
    """
    if not 1 <= len(exits) <= 2:
        raise ValueError(f"a bracket has one or two exits, not {len(exits)}")
    first = order_builder(entry.single())
    children = [order_builder(leg) for leg in exits]
    second = children[0] if len(children) == 1 else schwab_common.one_cancels_other(*children)
    spec: dict[str, Any] = schwab_common.first_triggers_second(first, second).build()
    return spec


def build_order(req: TradeRequest) -> dict[str, Any]:
    """The Schwab order JSON for ``req``: one order, or a bracket's whole tree."""
    if req.is_bracket:
        return build_bracket(req, [leg for _, leg in req.bracket_legs()])
    spec: dict[str, Any] = order_builder(req).build()
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
    #: The current trigger of a stop (a trailing stop's as the broker moves it).
    stop_price: Decimal | None = None
    #: ``orderStrategyType``: ``SINGLE``, or ``TRIGGER`` for an order with children.
    strategy: str = "SINGLE"
    #: The orders this one triggers, in tree order, OCO containers flattened away (an OCO has
    #: no leg of its own). Each child keeps its own children.
    children: tuple[BrokerOrder, ...] = ()

    @property
    def final_status(self) -> TradeStatus | None:
        """Our final status word for this order, or None while it lives."""
        return FINAL_BROKER_STATUS.get(self.status)


def _children(raw: Mapping[str, Any]) -> tuple[BrokerOrder, ...]:
    found: list[BrokerOrder] = []
    for child in _child_specs(raw):
        parsed = parse_order(child)
        if parsed is not None:
            found.append(parsed)
    return tuple(found)


def _child_specs(raw: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    children = raw.get("childOrderStrategies") or []
    if not isinstance(children, list):
        return
    for child in children:
        if not isinstance(child, Mapping):
            continue
        if child.get("orderStrategyType") == "OCO" and not child.get("orderLegCollection"):
            yield from _child_specs(child)
        else:
            yield child


def leg_children(order: BrokerOrder) -> dict[Leg, BrokerOrder]:
    """A bracket's exits among ``order.children``, by role: the ``LIMIT`` child is the
    take-profit, the stop child (``STOP``, ``STOP_LIMIT``, ``TRAILING_STOP``) the stop-loss.
    The first of each kind wins."""
    found: dict[Leg, BrokerOrder] = {}
    for child in order.children:
        if child.order_type == OrderType.LIMIT:
            found.setdefault(Leg.TAKE_PROFIT, child)
        elif child.order_type in STOP_ORDER_TYPES:
            found.setdefault(Leg.STOP_LOSS, child)
    return found


def parse_order(raw: Mapping[str, Any]) -> BrokerOrder | None:
    """A :class:`BrokerOrder` from Schwab's order JSON, its children included; None if it is
    not a single-leg order (an OCO container alone is not: read it through its parent)."""
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
        stop_price=_dec(raw.get("stopPrice")),
        strategy=str(raw.get("orderStrategyType") or "SINGLE"),
        children=_children(raw),
    )
