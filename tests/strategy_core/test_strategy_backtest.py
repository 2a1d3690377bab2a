"""The backtester: hand-computed runs, limit orders and cancels, the examples, determinism,
the indicator engine shared with the indicators service, per-second rows and recordings."""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from streamdesk.cli import build_parser
from streamdesk.messages import encode_committed
from streamdesk.models import EquityTick
from streamdesk.sessions import SessionCalendar
from streamdesk.strategy.api import Bar, Fill, Indicators, OrderUpdate, Strategy, Tick
from streamdesk.strategy.backtest import Backtester
from streamdesk.strategy.examples import OpeningRangeBreakout, SmaVwapCross
from streamdesk.strategy.fills import FillModel
from streamdesk.strategy.replay import IndicatorReplay
from streamdesk.strategy.report import dumps, render_html, to_dict
from streamdesk_indicators.engine import Engine

pytestmark = pytest.mark.unit

DAY = 86_400_000
T0 = 1_772_463_600_000  # 2026-03-02 15:00 UTC = 10:00 New York


class Scripted(Strategy):
    """Does what ``plan`` says at the given bar indices: (side, qty, limit) or "cancel"."""

    name = "scripted"

    @dataclass(frozen=True)
    class Params:
        plan: tuple[Any, ...] = ()

    def on_start(self) -> None:
        self.n = 0
        self.events: list[Any] = []
        self.plan = {int(i): a for i, a in self.params.plan}

    def on_bar(self, bar: Bar, ind: Indicators) -> None:
        action = self.plan.get(self.n)
        self.n += 1
        if action == "cancel":
            for o in self.ctx.open_orders(bar.ticker):
                self.ctx.cancel(o.key)
        elif action is not None:
            side, qty, limit = action
            order = self.buy if side == "BUY" else self.sell
            order(bar.ticker, qty, f"b{self.n}", limit=limit)

    def on_fill(self, fill: Fill) -> None:
        self.events.append(("fill", fill.key, fill.price, self.ctx.position(fill.ticker)))

    def on_order_update(self, update: OrderUpdate) -> None:
        self.events.append(("update", update.key, update.status))


def _bar(i: int, o: float, h: float, lo: float, c: float, day: int = 0) -> Bar:
    return Bar("X", T0 + day * DAY + i * 60_000, o, h, lo, c, 1000, None)


BARS = [
    _bar(0, 100, 100, 100, 100),
    _bar(1, 101, 102.5, 100.4, 102),
    _bar(0, 99, 99.5, 97.5, 98, day=1),
    _bar(1, 103, 104, 102, 104, day=1),
]


def _run(plan: Any, bars: list[Bar] = BARS, **kw: Any) -> tuple[Backtester, Any]:
    bt = Backtester(Scripted, {"plan": plan}, tickers=["X"], cash=10_000.0, **kw)
    for b in bars:
        bt.feed_bar(b)
    return bt, bt.finish()


def test_market_round_trip_by_hand() -> None:
    bt, res = _run([(0, ("BUY", 10, None)), (2, ("SELL", 10, None))])
    # orders fill at the next bar's open: bought at 101 (bar 1), sold at 103 (bar 3)
    assert [(f.side, f.price, f.ts) for f in res.fills] == [
        ("BUY", 101.0, BARS[1].ts),
        ("SELL", 103.0, BARS[3].ts),
    ]
    # equity at each bar's close: 10000; 8990 + 10 x 102; 8990 + 10 x 98; 8990 + 1030
    assert list(res.equity) == [10_000.0, 10_010.0, 9_970.0, 10_020.0]
    assert list(res.equity_ts) == [b.ts + 60_000 for b in BARS]
    doc = to_dict(res)
    m = doc["metrics"]
    assert m["total_return"] == pytest.approx(0.002)
    assert m["max_drawdown"] == pytest.approx(40 / 10_010)
    assert m["exposure"] == 0.5
    r = [10_010 / 10_000 - 1, 10_020 / 10_010 - 1]
    mean = sum(r) / 2
    sd = abs(r[0] - r[1]) / math.sqrt(2)
    assert m["days"] == 2
    assert m["sharpe"] == pytest.approx(mean / sd * math.sqrt(252))
    assert m["sortino"] is None  # no losing day
    years = (BARS[3].ts + 60_000 - BARS[0].ts) / (365.25 * DAY)
    assert m["cagr"] == pytest.approx(1.002 ** (1 / years) - 1)
    assert m["round_trips"] == 1 and m["win_rate"] == 1.0 and m["profit_factor"] is None
    assert doc["round_trips"][0]["pnl"] == pytest.approx(20.0)
    assert m["realized_pnl"] == pytest.approx(20.0) and m["unrealized_pnl"] == pytest.approx(0)
    assert bt.strategy.events == [  # type: ignore[attr-defined]
        ("fill", f"X:{BARS[0].ts + 60_000}:b1", 101.0, 10),
        ("update", f"X:{BARS[0].ts + 60_000}:b1", "FILLED"),
        ("fill", f"X:{BARS[2].ts + 60_000}:b3", 103.0, 0),
        ("update", f"X:{BARS[2].ts + 60_000}:b3", "FILLED"),
    ]


