"""Property tests of the order-type risk rules (streamdesk.risk_orders): for any market and
any prices, each rule refuses exactly the orders its definition names, with its code."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from trade_requests import req

from streamdesk.risk import Quote, RiskLimits
from streamdesk.risk_orders import bracket_sides, stop_limit_collar, stop_side, trail_bounds

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
