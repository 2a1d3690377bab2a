"""Property tests of the order-type risk rules (streamdesk.risk_orders): for any market and
any prices, each rule refuses exactly the orders its definition names, with its code."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from trade_requests import req

from streamdesk.models import (
    REQUEST_COLUMNS,
    Instruction,
    Leg,
    OrderType,
    TradeRequest,
    exit_instruction,
)
from streamdesk.risk import Quote, RiskContext, RiskLimits, RiskSettings, check_trade, parse_request
from streamdesk.risk_orders import (
    bracket_entry,
    bracket_sides,
    notional_price,
    stop_limit_collar,
    stop_move_violations,
    stop_side,
    trail_bounds,
)

pytestmark = pytest.mark.unit
CENT = Decimal("0.01")
LIMITS = RiskLimits()
FAST = settings(max_examples=150, deadline=None)

cents = st.integers(min_value=500, max_value=50_000).map(lambda c: Decimal(c) * CENT)
spreads = st.integers(min_value=1, max_value=50).map(lambda c: Decimal(c) * CENT)
offsets = st.integers(min_value=-2_000, max_value=2_000).map(lambda c: Decimal(c) * CENT)


def quote(bid: Decimal, spread: Decimal) -> Quote:
    return Quote("AAPL", bid, bid + spread, bid + spread / 2, 0)


@FAST
@given(bid=cents, spread=spreads, off=offsets, buy=st.booleans())
def test_stop_side_refuses_exactly_the_stops_that_would_trigger_at_once(
    bid: Decimal, spread: Decimal, off: Decimal, buy: bool
) -> None:
    q = quote(bid, spread)
    touch = q.ask if buy else q.bid
    stop = touch + off
    if stop <= 0:
        return
    r = req(
        instruction="BUY" if buy else "SELL", order_type="STOP", limit_price=None, stop_price=stop
    )
    found = stop_side(r, q)
    triggers_now = stop <= touch if buy else stop >= touch
    assert (found is not None) == triggers_now, (buy, touch, stop, found)
    if found is not None:
        assert found.code == "stop_side" and str(stop) in found.reason


@FAST
@given(stop=cents, off=offsets, buy=st.booleans())
def test_stop_limit_collar_is_the_far_side_within_the_band(
    stop: Decimal, off: Decimal, buy: bool
) -> None:
    limit = stop + off
    if limit <= 0:
        return
    r = req(
        instruction="BUY" if buy else "SELL",
        order_type="STOP_LIMIT",
        limit_price=limit,
        stop_price=stop,
    )
    found = stop_limit_collar(r, LIMITS)
    wrong_side = limit < stop if buy else limit > stop
    too_far = abs(limit - stop) > stop * LIMITS.stop_limit_collar_pct
    assert (found is not None) == (wrong_side or too_far), (buy, stop, limit, found)
    if found is not None:
        assert found.code == "stop_limit_collar"


@FAST
@given(pct=st.integers(min_value=1, max_value=400).map(lambda t: Decimal(t) / 10))
def test_percent_trail_bounds(pct: Decimal) -> None:
    r = req(
        instruction="SELL",
        order_type="TRAILING_STOP",
        limit_price=None,
        trail_type="PERCENT",
        trail_offset=pct,
    )
    found = trail_bounds(r, quote(Decimal(100), CENT), LIMITS)
    inside = LIMITS.trail_min_pct <= pct <= LIMITS.trail_max_pct
    assert (found is None) == inside, (pct, found)


@FAST
@given(bid=cents, trail=st.integers(min_value=1, max_value=20_000).map(lambda c: Decimal(c) * CENT))
def test_dollar_trail_at_most_the_max_percent_of_the_price(bid: Decimal, trail: Decimal) -> None:
    q = quote(bid, CENT)
    r = req(
        instruction="SELL",
        order_type="TRAILING_STOP",
        limit_price=None,
        trail_type="VALUE",
        trail_offset=trail,
    )
    found = trail_bounds(r, q, LIMITS)
    assert (found is None) == (trail <= q.bid * LIMITS.trail_max_pct / 100), (bid, trail, found)


@FAST
@given(bid=cents, spread=spreads, tp_off=offsets, sl_off=offsets)
def test_long_bracket_needs_stop_below_and_target_above(
    bid: Decimal, spread: Decimal, tp_off: Decimal, sl_off: Decimal
) -> None:
    q = quote(bid, spread)
    entry = q.ask
    tp, sl = entry + tp_off, entry + sl_off
    if tp <= 0 or sl <= 0:
        return
    r = req(
        instruction="BUY",
        order_type="LIMIT",
        limit_price=entry,
        take_profit_price=tp,
        stop_loss_price=sl,
    )
    found = bracket_sides(r, q)
    ok = sl < entry and tp > entry and sl < q.bid and tp > q.bid
    assert (found == []) == ok, (entry, q.bid, tp, sl, found)
    assert all(v.code == "bracket_sides" for v in found)


# --------------------------------------------------------------------------- through check_trade
# (the rules above with every other rule of check_trade, the model's shape rules, notional)

NOW = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)  # a Wednesday, 11:00 in New York
TS = int(NOW.timestamp() * 1000)
CHECK_LIMITS = RiskLimits(
    allow_market_orders=True,
    max_order_notional=Decimal(10**12),
    max_daily_notional=Decimal(10**12),
)
OPTION = "AAPL  261218C00100000"
FEW = settings(max_examples=40, deadline=None)

# Equity prices on the tick (>= $1: cents), and a spread of 0..50 cents.
prices = st.integers(min_value=100, max_value=100_000).map(lambda c: Decimal(c) * CENT)
spreads0 = st.integers(min_value=0, max_value=50).map(lambda c: Decimal(c) * CENT)


def quote2(bid: Decimal, ask: Decimal, symbol: str = "AAPL") -> Quote:
    return Quote(symbol, bid, ask, (bid + ask) / 2, TS)


def ctx(q: Quote | None) -> RiskContext:
    return RiskContext(now=NOW, quote=q, submitter_is_operator=True, buying_power=Decimal(10**13))


def codes(r: TradeRequest, q: Quote | None, limits: RiskLimits = CHECK_LIMITS) -> set[str]:
    return set(check_trade(r, ctx(q), limits).codes)


def stop(instruction: str, stop_price: Decimal, **kw: Any) -> TradeRequest:
    return req(
        instruction=instruction, order_type="STOP", limit_price=None, stop_price=stop_price, **kw
    )


# --------------------------------------------------------------------------- stop_side


@FEW
@given(bid=prices, spread=spreads0, below=st.integers(min_value=1, max_value=5000))
def test_sell_stop_below_the_bid_passes_at_or_above_is_refused(
    bid: Decimal, spread: Decimal, below: int
) -> None:
    q = quote2(bid, bid + spread)
    low = bid - Decimal(below) * CENT
    if low >= 1:
        assert codes(stop("SELL", low), q) == set()
    for at_or_above in (bid, bid + Decimal(below) * CENT):
        res = check_trade(stop("SELL", at_or_above), ctx(q), CHECK_LIMITS)
        assert res.codes == {"stop_side"}
        assert "sell stop must be below the market" in res.reason


@FEW
@given(bid=prices, spread=spreads0, above=st.integers(min_value=1, max_value=5000))
def test_buy_stop_above_the_ask_passes_at_or_below_is_refused(
    bid: Decimal, spread: Decimal, above: int
) -> None:
    ask = bid + spread
    q = quote2(bid, ask)
    assert codes(stop("BUY", ask + Decimal(above) * CENT), q) == set()
    assert "stop_side" in codes(stop("BUY", ask), q)
    low = ask - Decimal(above) * CENT
    if low >= 1:
        assert "stop_side" in codes(stop("BUY", low), q)


def test_stop_side_uses_last_when_the_side_is_missing_and_skips_without_a_quote() -> None:
    q = Quote("AAPL", Decimal(0), Decimal(0), Decimal(50), TS)
    assert stop_side(stop("SELL", Decimal(49)), q) is None
    found = stop_side(stop("SELL", Decimal(51)), q)
    assert found is not None and found.code == "stop_side"
    assert stop_side(stop("SELL", Decimal(51)), None) is None
    assert "no_quote" in codes(stop("SELL", Decimal(51)), None)


def test_a_stop_move_is_checked_like_a_stop() -> None:
    q = quote2(Decimal(100), Decimal("100.10"))
    working = stop("SELL", Decimal(95))
    assert stop_move_violations(working, Decimal(97), q, CHECK_LIMITS) == []
    assert {v.code for v in stop_move_violations(working, Decimal(100), q, CHECK_LIMITS)} == {
        "stop_side"
    }
    assert {v.code for v in stop_move_violations(working, Decimal("97.005"), q, CHECK_LIMITS)} == {
        "bad_tick"
    }
    sl = req(
        instruction="SELL", order_type="STOP_LIMIT", limit_price=Decimal(94), stop_price=Decimal(95)
    )
    assert {v.code for v in stop_move_violations(sl, Decimal(99), q, CHECK_LIMITS)} == {
        "stop_limit_collar"
    }


# --------------------------------------------------------------------------- stop_limit_collar


def test_stop_limit_collar_exact_edge_and_setting() -> None:
    at_edge = req(
        instruction="SELL",
        order_type="STOP_LIMIT",
        limit_price=Decimal(95),
        stop_price=Decimal(100),
    )
    assert stop_limit_collar(at_edge, CHECK_LIMITS) is None  # exactly 5 % is inside
    found = stop_limit_collar(at_edge, replace(CHECK_LIMITS, stop_limit_collar_pct=Decimal("0.04")))
    assert found is not None and "more than 4%" in found.reason


def test_stop_limit_through_check_trade_keeps_the_market_collar_on_its_limit() -> None:
    q = quote2(Decimal(100), Decimal("100.10"))
    ok = req(
        instruction="SELL",
        order_type="STOP_LIMIT",
        limit_price=Decimal("98.50"),
        stop_price=Decimal(99),
    )
    assert codes(ok, q) == set()
    far = req(
        instruction="SELL", order_type="STOP_LIMIT", limit_price=Decimal(80), stop_price=Decimal(84)
    )
    assert codes(far, q) == {"price_collar"}  # the limit collar applies to limit prices


# --------------------------------------------------------------------------- trail_bounds


def trailing(trail_type: str, offset: Decimal, instruction: str = "SELL") -> TradeRequest:
    return req(
        instruction=instruction,
        order_type="TRAILING_STOP",
        limit_price=None,
        trail_type=trail_type,
        trail_offset=offset,
    )


@FEW
@given(bid=prices, offset=st.integers(min_value=1, max_value=100_000))
def test_value_trail_at_most_max_pct_of_the_price_and_on_the_tick(
    bid: Decimal, offset: int
) -> None:
    q = quote2(bid, bid + CENT)
    on_tick = trailing("VALUE", Decimal(offset) * CENT)
    refused = trail_bounds(on_tick, q, CHECK_LIMITS) is not None
    assert refused == (Decimal(offset) * CENT > bid * Decimal(25) / 100)
    off_tick = trailing("VALUE", Decimal(offset) * CENT + Decimal("0.001"))
    found = trail_bounds(off_tick, q, CHECK_LIMITS)
    assert found is not None and found.code == "trail_bounds"


def test_trail_settings_are_used() -> None:
    q = quote2(Decimal(100), Decimal("100.10"))
    tight = replace(CHECK_LIMITS, trail_min_pct=Decimal(1), trail_max_pct=Decimal(5))
    found = trail_bounds(trailing("PERCENT", Decimal("0.5")), q, tight)
    assert found is not None and found.reason == "a trailing stop of 0.5% is outside 1%..5%"
    assert trail_bounds(trailing("VALUE", Decimal(6)), q, tight) is not None
    assert trail_bounds(trailing("VALUE", Decimal(5)), q, tight) is None


# --------------------------------------------------------------------------- brackets


def bracket(**kw: Any) -> TradeRequest:
    return req(**kw)


@FEW
@given(
    bid=prices,
    spread=spreads0,
    entry_d=st.integers(-200, 200),
    tp_d=st.integers(-500, 500),
    sl_d=st.integers(-500, 500),
    market=st.booleans(),
)
def test_long_bracket_sides_limit_or_market_entry(
    bid: Decimal, spread: Decimal, entry_d: int, tp_d: int, sl_d: int, market: bool
) -> None:
    q = quote2(bid, bid + spread)
    limit = bid + Decimal(entry_d) * CENT
    tp, sl = bid + Decimal(tp_d) * CENT, bid + Decimal(sl_d) * CENT
    if min(limit, tp, sl) < 1:
        return
    r = bracket(
        order_type="MARKET" if market else "LIMIT",
        limit_price=None if market else limit,
        take_profit_price=tp,
        stop_loss_price=sl,
    )
    entry = q.ask if market else limit
    good = sl < entry < tp and sl < q.bid < tp  # the exits sell: the bid is their market
    found = bracket_sides(r, q)
    assert (found == []) == good
    assert all(v.code == "bracket_sides" for v in found)


@FEW
@given(
    tenths=st.integers(min_value=30, max_value=200),
    tp_d=st.integers(-20, 20),
    sl_d=st.integers(-20, 20),
)
def test_short_option_bracket_sides_are_reversed(tenths: int, tp_d: int, sl_d: int) -> None:
    tenth = Decimal("0.1")
    bid = Decimal(tenths) * tenth
    q = quote2(bid, bid + tenth, OPTION)
    tp, sl = bid + Decimal(tp_d) * tenth, bid + Decimal(sl_d) * tenth
    if min(tp, sl) < 3:  # keep every price on the 0.10 tick
        return
    r = req(
        symbol=OPTION,
        asset_type="OPTION",
        instruction="SELL_TO_OPEN",
        quantity=Decimal(1),
        limit_price=bid,
        take_profit_price=tp,
        stop_loss_price=sl,
    )
    good = tp < bid < sl and tp < q.ask < sl  # the exits buy to close: the ask
    assert (bracket_sides(r, q) == []) == good
    assert ("bracket_sides" in codes(r, q)) is not good


def test_bracket_reasons_name_the_exit_and_the_side() -> None:
    q = quote2(Decimal(100), Decimal("100.10"))
    res = check_trade(
        bracket(take_profit_price=Decimal(99), stop_loss_price=Decimal(101)), ctx(q), CHECK_LIMITS
    )
    assert res.codes == {"bracket_sides"}
    assert "take-profit 99 of a long bracket must be above the entry (100.05)" in res.reason
    assert "stop-loss 101 of a long bracket must be below the entry (100.05)" in res.reason
    ok = bracket(take_profit_price=Decimal(110), stop_loss_price=Decimal(95))
    assert codes(ok, q) == set()
    assert codes(bracket(stop_loss_price=Decimal("95.001")), q) == {"bad_tick"}


def test_bracket_entry_guards_rows_built_without_validation() -> None:
    bad = TradeRequest.model_construct(
        **{
            **req().model_dump(),
            "order_type": OrderType.STOP,
            "stop_price": Decimal(99),
            "limit_price": None,
            "take_profit_price": Decimal(110),
        }
    )
    found = bracket_entry(bad)
    assert found is not None and found.code == "bracket_entry"
    closing = TradeRequest.model_construct(
        **{**req().model_dump(), "instruction": Instruction.SELL, "take_profit_price": Decimal(90)}
    )
    found = bracket_entry(closing)
    assert found is not None and "must open a position" in found.reason
    assert bracket_entry(req(take_profit_price=Decimal(110))) is None


# --------------------------------------------------------------------------- notional


def test_notional_of_stops() -> None:
    q = quote2(Decimal(100), Decimal("100.10"))
    assert notional_price(stop("BUY", Decimal(105)), q) == Decimal(105)
    buy_sl = req(order_type="STOP_LIMIT", limit_price=Decimal(106), stop_price=Decimal(105))
    sell_sl = req(
        instruction="SELL", order_type="STOP_LIMIT", limit_price=Decimal(94), stop_price=Decimal(95)
    )
    assert notional_price(buy_sl, q) == Decimal(106)
    assert notional_price(sell_sl, q) == Decimal(94)
    assert notional_price(trailing("VALUE", Decimal(2), "BUY"), q) == Decimal("102.10")
    assert notional_price(trailing("PERCENT", Decimal(10)), q) == Decimal(90)
    assert notional_price(trailing("PERCENT", Decimal(10)), None) is None
    res = check_trade(stop("BUY", Decimal(105)), ctx(q), CHECK_LIMITS)
    assert res.ok and res.notional == Decimal(1050)
    poor = replace(ctx(q), buying_power=Decimal(1000))
    assert check_trade(stop("BUY", Decimal(105)), poor, CHECK_LIMITS).codes == {"buying_power"}


def test_settings() -> None:
    lim = RiskSettings(
        risk_stop_limit_collar_pct="0.02", risk_trail_min_pct="0.5", risk_trail_max_pct="10"
    ).risk_limits()
    assert lim.stop_limit_collar_pct == Decimal("0.02")
    assert (lim.trail_min_pct, lim.trail_max_pct) == (Decimal("0.5"), Decimal(10))
    defaults = RiskSettings().risk_limits()
    assert (defaults.stop_limit_collar_pct, defaults.trail_min_pct, defaults.trail_max_pct) == (
        Decimal("0.05"),
        Decimal("0.1"),
        Decimal(25),
    )


# --------------------------------------------------------------------------- shape rules


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"order_type": "STOP", "limit_price": None}, "a STOP order needs stop_price"),
        ({"order_type": "STOP", "stop_price": "99"}, "a STOP order must not have limit_price"),
        ({"order_type": "STOP_LIMIT"}, "a STOP_LIMIT order needs stop_price"),
        (
            {"order_type": "STOP_LIMIT", "limit_price": None, "stop_price": "99"},
            "a STOP_LIMIT order needs limit_price",
        ),
        (
            {"order_type": "TRAILING_STOP", "limit_price": None, "trail_type": "VALUE"},
            "needs trail_type and trail_offset",
        ),
        (
            {
                "order_type": "TRAILING_STOP",
                "limit_price": None,
                "trail_type": "VALUE",
                "trail_offset": "1",
                "stop_price": "99",
            },
            "TRAILING_STOP order must not have stop_price",
        ),
        (
            {
                "order_type": "TRAILING_STOP",
                "limit_price": None,
                "trail_type": "VALUE",
                "trail_offset": "0",
            },
            "greater than 0",
        ),
        ({"trail_type": "PERCENT", "trail_offset": "1"}, "for TRAILING_STOP orders only"),
        ({"stop_trigger": "BID"}, "stop_trigger is for STOP"),
        ({"stop_price": "99"}, "a LIMIT order must not have stop_price"),
        (
            {
                "order_type": "STOP",
                "limit_price": None,
                "stop_price": "99",
                "stop_loss_price": "90",
            },
            "a bracket's entry is MARKET or LIMIT, not STOP",
        ),
        ({"instruction": "SELL", "take_profit_price": "90"}, "a bracket's entry opens a position"),
        ({"stop_loss_price": "0"}, "greater than 0"),
        ({"take_profit_price": str(10**10)}, "less than or equal"),
        ({"trail_type": "TICK"}, "VALUE"),
        ({"stop_trigger": "STANDARD"}, "LAST"),
    ],
)
def test_shape_rules(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        req(**fields)
    row = {**req().model_dump(), **fields}
    found = parse_request(row)
    assert not isinstance(found, TradeRequest) and found.code == "invalid_request"


def test_valid_shapes_and_bracket_legs() -> None:
    assert req(order_type="STOP", limit_price=None, stop_price="99", stop_trigger="BID")
    assert req(
        order_type="TRAILING_STOP",
        limit_price=None,
        trail_type="PERCENT",
        trail_offset="2.5",
        stop_trigger="MARK",
    )
    single = req()
    assert not single.is_bracket and single.bracket_legs() == () and single.single() is single
    entry = req(take_profit_price="110", stop_loss_price="95", duration="GOOD_TILL_CANCEL")
    assert entry.is_bracket and not entry.single().is_bracket
    (tp_leg, tp), (sl_leg, sl) = entry.bracket_legs()
    assert (tp_leg, sl_leg) == (Leg.TAKE_PROFIT, Leg.STOP_LOSS)
    assert (tp.order_type, tp.limit_price, tp.instruction) == ("LIMIT", Decimal(110), "SELL")
    assert (sl.order_type, sl.stop_price, sl.limit_price) == ("STOP", Decimal(95), None)
    assert tp.quantity == sl.quantity == entry.quantity and sl.duration == "GOOD_TILL_CANCEL"
    only_sl = req(stop_loss_price="95").bracket_legs()
    assert [leg for leg, _ in only_sl] == [Leg.STOP_LOSS]
    assert exit_instruction("BUY_TO_OPEN") == Instruction.SELL_TO_CLOSE
    assert exit_instruction(Instruction.SELL_TO_OPEN) == Instruction.BUY_TO_CLOSE
    with pytest.raises(ValueError, match="does not open a position"):
        exit_instruction("SELL_TO_CLOSE")


def test_parse_request_reads_every_request_column() -> None:
    row: dict[str, Any] = {
        "id": 7,
        "status": "pending",
        "symbol": "aapl",
        "asset_type": "EQUITY",
        "instruction": "BUY",
        "quantity": Decimal(5),
        "order_type": "LIMIT",
        "limit_price": Decimal(100),
        "duration": "DAY",
        "stop_price": None,
        "trail_type": None,
        "trail_offset": None,
        "stop_trigger": None,
        "take_profit_price": Decimal(110),
        "stop_loss_price": Decimal(95),
        "parent_id": None,
        "leg": "single",
    }
    parsed = parse_request(row)
    assert isinstance(parsed, TradeRequest) and parsed.is_bracket and parsed.symbol == "AAPL"
    assert set(REQUEST_COLUMNS) <= set(TradeRequest.model_fields)