def test_slippage_commission_and_latency() -> None:
    fm = FillModel(slippage_bps=10, commission_per_share=0.01)
    _, res = _run([(0, ("BUY", 10, None)), (2, ("SELL", 10, None))], fill_model=fm)
    assert [f.price for f in res.fills] == [pytest.approx(101.101), pytest.approx(102.897)]
    assert res.round_trips[0].pnl == pytest.approx((102.897 - 101.101) * 10 - 0.2)
    # 90 s of latency: an order sent at bar 0's close reaches the market inside bar 1,
    # so it is matched against the first bar starting after that: day 2's first bar
    _, res = _run([(0, ("BUY", 10, None))], fill_model=FillModel(latency_ms=90_000))
    assert [(f.price, f.ts) for f in res.fills] == [(99.0, BARS[2].ts)]


def test_limit_orders_cancel_and_rejection() -> None:
    bt, res = _run([(0, ("BUY", 10, 100.5)), (1, ("SELL", 10, 105.0)), (2, "cancel")])
    # the buy limit is below bar 1's open but inside its range: filled at the limit
    assert [(f.side, f.price) for f in res.fills] == [("BUY", 100.5)]
    assert res.cancelled == 1 and res.unfilled == []
    assert bt.strategy.events[-1] == ("update", f"X:{BARS[1].ts + 60_000}:b2", "CANCELLED")  # type: ignore[attr-defined]
    assert res.positions == {"X": 10} and len(res.open_trips) == 1
    # a buy the cash cannot pay is rejected at fill time, as market-sim does
    bt, res = _run([(0, ("BUY", 1000, None))])
    assert res.fills == [] and res.rejected[0]["error"] == "insufficient cash at fill time"
    assert bt.strategy.events == [  # type: ignore[attr-defined]
        ("update", f"X:{BARS[0].ts + 60_000}:b1", "REJECTED")
    ]


def test_short_and_flip_round_trips() -> None:
    _, res = _run([(0, ("SELL", 10, None)), (1, ("BUY", 20, None)), (2, ("SELL", 10, None))])
    # short 10 at 101, buy 20 at 99 (closes the short: +20, opens long 10 at 99), sell at 103
    assert [(t.side, t.pnl) for t in res.round_trips] == [("SHORT", 20.0), ("LONG", 40.0)]
    assert res.positions == {}


def _session_bars(days: int, tickers: tuple[str, ...], seed: int) -> list[Bar]:
    rng = random.Random(seed)
    out: list[Bar] = []
    price = {t: 100.0 + 10 * i for i, t in enumerate(tickers)}
    for d in range(days):
        open_ms = 1_772_461_800_000 + d * DAY  # 2026-03-02 14:30 UTC = 09:30 New York
        for i in range(390):
            for t in tickers:
                o = price[t]
                c = round(o * (1 + rng.gauss(0, 0.002)), 2)
                h = round(max(o, c) * (1 + abs(rng.gauss(0, 0.001))), 2)
                lo = round(min(o, c) * (1 - abs(rng.gauss(0, 0.001))), 2)
                v = rng.randint(100, 5000)
                out.append(Bar(t, open_ms + i * 60_000, o, h, lo, c, v, round((h + lo + c) / 3, 4)))
                price[t] = c
    return out


