"""Property-based trade requests through the shared request model and risk rules.

The gateway and the executor use exactly these functions (``TradeRequest``,
``parse_request``, ``check_trade``, ``build_order``); the integration tests in
``test_fuzz_trades_services.py`` put a few hundred cases through the real services.

Properties: validation and risk checks never raise (a crash is a 500 in the gateway and a
stuck row in the executor); every refusal carries a reason; whatever passes builds an order
that Schwab would accept (judged by :func:`trade_cases.order_problems`, an independent check).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from fuzz_helpers import fuzz_settings
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from trade_cases import jsonable, order_problems, requests

from streamdesk.config import MarketHoursMode
from streamdesk.models import TradeRequest
from streamdesk.risk import Quote, RiskContext, RiskLimits, check_trade, parse_request
from streamdesk_executor.orders import build_order

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)  # a Tuesday, 11:00 New York
LIMITS = RiskLimits(allow_market_orders=True, max_daily_notional=Decimal(10**7))


def _quote(bid: str, ask: str, last: str, age_ms: int) -> Quote:
    ts = int(NOW.timestamp() * 1000) - age_ms
    return Quote("X", Decimal(bid), Decimal(ask), Decimal(last), ts)


# Pools drawn with sampled_from: cheap per example, and they span the rules' branches.
QUOTES = [
    None,
    _quote("0", "0", "0", 0),
    _quote("99.99", "100.01", "100", 100),
    _quote("99.99", "100.01", "100", 60_000),  # stale
    _quote("0.5", "0.52", "0.51", 0),
    _quote("2.95", "3.05", "3", 0),
    _quote("0", "10.2", "10.1", 0),
    _quote("500", "500.5", "0", -1_000),  # from the future
    _quote("150", "150.1", "150", 0),
    _quote("1.00", "1.10", "1.05", 0),
]
contexts = st.builds(
    RiskContext,
    now=st.just(NOW),
    quote=st.sampled_from(QUOTES),
    submitter_is_operator=st.booleans(),
    live_broker=st.booleans(),
    orders_last_minute=st.sampled_from([0, 5, 29, 30, 31]),
    day_notional=st.sampled_from([Decimal(0), Decimal("249999.99"), Decimal(10**7)]),
    duplicate_of=st.sampled_from([None, None, 7]),
    buying_power=st.sampled_from([None, Decimal(-5), Decimal(0), Decimal(1000), Decimal(10**7)]),
    open_buy_notional=st.sampled_from([Decimal(0), Decimal(999)]),
)
limits = st.sampled_from(
    [
        LIMITS,
        RiskLimits(),
        RiskLimits(allow_market_orders=True, check_buying_power=False, collar_pct=Decimal(1)),
        RiskLimits(market_hours=MarketHoursMode.REGULAR, allow_market_orders=True),
        RiskLimits(max_quantity_equity=1, max_quantity_option=1, allow_market_orders=True),
        RiskLimits(trading_enabled=False),
        RiskLimits(collar_pct=Decimal(0), max_order_notional=Decimal(1), allow_market_orders=True),
    ]
)


def check_accepted(req: TradeRequest, lim: RiskLimits) -> None:
    spec = build_order(req)
    problems = order_problems(
        spec, max_qty_equity=lim.max_quantity_equity, max_qty_option=lim.max_quantity_option
    )
    assert not problems, (req, spec, problems)


# Cases are drawn four to an example where they are cheap to check: Hypothesis' cost per
# example, not the check, is what the budget goes on.
BATCH = 4


@fuzz_settings(900)
@given(st.lists(requests, min_size=BATCH, max_size=BATCH))
def test_trades_rows_parse_or_reject_with_a_reason(rows: list[dict[str, Any]]) -> None:
    """The executor's path: a row's request columns (any values a client could INSERT)."""
    for row in rows:
        parsed = parse_request(row)
        if not isinstance(parsed, TradeRequest):
            assert parsed.code == "invalid_request" and parsed.reason.strip()
            continue
        ctx = RiskContext(now=NOW, quote=None, submitter_is_operator=True, buying_power=None)
        result = check_trade(parsed, ctx, LIMITS)
        assert "no_quote" in result.codes and result.reason


@fuzz_settings(750)
@given(
    st.lists(
        requests.map(lambda r: {k: jsonable(v) for k, v in r.items()}),
        min_size=BATCH,
        max_size=BATCH,
    )
)
def test_gateway_bodies_validate_or_raise_validation_error(bodies: list[dict[str, Any]]) -> None:
    """The gateway's path: a JSON body; only ``ValidationError`` (a 422) may come out."""
    for body in bodies:
        try:
            req = TradeRequest.model_validate(body)
        except ValidationError as exc:
            assert exc.errors()
            continue
        assert isinstance(req.quantity, Decimal)


@fuzz_settings(3000)
@given(requests, contexts, limits)
def test_risk_never_raises_and_passes_only_valid_orders(
    row: dict[str, Any], ctx: RiskContext, lim: RiskLimits
) -> None:
    parsed = parse_request(row)
    if not isinstance(parsed, TradeRequest):
        return
    quote = ctx.quote
    if quote is not None:  # the quote of this symbol
        ctx = RiskContext(**{**{f: getattr(ctx, f) for f in ctx.__slots__},
                             "quote": Quote(parsed.symbol, quote.bid, quote.ask, quote.last,
                                            quote.ts)})  # fmt: skip
    result = check_trade(parsed, ctx, lim)
    if not result.ok:
        assert result.reason.strip()
        assert all(v.code and v.reason for v in result.violations)
        return
    assert ctx.submitter_is_operator  # nobody else's order is ever accepted
    check_accepted(parsed, lim)


@pytest.mark.parametrize("symbol", ["AAPL\n", "SPY   261218C00500000\n", "MSFT\r\n"])
def test_regression_trailing_newline_is_not_a_symbol(symbol: str) -> None:
    """Found by the fuzzer: ``$`` in the symbol patterns matched before a trailing newline,
    so "AAPL\n" passed validation and would have been sent to the broker as is."""
    asset = "OPTION" if len(symbol.strip()) == 21 else "EQUITY"
    instr = "BUY_TO_OPEN" if asset == "OPTION" else "BUY"
    row = {"symbol": symbol, "asset_type": asset, "instruction": instr, "quantity": 1,
           "order_type": "LIMIT", "limit_price": Decimal("1.00")}  # fmt: skip
    parsed = parse_request(row)
    assert not isinstance(parsed, TradeRequest) and "symbol" in parsed.reason


@pytest.mark.parametrize(
    ("quantity", "price"),
    [
        (Decimal(1), Decimal("1E+40")),
        (Decimal(1), Decimal("123456789012345678901234567890.01")),
        (Decimal("1E+999999"), Decimal("1.00")),
        (Decimal(10**9 + 1), Decimal("1.00")),
    ],
)
def test_regression_absurd_magnitudes_are_refused_not_raised(
    quantity: Decimal, price: Decimal
) -> None:
    """Found by the fuzzer: the tick rule raised ``decimal.InvalidOperation`` on a huge price
    (a 500 in the gateway; in the executor the row stayed pending and the worker failed on it
    every second), and a huge quantity overflowed the notional."""
    row = {"symbol": "AAPL", "asset_type": "EQUITY", "instruction": "BUY",
           "quantity": quantity, "order_type": "LIMIT", "limit_price": price}  # fmt: skip
    parsed = parse_request(row)
    assert not isinstance(parsed, TradeRequest)
    assert "less than or equal to 1000000000" in parsed.reason
