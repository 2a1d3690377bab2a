"""The strategy API: load_strategy's errors, parameters, order validation, idempotent submit."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from streamdesk.strategy.api import (
    Bar,
    Context,
    Indicators,
    OrderRequest,
    Strategy,
    StrategyError,
    load_strategy,
)
from streamdesk.strategy.backtest import Backtester
from streamdesk.strategy.examples import OpeningRangeBreakout, SmaVwapCross

pytestmark = pytest.mark.unit


def _module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, body: str) -> str:
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(body))
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_load_strategy_by_class_and_by_module() -> None:
    assert load_strategy("streamdesk.strategy.examples.sma_vwap:SmaVwapCross") is SmaVwapCross
    assert load_strategy("streamdesk.strategy.examples.sma_vwap") is SmaVwapCross
    assert (
        load_strategy("streamdesk.strategy.examples.opening_range:OpeningRangeBreakout")
        is OpeningRangeBreakout
    )


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("", "strategy path is empty"),
        ("no_such_module_h17:X", "strategy module 'no_such_module_h17' not found"),
        ("streamdesk.strategy.examples.sma_vwap:Nope", "has no attribute 'Nope'"),
        ("streamdesk.strategy.examples.sma_vwap:Bar", "is not a Strategy subclass"),
        ("streamdesk.strategy.api:Strategy", "is not a Strategy subclass"),
        ("streamdesk.strategy.examples", "defines 0 Strategy subclasses"),
    ],
)
def test_load_strategy_errors_are_clear(path: str, message: str) -> None:
    with pytest.raises(StrategyError, match=message.replace("(", r"\(")):
        load_strategy(path)


def test_load_strategy_module_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    two = _module(
        tmp_path,
        monkeypatch,
        "h17_two",
        """
        from streamdesk.strategy.api import Strategy
        class A(Strategy):
            name = "a"
        class B(Strategy):
            name = "b"
        """,
    )
    with pytest.raises(StrategyError, match=r"defines 2 Strategy subclasses \(A, B\)"):
        load_strategy(two)
    assert load_strategy(f"{two}:B").name == "b"
    broken = _module(tmp_path, monkeypatch, "h17_broken", "raise RuntimeError('boom')\n")
    with pytest.raises(StrategyError, match="failed to import: RuntimeError: boom"):
        load_strategy(broken)
    nameless = _module(
        tmp_path,
        monkeypatch,
        "h17_nameless",
        """
        from streamdesk.strategy.api import Strategy
        class N(Strategy):
            pass
        """,
    )
    with pytest.raises(StrategyError, match="has no `name`"):
        load_strategy(nameless)


def test_params_defaults_overrides_and_errors() -> None:
    bt = Backtester(SmaVwapCross, {"quantity": 7, "indicators": ["ema9"]}, tickers=["X"])
    assert bt.strategy.params.quantity == 7
    assert bt.params == {"quantity": 7, "indicators": ["ema9"], "tickers": []}
    with pytest.raises(StrategyError, match=r"unknown parameter\(s\) qty; known: indicators"):
        Backtester(SmaVwapCross, {"qty": 1}, tickers=["X"])
    with pytest.raises(StrategyError, match="quantity must be a positive int"):
        Backtester(SmaVwapCross, {"quantity": 0}, tickers=["X"])
    with pytest.raises(StrategyError, match="indicators must be a non-empty subset"):
        Backtester(SmaVwapCross, {"indicators": ["rsi"]}, tickers=["X"])
    with pytest.raises(StrategyError, match="bad open/exit_at/tz"):
        Backtester(OpeningRangeBreakout, {"tz": "Mars/Olympus"}, tickers=["X"])
    with pytest.raises(StrategyError, match="must be > 0"):
        Backtester(OpeningRangeBreakout, {"range_minutes": 0}, tickers=["X"])
    bt = Backtester(SmaVwapCross, {"tickers": ["aapl"]}, tickers=["MSFT"])
    assert bt.tickers == ("AAPL",)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"key": ""}, "key must not be empty"),
        ({"side": "HOLD"}, "side must be BUY or SELL"),
        ({"quantity": 0}, "quantity must be positive"),
        ({"quantity": 1.5}, "quantity must be an int"),
        ({"quantity": True}, "quantity must be an int"),
        ({"order_type": "LIMIT"}, "needs a positive finite limit_price"),
        ({"order_type": "LIMIT", "limit_price": float("nan")}, "positive finite"),
        ({"limit_price": 10.0}, "a MARKET order has no limit_price"),
        ({"order_type": "STOP"}, "must be MARKET or LIMIT"),
    ],
)
def test_order_request_validation(kwargs: dict[str, Any], message: str) -> None:
    base: dict[str, Any] = {"key": "k", "ticker": "X", "side": "BUY", "quantity": 1}
    with pytest.raises(ValueError, match=message):
        OrderRequest(**{**base, **kwargs})


class Twice(Strategy):
    """Submits the same key on every bar, and one helper order."""

    name = "twice"

    def on_bar(self, bar: Bar, ind: Indicators) -> None:
        key = self.ctx.submit(OrderRequest("same-key", bar.ticker, "BUY", 1))
        assert key == "same-key"
        if not self.ctx.state.get("helper"):
            self.ctx.state["helper"] = self.sell(bar.ticker, 1, "tag")


def test_submit_same_key_twice_is_a_no_op() -> None:
    bt = Backtester(Twice, tickers=["X"], cash=1_000.0)
    for i in range(4):
        ts = 1_772_460_000_000 + i * 60_000
        bt.feed_bar(Bar("X", ts, 10.0, 10.0, 10.0, 10.0, 100, 10.0))
    assert isinstance(bt.ctx, Context)  # the backtester implements the protocol
    res = bt.finish()
    keys = [f.key for f in res.fills]
    assert keys == ["same-key", "X:1772460060000:tag"]  # each filled once, at the next bar
    assert bt.ctx.state["helper"] == "X:1772460060000:tag"
    assert res.positions == {}