def _backtest_bytes(cls: type[Strategy], bars: list[Bar], params: dict[str, Any]) -> bytes:
    bt = Backtester(cls, params, tickers=["AAA", "BBB"], cash=100_000.0)
    for b in bars:
        bt.feed_bar(b)
    res = bt.finish()
    doc = to_dict(res)
    html = render_html(res, doc)
    assert html.count("<svg") == 4 and "http" not in html.replace('"http://www.w3.org', "")
    return dumps(doc)


def test_examples_are_deterministic_byte_for_byte() -> None:
    bars = _session_bars(2, ("AAA", "BBB"), seed=5)
    for cls, params in ((SmaVwapCross, {"quantity": 10}), (OpeningRangeBreakout, {})):
        a = _backtest_bytes(cls, bars, params)
        b = _backtest_bytes(cls, list(bars), params)
        assert a == b
        doc = json.loads(a)
        assert doc["metrics"]["fills"] > 0, cls.name
        assert doc == json.loads(json.dumps(doc, sort_keys=True))
    # a different input gives a different result (the test can fail)
    assert _backtest_bytes(SmaVwapCross, bars[:-2], {"quantity": 10}) != _backtest_bytes(
        SmaVwapCross, bars, {"quantity": 10}
    )


def test_sma_vwap_cross_signals() -> None:
    bars = _session_bars(1, ("AAA",), seed=9)
    bt = Backtester(SmaVwapCross, {"quantity": 5}, tickers=["AAA"])
    replay = IndicatorReplay(SessionCalendar())
    expected: list[tuple[int, str]] = []
    prev: bool | None = None
    for i, b in enumerate(bars):
        ind = replay.bar(b)
        if ind.sma9 is not None and ind.vwap is not None:
            above = b.close > ind.sma9 and b.close > ind.vwap
            if prev is not None and above != prev and i + 1 < len(bars):
                if above and not (expected and expected[-1][1] == "BUY"):
                    expected.append((bars[i + 1].ts, "BUY"))
                elif not above and expected and expected[-1][1] == "BUY":
                    expected.append((bars[i + 1].ts, "SELL"))
            prev = above
        bt.feed_bar(b)
    res = bt.finish()
    assert [(f.ts, f.side) for f in res.fills] == expected
    assert len(expected) > 4


def test_opening_range_breakout_uses_limits_cancels_and_state() -> None:
    bars = _session_bars(3, ("AAA", "BBB"), seed=11)
    bt = Backtester(OpeningRangeBreakout, {"quantity": 10}, tickers=["AAA", "BBB"])
    for b in bars:
        bt.feed_bar(b)
    res = bt.finish()
    kinds = {f.key.rsplit(":", 1)[1] for f in res.fills}
    assert "entry" in kinds and kinds & {"target", "stop", "close"}
    assert all(f.order_type == "LIMIT" for f in res.fills if f.key.endswith(":entry"))
    assert res.positions == {}  # flat at every close
    state = json.loads(json.dumps(bt.ctx.state))  # JSON-serialisable
    assert set(state["days"]) == {"AAA", "BBB"}
    assert len(res.round_trips) == sum(1 for f in res.fills if f.key.endswith(":entry"))


def _service_output() -> tuple[dict[int, tuple[Any, ...]], dict[int, tuple[Any, ...]]]:
    """Per-second rows and 1-minute bars of the indicators service's engine over 40 minutes
    of seeded ticks (several per second, some seconds without any)."""
    eng = Engine(SessionCalendar(), 60)
    rng = random.Random(3)
    cum, price = 1000, 50.0
    start = 1_772_461_800_000  # 09:30 New York
    for s in range(0, 40 * 60, 7):
        price = round(price + rng.choice((-0.03, -0.01, 0.0, 0.01, 0.02)), 2)
        size = rng.randint(1, 300)
        cum += size
        eng.on_equity(
            EquityTick("AAA", start + s * 1000 + 250, price, price - 0.01, price + 0.01, cum, size)
        )
    out, _ = eng.take()
    seconds: dict[int, tuple[Any, ...]] = {}
    for r in out.seconds:
        seconds[r[1]] = r
    return seconds, {b[1]: b for b in out.bars}


