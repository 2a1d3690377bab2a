"""Order requests: Schwab order JSON parsed and checked for shape, as Schwab does on POST.

A request is a tree: ``orderStrategyType`` ``SINGLE`` (one order), ``TRIGGER`` (an order whose
``childOrderStrategies`` start when it fills) or ``OCO`` (a container of
``childOrderStrategies``, no legs of its own: when one fills the others are cancelled), as
schwab-py's ``first_triggers_second`` / ``one_cancels_other`` build them. Each order is one of
``MARKET``, ``LIMIT``, ``STOP``, ``STOP_LIMIT``, ``TRAILING_STOP`` with its own fields.

A request that fails here is answered 400 with a message (a nested error names the child,
e.g. ``childOrderStrategies[0].childOrderStrategies[1]: ...``) and creates nothing. Business
rules (buying power, holdings, short selling, a stop on the wrong side of the market) come
later, on an accepted order: see :meth:`streamdesk_sim.broker.Broker.place`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from streamdesk.models import parse_occ

EQUITY_INSTRUCTIONS = {"BUY", "SELL", "SELL_SHORT", "BUY_TO_COVER"}
OPTION_INSTRUCTIONS = {"BUY_TO_OPEN", "SELL_TO_CLOSE", "SELL_TO_OPEN", "BUY_TO_CLOSE"}
ORDER_TYPES = ("MARKET", "LIMIT", "STOP", "STOP_LIMIT", "TRAILING_STOP")
STRATEGIES = ("SINGLE", "TRIGGER", "OCO")
STOP_TYPES = ("STANDARD", "BID", "ASK", "LAST", "MARK")
STOP_ORDER_TYPES = frozenset({"STOP", "STOP_LIMIT", "TRAILING_STOP"})
#: What a trailing stop can follow (Schwab's other bases, e.g. MANUAL, are not simulated).
LINK_BASES = ("LAST", "BID", "ASK", "MARK")
LINK_TYPES = ("VALUE", "PERCENT")
_STOP_FIELDS = ("stopPrice", "stopType", "stopPriceLinkBasis", "stopPriceLinkType",
                "stopPriceOffset")  # fmt: skip
#: Bounds of one request's tree (Schwab's conditional orders are small).
MAX_DEPTH = 4
MAX_ORDERS = 12


class OrderError(ValueError):
    """A malformed order request (HTTP 400 with a message)."""


@dataclass(frozen=True, slots=True)
class OrderLeg:
    """The single leg of one valid order, normalized."""

    symbol: str  # equities upper-cased; an OCC option symbol as sent
    asset_type: str  # EQUITY | OPTION
    instruction: str
    quantity: float  # a positive whole number
    price: float | None  # the limit of a LIMIT / STOP_LIMIT order
    order_type: str  # MARKET | LIMIT | STOP | STOP_LIMIT | TRAILING_STOP
    stop_price: float | None = None  # STOP / STOP_LIMIT trigger
    stop_type: str | None = None  # stop types: STANDARD | BID | ASK | LAST | MARK
    link_basis: str | None = None  # TRAILING_STOP: LAST | BID | ASK | MARK
    link_type: str | None = None  # TRAILING_STOP: VALUE | PERCENT
    offset: float | None = None  # TRAILING_STOP: dollars or percent


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """One node of a valid request tree: an order (``leg``) or an OCO container (no leg)."""

    strategy: str  # SINGLE | TRIGGER | OCO
    leg: OrderLeg | None
    children: tuple[OrderRequest, ...]
    spec: dict[str, Any]  # the node's JSON as sent (session, duration, ...)

    def walk(self) -> list[OrderRequest]:
        """This node and its descendants, parents first (the tree's order)."""
        out = [self]
        for child in self.children:
            out.extend(child.walk())
        return out


def validate_order(spec: Any) -> OrderRequest:
    """Check an order request's shape; return its normalized tree (or ``OrderError``)."""
    request = _node(spec, "", 0)
    if len(request.walk()) > MAX_ORDERS:
        raise OrderError(f"too many orders in one request (at most {MAX_ORDERS})")
    return request


def _node(spec: Any, where: str, depth: int) -> OrderRequest:
    """One node at path ``where`` (errors are prefixed with it)."""
    try:
        return _checked_node(spec, where, depth)
    except OrderError as exc:
        if where and not str(exc).startswith("childOrderStrategies["):
            raise OrderError(f"{where}: {exc}") from None
        raise


def _checked_node(spec: Any, where: str, depth: int) -> OrderRequest:
    if not isinstance(spec, dict):
        raise OrderError("order must be a JSON object")
    strategy = spec.get("orderStrategyType", "SINGLE")
    if strategy not in STRATEGIES:
        raise OrderError(f"orderStrategyType {strategy!r} is not supported (SINGLE, TRIGGER, OCO)")
    raw_children = spec.get("childOrderStrategies")
    if strategy == "SINGLE":
        if raw_children:
            raise OrderError("a SINGLE order has no childOrderStrategies (use TRIGGER)")
        return OrderRequest(strategy, validate_leg(spec), (), spec)
    if depth >= MAX_DEPTH:
        raise OrderError(f"conditional orders nest at most {MAX_DEPTH} deep")
    if not isinstance(raw_children, list) or not raw_children:
        raise OrderError(f"a {strategy} order needs a non-empty childOrderStrategies list")
    prefix = f"{where}." if where else ""
    children = tuple(
        _node(child, f"{prefix}childOrderStrategies[{i}]", depth + 1)
        for i, child in enumerate(raw_children)
    )
    if strategy == "TRIGGER":
        return OrderRequest(strategy, validate_leg(spec), children, spec)
    # OCO: a container of alternatives, no order of its own.
    if spec.get("orderLegCollection") is not None:
        raise OrderError("an OCO order has no orderLegCollection: its legs are its children")
    if len(children) < 2:
        raise OrderError("an OCO order needs at least two childOrderStrategies")
    for i, child in enumerate(children):
        if child.strategy != "SINGLE":
            raise OrderError(f"{prefix}childOrderStrategies[{i}]: the orders of an OCO are SINGLE")
    return OrderRequest(strategy, None, children, spec)


def validate_leg(spec: dict[str, Any]) -> OrderLeg:
    """The order of one node: its type, prices and single leg, checked."""
    order_type = spec.get("orderType")
    if order_type not in ORDER_TYPES:
        raise OrderError(f"orderType {order_type!r} is not supported ({', '.join(ORDER_TYPES)})")
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
    if order_type not in STOP_ORDER_TYPES:
        extra = [f for f in _STOP_FIELDS if spec.get(f) is not None]
        if extra:
            raise OrderError(f"{extra[0]} is only for STOP, STOP_LIMIT and TRAILING_STOP orders")
    price = None
    if order_type in ("LIMIT", "STOP_LIMIT"):
        price = _positive(spec, "price", f"a {order_type} order needs a numeric price")
    elif order_type != "MARKET" and spec.get("price") is not None:
        limit_type = "STOP_LIMIT" if order_type == "STOP" else "LIMIT"
        raise OrderError(f"a {order_type} order takes no price (a limit is a {limit_type})")
    out = OrderLeg(symbol, asset_type, instruction, quantity, price, order_type)
    if order_type not in STOP_ORDER_TYPES:
        return out
    stop_type = spec.get("stopType", "STANDARD")
    if stop_type not in STOP_TYPES:
        raise OrderError(f"stopType {stop_type!r} is not supported ({', '.join(STOP_TYPES)})")
    if order_type != "TRAILING_STOP":
        for f in ("stopPriceLinkBasis", "stopPriceLinkType", "stopPriceOffset"):
            if spec.get(f) is not None:
                raise OrderError(f"{f} is only for TRAILING_STOP orders")
        stop = _positive(spec, "stopPrice", f"a {order_type} order needs a numeric stopPrice")
        return _with(out, stop_price=stop, stop_type=stop_type)
    if spec.get("stopPrice") is not None:
        raise OrderError(
            "a TRAILING_STOP takes no stopPrice: it follows stopPriceLinkBasis by stopPriceOffset"
        )
    basis = spec.get("stopPriceLinkBasis", "LAST")
    if basis not in LINK_BASES:
        raise OrderError(f"stopPriceLinkBasis {basis!r} is not supported ({', '.join(LINK_BASES)})")
    link_type = spec.get("stopPriceLinkType")
    if link_type not in LINK_TYPES:
        raise OrderError(
            f"a TRAILING_STOP needs stopPriceLinkType VALUE or PERCENT, not {link_type!r}"
        )
    offset = _positive(spec, "stopPriceOffset", "a TRAILING_STOP needs a numeric stopPriceOffset")
    if link_type == "PERCENT" and offset >= 100:
        raise OrderError("a PERCENT stopPriceOffset must be below 100")
    return _with(out, stop_type=stop_type, link_basis=basis, link_type=link_type, offset=offset)


def _with(leg: OrderLeg, **changes: Any) -> OrderLeg:
    fields = {name: getattr(leg, name) for name in OrderLeg.__slots__}
    fields.update(changes)
    return OrderLeg(**fields)


def _positive(spec: dict[str, Any], key: str, missing: str) -> float:
    """A positive finite number (schwab-py sends prices as strings, e.g. ``"95.00"``)."""
    value = spec.get(key, "")
    if isinstance(value, bool):
        raise OrderError(missing)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise OrderError(missing) from None
    if not math.isfinite(number) or number <= 0:
        raise OrderError(f"{key} must be a positive number")
    return number


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
