"""Unit tests of the live runner: bars from minute changes, limits, disabling, flatten, fills,
the resume point (no I/O: the bar source is a function of the test)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from streamdesk.messages import CommittedMessage
from streamdesk.strategy.api import Bar, Indicators
from streamdesk_strategy.bars import MinuteTracker
from streamdesk_strategy.runner import Runner
from streamdesk_strategy.store import OrderRow, StrategyRow

pytestmark = pytest.mark.unit

T0 = 1_796_000_000_000 - 1_796_000_000_000 % 60_000  # a minute boundary (2026-11)
DAY = date(2026, 11, 30)
NOW = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)


def row(module: str = "live_strategies:BuyEveryBar", **kw: Any) -> StrategyRow:
    base: dict[str, Any] = {
        "id": "s1", "module": module, "params": {}, "tickers": ("AAA",), "enabled": True,
        "mode": "paper", "quantity_max": 100, "max_position": 100, "max_orders_per_day": 50,
        "max_loss_per_day": Decimal(1000), "state": {}, "runtime": {}, "disabled_reason": "",
        "flatten_requested_at": None, "updated_at": NOW,
    }  # fmt: skip
    base.update(kw)
    return StrategyRow(**base)


def msg(ts: int, price: float, ticker: str = "AAA") -> CommittedMessage:
    return {
        "v": 1, "seq": 1, "committed_at": ts + 500,
        "rows": {"equity": 1, "options": 0, "bars": 1}, "from_ts": ts, "to_ts": ts,
        "equity": [{"ticker": ticker, "ts": ts, "price": price, "volume": 10, "bid": price - 0.01,
                    "ask": price + 0.01, "sma9": price, "vwap": price, "ema9": price}],
        "options": [], "options_truncated": False,
    }  # fmt: skip


async def fetch_bar(ticker: str, minute: int) -> tuple[Bar | None, Indicators]:
    return Bar(ticker, minute, 10.0, 11.0, 9.0, 10.5, 100, 10.2), Indicators(10.1, 10.2, 10.3)


def runner(r: StrategyRow) -> Runner:
    run = Runner(r, paper=True, today=DAY)
    run.load()
    run.restore([], [], 0, NOW)
    run.start()
    return run


def order(tid: int, coid: str, qty: int, status: str, filled: int, avg: float | None,
          instruction: str = "BUY") -> OrderRow:  # fmt: skip
    return OrderRow(tid, coid, "AAA", instruction, qty, "MARKET", None, status, filled, avg,
                    None, NOW)  # fmt: skip


def test_minute_tracker() -> None:
    m = MinuteTracker()
    assert m.advance("A", T0 + 1000) is None
    assert m.advance("A", T0 + 59_000) is None
    assert m.advance("A", T0 + 60_000) == T0
    assert m.advance("A", T0 + 1000) is None  # a late re-commit of the old minute
    assert m.advance("A", T0 + 185_000) == T0 + 60_000


async def test_bar_when_the_next_minute_is_committed() -> None:
    run = runner(row())
    await run.handle("1-0", msg(T0 + 5000, 10.0), fetch_bar)
    await run.handle("2-0", msg(T0 + 59_000, 10.4), fetch_bar)
    assert run.buffer.orders == []
    await run.handle("3-0", msg(T0 + 60_000, 10.6), fetch_bar)
    assert [o.client_order_id for o in run.buffer.orders] == [f"s1:AAA:{T0 + 60_000}:bar"]
    assert run.state["bars"] == [[T0, 10.5, 10.1]]
    d = run.take_decision(force=False)
    assert d is not None and d.runtime is not None
    assert d.runtime["cursor"] == "3-0" and d.runtime["minutes"] == {"AAA": T0 + 60_000}
    # an already handled message (a replay after restart) changes nothing
    await run.handle("3-0", msg(T0 + 120_000, 10.6), fetch_bar)
    assert run.buffer.orders == []


async def test_same_key_twice_is_one_order() -> None:
    run = runner(row())
    await run.handle("1-0", msg(T0, 10.0), fetch_bar)
    await run.handle("2-0", msg(T0 + 60_000, 10.0), fetch_bar)
    run.strategy.buy("AAA", 1, "bar")  # type: ignore[union-attr]  # same now_ms, same tag
    assert len(run.buffer.orders) == 1


async def test_max_position_refuses_the_order_and_alerts() -> None:
    run = runner(row(params={"qty": 6}, max_position=10))
    for i in range(3):
        await run.handle(f"{i + 1}-0", msg(T0 + i * 60_000, 10.0), fetch_bar)
    assert len(run.buffer.orders) == 1  # 6 accepted, the next 6 would make 12 > 10
    assert run.counters["refused"] == 1
    assert run.alerts and run.alerts[0][0] == "max_position"
    assert run.state["updates"][-1][1] == "REJECTED"
    assert run.active  # a refused order does not disable


async def test_orders_per_day_disables() -> None:
    run = runner(row(max_orders_per_day=2))
    for i in range(4):
        await run.handle(f"{i + 1}-0", msg(T0 + i * 60_000, 10.0), fetch_bar)
    assert len(run.buffer.orders) == 2
    assert run.disable_request is not None and run.disable_request[0] == "max_orders_per_day"
    assert not run.active


async def test_loss_per_day_disables_from_fills_and_marks() -> None:
    run = runner(row(params={"qty": 10}, max_loss_per_day=Decimal(50)))
    await run.handle("1-0", msg(T0, 100.0), fetch_bar)
    await run.handle("2-0", msg(T0 + 60_000, 100.0), fetch_bar)
    d = run.take_decision(force=False)
    assert d is not None
    run.written([(d.orders[0], 7)], [])
    coid = d.orders[0].client_order_id
    run.apply_rows([order(7, coid, 10, "working", 4, 100.0)])
    run.apply_rows([order(7, coid, 10, "filled", 10, 100.6)])  # 6 more at 101.0
    assert run.books["AAA"].quantity == 10
    assert run.state["fills"] == [
        [coid.removeprefix("s1:"), 4, 100.0],
        [coid.removeprefix("s1:"), 6, 101.0],
    ]
    assert [u[1] for u in run.state["updates"]] == ["ACCEPTED", "FILLED"]
    assert 7 not in run.open
    await run.handle("3-0", msg(T0 + 61_000, 96.0), fetch_bar)  # (96 - 100.6) * 10 = -46
    assert run.disable_request is None
    await run.handle("4-0", msg(T0 + 62_000, 95.5), fetch_bar)  # -51
    assert run.disable_request is not None and run.disable_request[0] == "max_loss_per_day"


async def test_strategy_exception_disables() -> None:
    run = runner(row(module="live_strategies:Boom"))
    await run.handle("1-0", msg(T0, 10.0), fetch_bar)
    await run.handle("2-0", msg(T0 + 60_000, 10.0), fetch_bar)
    assert run.disable_request is not None and run.disable_request[0] == "error"
    assert "strategy bug" in run.disable_request[1]


async def test_flatten_cancels_and_closes() -> None:
    run = runner(row(params={"qty": 5}))
    await run.handle("1-0", msg(T0, 10.0), fetch_bar)
    await run.handle("2-0", msg(T0 + 60_000, 10.0), fetch_bar)
    await run.handle("3-0", msg(T0 + 120_000, 10.0), fetch_bar)
    d = run.take_decision(force=False)
    assert d is not None and len(d.orders) == 2
    run.written([(d.orders[0], 1), (d.orders[1], 2)], [])
    run.apply_rows([order(1, d.orders[0].client_order_id, 5, "filled", 5, 10.0)])
    run.flatten(1234)
    assert run.buffer.cancels == [2]
    [close] = run.buffer.orders
    assert (close.client_order_id, close.instruction, close.quantity) == (
        "s1:flatten:AAA:1234", "SELL", 5)  # fmt: skip
    assert run.disable_request is not None and run.disable_request[0] == "flatten"


async def test_restore_delivers_fills_made_while_down() -> None:
    r = row(runtime={"cursor": "5-0", "minutes": {"AAA": T0}, "seen": {"9": [0, "working"]}})
    run = Runner(r, paper=True, today=DAY)
    run.load()
    filled = order(9, "s1:AAA:1:bar", 3, "filled", 3, 20.0)
    run.restore([filled], [], 1, NOW)
    run.follow([filled])
    assert "AAA" not in run.books or run.books["AAA"].quantity == 0  # not yet delivered
    run.apply_rows([filled])
    assert run.books["AAA"].quantity == 3
    assert run.state["fills"] == [["AAA:1:bar", 3, 20.0]]
    assert run.orders_today == 1


def test_too_many_tickers_is_refused() -> None:
    from streamdesk.strategy.api import StrategyError

    run = Runner(row(tickers=("A", "B", "C")), paper=True, today=DAY)
    with pytest.raises(StrategyError, match="3 tickers"):
        run.load(max_tickers=2)