def test_bar_indicators_equal_the_indicator_service_engine() -> None:
    """The replay of the service's bars gives its values at each bar's last second."""
    seconds, bars = _service_output()
    replay = IndicatorReplay(SessionCalendar())
    checked = 0
    for bucket in sorted(bars)[:-1]:  # the last minute is still open
        _, ts, o, h, lo, c, v, vw = bars[bucket]
        ind = replay.bar(Bar("AAA", ts, o, h, lo, c, v, vw))
        last = seconds[max(k for k in seconds if bucket <= k < bucket + 60_000)]
        sma9, vwap, ema9 = last[7], last[8], last[9]
        assert ind.sma9 == sma9 and ind.ema9 == ema9
        assert (ind.vwap is None) == (vwap is None)
        if vwap is not None:
            assert ind.vwap == pytest.approx(vwap, rel=1e-12)
        checked += 1
    assert checked >= 38
    assert replay.values("AAA").sma9 is not None


class Recorder(Strategy):
    name = "recorder"

    def on_start(self) -> None:
        self.ticks: dict[int, Indicators] = {}

    def on_tick(self, tick: Tick, ind: Indicators) -> None:
        self.ticks[tick.ts] = ind


def test_engine_over_seconds_rows_equals_the_service_sma_and_ema() -> None:
    """``indicators="engine"`` over the service's per-second rows: SMA9 and EMA9 exactly
    the service's (they depend on each second's last price only); VWAP is approximated
    from price x volume per second, so only checked to be defined from the open."""
    seconds, _ = _service_output()
    bt = Backtester(Recorder, tickers=["AAA"], indicators="engine")
    for ts in sorted(seconds):
        r = seconds[ts]
        bt.feed_tick(Tick("AAA", ts, r[2], r[4], r[5], r[3]), None)
    bt.finish()
    got = bt.strategy.ticks  # type: ignore[attr-defined]
    assert len(got) == len(seconds) > 300
    for ts, r in seconds.items():
        assert (got[ts].sma9, got[ts].ema9) == (r[7], r[9]), ts
        assert (got[ts].vwap is None) == (r[8] is None)


def _msg(seq: int, rows: list[dict[str, Any]]) -> bytes:
    return encode_committed(
        {
            "v": 1,
            "seq": seq,
            "committed_at": rows[0]["ts"] + 1500,
            "rows": {"equity": len(rows), "options": 0, "bars": 0},
            "from_ts": rows[0]["ts"],
            "to_ts": rows[-1]["ts"],
            "equity": rows,  # type: ignore[typeddict-item]
            "options": [],
            "options_truncated": False,
        }
    )


def _row(ts: int, price: float, sma9: float | None = None) -> dict[str, Any]:
    return {
        "ticker": "X",
        "ts": ts,
        "price": price,
        "volume": 100,
        "bid": price - 0.01,
        "ask": price + 0.01,
        "sma9": sma9,
        "vwap": 10.0,
        "ema9": None,
    }


class TickProbe(Strategy):
    """Buys on the first tick above its stored SMA9, sells on the first bar after that."""

    name = "tick_probe"

    def on_start(self) -> None:
        self.seen: list[Any] = []

    def on_tick(self, tick: Tick, ind: Indicators) -> None:
        self.seen.append(("tick", tick.ts, tick.price, ind.sma9))
        above = ind.sma9 is not None and tick.price is not None and tick.price > ind.sma9
        if above and not self.ctx.state.get("bought"):
            self.ctx.state["bought"] = self.buy(tick.ticker, 3, "in")

    def on_bar(self, bar: Bar, ind: Indicators) -> None:
        self.seen.append(("bar", bar.ts, bar.open, bar.high, bar.low, bar.close, bar.volume))
        if self.ctx.position(bar.ticker) > 0:
            self.sell(bar.ticker, 3, "out")


