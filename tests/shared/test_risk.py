"""Unit tests of the shared pre-trade risk rules (streamdesk.risk): each rule and its reason."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from trade_requests import req

from streamdesk.config import MarketHoursMode, TradingMode
from streamdesk.models import TradeRequest
from streamdesk.risk import (
    Quote,
    RiskContext,
    RiskLimits,
    RiskSettings,
    check_trade,
    on_tick,
    parse_request,
    quote_from_mapping,
    session_open,
)

pytestmark = pytest.mark.unit

# A Wednesday, 11:00 in New York.
NOW = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)
QUOTE = Quote(
    "AAPL", Decimal("100.00"), Decimal("100.10"), Decimal("100.05"), int(NOW.timestamp() * 1000)
)
LIMITS = RiskLimits(allow_market_orders=True)
CTX = RiskContext(now=NOW, quote=QUOTE, submitter_is_operator=True, buying_power=Decimal(1_000_000))


def codes(r: TradeRequest, ctx: RiskContext = CTX, limits: RiskLimits = LIMITS) -> set[str]:
    return set(check_trade(r, ctx, limits).codes)


def test_clean_order_passes_with_notional() -> None:
    res = check_trade(req(), CTX, LIMITS)
    assert res.ok and res.reason == ""
    assert res.notional == Decimal("1000.50")


def test_not_operator_is_refused_first_and_alone_is_enough() -> None:
    ctx = replace(CTX, submitter_is_operator=False)
    res = check_trade(req(), ctx, LIMITS)
    assert res.codes == {"not_operator"} and not res.ok
    assert res.violations[0].code == "not_operator"
    assert "not an operator" in res.reason and "streamdesk operators add" in res.reason
    # listed before every other rule it is combined with
    res = check_trade(req(quantity=Decimal("1.5")), ctx, replace(LIMITS, trading_enabled=False))
    assert [v.code for v in res.violations][:2] == ["not_operator", "trading_disabled"]
    assert check_trade(req(), CTX, LIMITS).ok


def test_kill_switch() -> None:
    res = check_trade(req(), CTX, replace(LIMITS, trading_enabled=False))
    assert res.codes == {"trading_disabled"}
    assert "TRADING_ENABLED=false" in res.reason


def test_live_broker_needs_live_mode() -> None:
    ctx = replace(CTX, live_broker=True)
    assert codes(req(), ctx) == {"live_not_enabled"}
    assert codes(req(), ctx, replace(LIMITS, trading_mode=TradingMode.LIVE)) == set()


def test_session_hours() -> None:
    saturday = datetime(2026, 11, 28, 16, 0, tzinfo=UTC)
    early = datetime(2026, 11, 25, 13, 0, tzinfo=UTC)  # 08:00 New York
    assert session_open(NOW, MarketHoursMode.REGULAR)
    assert not session_open(saturday, MarketHoursMode.REGULAR)
    assert not session_open(early, MarketHoursMode.REGULAR)
    assert session_open(early, MarketHoursMode.EXTENDED)
    assert session_open(saturday, MarketHoursMode.ALWAYS)
    quote = replace(QUOTE, ts=int(early.timestamp() * 1000))
    res = check_trade(
        req(),
        replace(CTX, now=early, quote=quote),
        replace(LIMITS, market_hours=MarketHoursMode.REGULAR),
    )
    assert res.codes == {"market_closed"} and "market is closed" in res.reason


def test_market_orders_off_by_default() -> None:
    market = req(order_type="MARKET", limit_price=None)
    res = check_trade(market, CTX, RiskLimits())
    assert res.codes == {"market_orders_disabled"}
    assert "RISK_ALLOW_MARKET_ORDERS" in res.reason
    assert codes(market) == set()
    # a market buy is priced at the ask
    assert check_trade(market, CTX, LIMITS).notional == Decimal("1001.00")


def test_quantity_rules() -> None:
    res = check_trade(req(quantity=Decimal("1.5")), CTX, LIMITS)
    assert res.codes == {"quantity_not_integer"} and "whole number" in res.reason
    assert codes(req(quantity=Decimal(10_001), limit_price=Decimal("1.00"))) >= {"quantity_limit"}
    opt = req(
        symbol="AAPL  261218C00100000",
        asset_type="OPTION",
        instruction="BUY_TO_OPEN",
        quantity=Decimal(101),
        limit_price=Decimal("1.00"),
    )
    oq = Quote(opt.symbol, Decimal("0.95"), Decimal("1.05"), Decimal(1), QUOTE.ts)
    res = check_trade(opt, replace(CTX, quote=oq), LIMITS)
    assert res.codes == {"quantity_limit"} and "1..100" in res.reason


def test_quote_missing_and_stale() -> None:
    assert codes(req(), replace(CTX, quote=None)) == {"no_quote"}
    stale = replace(QUOTE, ts=QUOTE.ts - 6_000)
    res = check_trade(req(), replace(CTX, quote=stale), LIMITS)
    assert res.codes == {"stale_quote"} and "6.0s old (max 5s)" in res.reason


def test_tick_and_collar() -> None:
    assert on_tick(req().asset_type, Decimal("100.05"))
    res = check_trade(req(limit_price=Decimal("100.055")), CTX, LIMITS)
    assert res.codes == {"bad_tick"} and "tick 0.01" in res.reason
    assert codes(req(limit_price=Decimal("0.5001"))) >= {"price_collar"}
    res = check_trade(req(limit_price=Decimal("110.00")), CTX, LIMITS)
    assert res.codes == {"price_collar"} and "outside the collar" in res.reason
    assert codes(req(limit_price=Decimal("94.00"))) == {"price_collar"}
    assert codes(req(limit_price=Decimal("95.00"))) == set()
    # options: 0.05 below $3, 0.10 above
    opt = dict(symbol="AAPL  261218C00100000", asset_type="OPTION", instruction="BUY_TO_OPEN")
    oq = Quote("AAPL  261218C00100000", Decimal("3.40"), Decimal("3.60"), Decimal("3.5"), QUOTE.ts)
    octx = replace(CTX, quote=oq)
    assert codes(req(**opt, limit_price=Decimal("3.50")), octx) == set()
    assert codes(req(**opt, limit_price=Decimal("3.55")), octx) == {"bad_tick"}


def test_notional_limits() -> None:
    big = req(quantity=Decimal(600))
    res = check_trade(big, CTX, LIMITS)
    assert res.codes == {"order_notional"} and "per-order maximum 50000" in res.reason
    res = check_trade(req(), replace(CTX, day_notional=Decimal(249_500)), LIMITS)
    assert res.codes == {"daily_notional"} and "daily notional would reach" in res.reason
    opt = req(
        symbol="AAPL  261218C00100000",
        asset_type="OPTION",
        instruction="BUY_TO_OPEN",
        quantity=Decimal(2),
        limit_price=Decimal("1.00"),
    )
    oq = Quote(opt.symbol, Decimal("0.95"), Decimal("1.05"), Decimal(1), QUOTE.ts)
    assert check_trade(opt, replace(CTX, quote=oq), LIMITS).notional == Decimal(200)


def test_rate_and_duplicate() -> None:
    res = check_trade(req(), replace(CTX, orders_last_minute=30), LIMITS)
    assert res.codes == {"rate_limit"} and "max 30/min" in res.reason
    res = check_trade(req(), replace(CTX, duplicate_of=42), LIMITS)
    assert res.codes == {"duplicate"} and "trade #42" in res.reason


def test_buying_power() -> None:
    res = check_trade(req(), replace(CTX, buying_power=Decimal(900)), LIMITS)
    assert res.codes == {"buying_power"} and "buying power is 900.00" in res.reason
    res = check_trade(
        req(), replace(CTX, buying_power=Decimal(1500), open_buy_notional=Decimal(600)), LIMITS
    )
    assert res.codes == {"buying_power"}
    assert codes(req(), replace(CTX, buying_power=None)) == {"buying_power_unknown"}
    # selling needs no buying power
    assert codes(req(instruction="SELL"), replace(CTX, buying_power=Decimal(0))) == set()
    assert (
        codes(req(), replace(CTX, buying_power=None), replace(LIMITS, check_buying_power=False))
        == set()
    )


def test_parse_request_reports_bad_rows() -> None:
    ok = parse_request(
        {
            "symbol": "aapl",
            "asset_type": "EQUITY",
            "instruction": "BUY",
            "quantity": Decimal(1),
            "order_type": "LIMIT",
            "limit_price": Decimal(1),
            "duration": "DAY",
            "id": 3,
        }
    )
    assert isinstance(ok, TradeRequest) and ok.symbol == "AAPL"
    bad = parse_request(
        {
            "symbol": "AAPL",
            "asset_type": "EQUITY",
            "instruction": "BUY_TO_OPEN",
            "quantity": Decimal(1),
            "order_type": "LIMIT",
            "limit_price": None,
        }
    )
    assert not isinstance(bad, TradeRequest)
    assert bad.code == "invalid_request" and "not an equity instruction" in bad.reason


def test_quote_from_redis_hash() -> None:
    q = quote_from_mapping("SPY", {b"last": b"1.5", b"bid": b"1.4", b"ask": b"1.6", b"ts": b"1000"})
    assert q == Quote("SPY", Decimal("1.4"), Decimal("1.6"), Decimal("1.5"), 1000)
    assert quote_from_mapping("SPY", {b"last": b"x"}) is None


def test_settings_build_limits() -> None:
    s = RiskSettings(trading_enabled=False, risk_max_orders_per_minute=5, risk_collar_pct="0.1")
    lim = s.risk_limits()
    assert lim.trading_enabled is False and lim.max_orders_per_minute == 5
    assert lim.collar_pct == Decimal("0.1")
    assert NOW - timedelta(seconds=1) < NOW


def test_session_hours_follow_the_nyse_holiday_calendar() -> None:
    from datetime import UTC, datetime

    thanksgiving = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)  # 10:00 New York, a holiday
    black_friday_late = datetime(2026, 11, 27, 18, 30, tzinfo=UTC)  # 13:30, after the half day
    black_friday_noon = datetime(2026, 11, 27, 17, 0, tzinfo=UTC)  # 12:00
    assert not session_open(thanksgiving, MarketHoursMode.REGULAR)
    assert not session_open(black_friday_late, MarketHoursMode.REGULAR)
    assert session_open(black_friday_noon, MarketHoursMode.REGULAR)
    assert session_open(thanksgiving, MarketHoursMode.ALWAYS)
