"""Generated trade requests (JSON bodies and ``trades`` rows) and an independent order check.

``requests`` draws dicts of the request columns with every kind of wrong value next to valid
ones; ``order_problems`` judges a Schwab order JSON the way Schwab would, written from the
broker's rules rather than from ``streamdesk.risk`` so that it is a second opinion.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from hypothesis import strategies as st

EQUITY_RE = re.compile(r"[A-Z][A-Z0-9.\-/]{0,9}")
OCC_RE = re.compile(r"([A-Z0-9]{1,6}) {0,5}(\d{2})(\d{2})(\d{2})([CP])(\d{8})")
EQUITY_INSTR = {"BUY", "SELL"}
OPTION_INSTR = {"BUY_TO_OPEN", "SELL_TO_CLOSE", "SELL_TO_OPEN", "BUY_TO_CLOSE"}
GOOD_OCC = ["SPY   261218C00500000", "AAPL  261218P00200000", "QQQ   270115C00450000"]

_ODD_SYMBOLS = [
    "AAPL\n", "AAPL ", " AAPL", "AA PL", "", "A" * 11, "AAPL\x00", "ÄPPL", "1AAPL",
    "SPY   261218C00500000\n", "SPY   261332C00500000", "SPY  261218C00500000",
    "      261218C00500000", "SPY   261218X00500000", "spy   261218c00500000",
    "SPY   261218C0050000", "AAPL;DROP TABLE trades", "A\u0301", "AAPL\r\n",
]  # fmt: skip
symbols = st.one_of(
    st.sampled_from(["AAPL", "MSFT", "SPY", "BRK.B", "aapl", "NVDA"]),
    st.sampled_from(GOOD_OCC),
    st.sampled_from(_ODD_SYMBOLS),
    st.text(max_size=12),
    st.sampled_from([None, 0, 1.5, True]),
)
asset_types = st.one_of(
    st.sampled_from(["EQUITY", "OPTION"]),
    st.sampled_from(["equity", "Option", "FUTURE", "", "EQUITY ", None, 0, 1]),
)
instructions = st.one_of(
    st.sampled_from(sorted(EQUITY_INSTR | OPTION_INSTR)),
    st.sampled_from(["buy", "SELL_SHORT", "BUY ", "", "HOLD", "BUY\n", None, 7]),
)
_SPECIAL_DECIMALS = [
    Decimal(v)
    for v in [
        "0", "-1", "1", "1.5", "0.999", "100", "101", "1E+2", "1E+40", "1E+999999",
        "1E-999999", "123456789012345678901234567890.01", "0.0001", "0.00001", "0.001",
        "NaN", "sNaN", "Infinity", "-Infinity", "1e6", "10000", "10001", "1000000000",
        "1000000000.01", "2.999", "3.05", "0.05", "0.10", "-0.01", "100.005", "1.00",
    ]
]  # fmt: skip
# Cheap to draw (st.decimals costs several times more per example, and the budget is tight):
# specials, and integers scaled by a power of ten (prices on and off the tick).
decimals = st.one_of(
    st.sampled_from(_SPECIAL_DECIMALS),
    st.builds(lambda i, e: Decimal(i).scaleb(e), st.integers(-1_000, 10**7), st.integers(-5, 2)),
)
numbers = st.one_of(
    decimals,
    st.integers(-5, 20_000),
    st.sampled_from(
        [2**63, -(2**63), 10**30, 1e308, -0.0, 0.1, 2.5, float("nan"), float("inf"), True, False]
    ),
    st.sampled_from(["1", "abc", "", "1,000", "0x10", " 5 ", "1e3", "NaN", "Infinity", None]),
)
order_types = st.one_of(
    st.sampled_from(["MARKET", "LIMIT", "LIMIT", "market", "STOP", "", "TRAILING_STOP", None]),
)
durations = st.one_of(
    st.sampled_from(["DAY", "GOOD_TILL_CANCEL", "FILL_OR_KILL", "day", "GTC", "", "FOREVER"]),
    st.none(),
)

_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "symbol": symbols,
    "asset_type": asset_types,
    "instruction": instructions,
    "quantity": numbers,
    "order_type": order_types,
    "limit_price": numbers,
    "duration": durations,
}


def _plausible() -> st.SearchStrategy[dict[str, Any]]:
    """Mostly-valid requests: right shapes, values at and across the limits."""
    equity = st.fixed_dictionaries(
        {
            "symbol": st.sampled_from(["AAPL", "MSFT", "SPY", "NVDA"]),
            "asset_type": st.just("EQUITY"),
            "instruction": st.sampled_from(["BUY", "SELL"]),
            "quantity": st.one_of(st.integers(1, 50), st.integers(-2, 12_000), decimals),
            "order_type": st.sampled_from(["MARKET", "LIMIT"]),
            "limit_price": st.one_of(st.none(), decimals),
        }
    )
    option = st.fixed_dictionaries(
        {
            "symbol": st.sampled_from(GOOD_OCC),
            "asset_type": st.just("OPTION"),
            "instruction": st.sampled_from(sorted(OPTION_INSTR)),
            "quantity": st.one_of(st.integers(1, 5), st.integers(-2, 120), decimals),
            "order_type": st.sampled_from(["MARKET", "LIMIT"]),
            "limit_price": st.one_of(st.none(), decimals),
        }
    )
    return st.one_of(equity, option)


_MISSING = object()
_KEEP = object()
_NAMES = sorted(_FIELDS)


def _without_missing(pairs: Any) -> dict[str, Any]:
    return {k: v for k, v in pairs if v is not _MISSING}


#: Every column drawn anywhere from its wild strategy, or left out.
_anything = st.tuples(*(st.one_of(_FIELDS[k], st.just(_MISSING)) for k in _NAMES)).map(
    lambda values: _without_missing(zip(_NAMES, values, strict=True))
)
#: A plausible request with some columns dropped or replaced by wild values.
_mutated = st.tuples(
    _plausible(),
    st.tuples(
        *(st.one_of(st.just(_KEEP), st.just(_KEEP), st.just(_MISSING), _FIELDS[k]) for k in _NAMES)
    ),
).map(
    lambda bo: _without_missing(
        (k, bo[0].get(k, _MISSING) if o is _KEEP else o) for k, o in zip(_NAMES, bo[1], strict=True)
    )
)

#: A trade request as a JSON-ish dict (gateway body) or a row's request columns.
requests = st.one_of(_plausible(), _mutated, _anything)
#: Mostly-valid requests (near the limits), for the services where a case is expensive.
plausible = _plausible()


def jsonable(value: Any) -> Any:
    """Decimals as JSON numbers (via their string), the rest unchanged."""
    if isinstance(value, Decimal):
        return str(value)
    return value


def order_problems(spec: Any, *, max_qty_equity: int, max_qty_option: int) -> list[str]:
    """What Schwab would refuse in a single-leg order JSON (empty: a valid order)."""
    out: list[str] = []
    if not isinstance(spec, dict):
        return ["not an object"]
    legs = spec.get("orderLegCollection")
    if not isinstance(legs, list) or len(legs) != 1:
        return ["not one leg"]
    leg = legs[0]
    instrument = leg.get("instrument", {})
    symbol, asset = instrument.get("symbol"), instrument.get("assetType")
    instruction = leg.get("instruction")
    if not isinstance(symbol, str):
        return ["no symbol"]
    if asset == "EQUITY":
        if not EQUITY_RE.fullmatch(symbol):
            out.append(f"bad equity symbol {symbol!r}")
        if instruction not in EQUITY_INSTR:
            out.append(f"instruction {instruction} for an equity")
        max_qty = max_qty_equity
    elif asset == "OPTION":
        m = OCC_RE.fullmatch(symbol)
        if not m or len(symbol) != 21:
            out.append(f"bad OCC symbol {symbol!r}")
        else:
            try:
                date(2000 + int(m[2]), int(m[3]), int(m[4]))
            except ValueError:
                out.append(f"bad expiration in {symbol!r}")
        if instruction not in OPTION_INSTR:
            out.append(f"instruction {instruction} for an option")
        max_qty = max_qty_option
    else:
        return [f"asset type {asset!r}"]
    qty = leg.get("quantity")
    if not isinstance(qty, int | float) or qty != int(qty) or not 1 <= qty <= max_qty:
        out.append(f"quantity {qty!r}")
    order_type = spec.get("orderType")
    price = spec.get("price")
    if order_type == "MARKET":
        if price is not None:
            out.append("price on a market order")
    elif order_type == "LIMIT":
        try:
            p = Decimal(str(price))
        except InvalidOperation:
            return [*out, f"price {price!r}"]
        if not p.is_finite() or p <= 0:
            out.append(f"price {price!r}")
        else:
            if asset == "EQUITY":
                tick = Decimal("0.01") if p >= 1 else Decimal("0.0001")
            else:
                tick = Decimal("0.05") if p < 3 else Decimal("0.10")
            if p.as_tuple().exponent < -4 or (p / tick) != (p / tick).to_integral_value():  # type: ignore[operator]
                out.append(f"price {price!r} off the tick {tick}")
    else:
        out.append(f"order type {order_type!r}")
    if spec.get("duration") not in ("DAY", "GOOD_TILL_CANCEL", "FILL_OR_KILL"):
        out.append(f"duration {spec.get('duration')!r}")
    return out