def test_recording_through_the_cli(tmp_path: Path) -> None:
    base = 1_772_463_600_000  # a minute boundary
    lines = [
        _msg(1, [_row(base, 10.0, 10.5)]),
        _msg(2, [_row(base + 1000, 10.2, 10.5)]),
        _msg(3, [_row(base + 1000, 10.6, 10.5)]),  # the open second committed again
        _msg(4, [_row(base + 1000, 10.6, 10.5)]),  # the same row again: dropped
        b"{not json",
        _msg(5, [_row(base + 2000, 10.4, 10.5)]),  # the buy fills here, at the ask
        _msg(6, [_row(base + 60_000, 10.8, 10.5)]),  # finishes minute 0: on_bar, sell
        _msg(7, [_row(base + 61_000, 10.9, 10.5)]),  # the sell fills at the bid
    ]
    rec = tmp_path / "rec.jsonl"
    rec.write_bytes(b"\n".join(lines) + b"\n")
    out, html = tmp_path / "r.json", tmp_path / "r.html"
    args = build_parser().parse_args(
        [
            "backtest",
            f"{__name__}:TickProbe",
            "--recording",
            str(rec),
            "--out",
            str(out),
            "--html",
            str(html),
            "--quiet",
        ]
    )
    assert args.func(args) == 0
    doc = json.loads(out.read_bytes())
    assert doc["source"]["bad_lines"] == 1 and doc["source"]["messages"] == 7
    assert "line 5" in doc["source"]["first_bad"]
    assert doc["tickers"] == ["X"]
    assert [(f["side"], f["price"], f["ts"]) for f in doc["fills"]] == [
        ("BUY", 10.41, base + 2000),
        ("SELL", 10.89, base + 61_000),
    ]
    assert doc["round_trips"][0]["pnl"] == pytest.approx(3 * (10.89 - 10.41))
    assert doc["dropped_events"] == 1
    assert "<svg" in html.read_text()
    # the same recording again: the same bytes
    out2 = tmp_path / "r2.json"
    args = build_parser().parse_args(
        ["backtest", f"{__name__}:TickProbe", "--recording",
         str(rec), "--out", str(out2), "--html", "", "--quiet"]
    )  # fmt: skip
    assert args.func(args) == 0
    assert out2.read_bytes() == out.read_bytes()


def test_tick_bars_from_rows() -> None:
    bt = Backtester(TickProbe, tickers=["X"])
    base = 1_772_463_600_000
    rows = [(base, 10.0), (base + 1000, 10.4), (base + 1000, 10.2), (base + 30_000, 9.9),
            (base + 60_000, 10.1)]  # fmt: skip
    for ts, p in rows:
        bt.feed_tick(Tick("X", ts, p, None, None, 100), Indicators(None, None, None))
    bt.finish()
    bars = [s for s in bt.strategy.seen if s[0] == "bar"]  # type: ignore[attr-defined]
    # minute 0 from the final row of each second: 10.0, 10.2 (replaced 10.4), 9.9
    assert bars[0] == ("bar", base, 10.0, 10.2, 9.9, 9.9, 300)
    assert bars[1] == ("bar", base + 60_000, 10.1, 10.1, 10.1, 10.1, 100)  # flushed at the end


def test_bad_cli_input_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def run(*argv: str) -> int:
        args = build_parser().parse_args(["backtest", *argv, "--out", str(tmp_path / "o.json")])
        return int(args.func(args))

    assert run("nope_h17.module") == 2
    assert "not found" in capsys.readouterr().err
    assert run("streamdesk.strategy.examples.sma_vwap", "--tickers", "X") == 2
    assert "--from and --to are required" in capsys.readouterr().err
    assert run("streamdesk.strategy.examples.sma_vwap", "--recording", "x", "--param", "qty=1") == 2
    assert "unknown parameter(s) qty" in capsys.readouterr().err
    assert run("streamdesk.strategy.examples.sma_vwap", "--recording", str(tmp_path / "no")) == 1
    assert "cannot be opened" in capsys.readouterr().err
    assert not (tmp_path / "o.json").exists()
