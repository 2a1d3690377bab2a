"""The backtester: stored history through the indicator engine and a strategy, with the shared
fill model (docs/strategies.md, "Backtest").

Push-based: :meth:`Backtester.feed_bar` / :meth:`Backtester.feed_tick` take one event at a
time (the Postgres reader streams them from a server-side cursor, a recording is read line by
line), so memory is bounded by the number of equity samples (one per ``equity_interval_ms``),
not by the number of events. :meth:`Backtester.finish` returns a :class:`BacktestResult`.

Event order. For a bar: orders of its ticker that are eligible by the bar's start are matched
against it (:func:`~streamdesk.strategy.fills.bar_fill`), then the indicators are updated and
``on_bar`` runs with ``now_ms`` = the bar's end (when a live runtime would know it finished).
For a per-second row: eligible orders are matched against its quote, then ``on_bar`` runs for
the bar the row finished (:class:`~streamdesk.strategy.replay.TickBars`), then ``on_tick``;
``now_ms`` is the row's second. An order is never matched against the event during which it
was submitted. Order updates a strategy causes itself (a cancel) are delivered after its
handler returns; fills and ``FILLED``/``REJECTED`` updates when the order is matched.
"""

from __future__ import annotations

import logging
import math
from array import array
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from streamdesk.sessions import SessionCalendar
from streamdesk.strategy.api import (
    Bar,
    Fill,
    Indicators,
    OrderRequest,
    OrderUpdate,
    Strategy,
    Tick,
)
from streamdesk.strategy.backtest_context import BacktestContext
from streamdesk.strategy.fills import FillModel, bar_fill, touch_fill
from streamdesk.strategy.replay import NO_INDICATORS, IndicatorReplay, TickBars
from streamdesk.strategy.results import BacktestResult, Decimator, FillRecord, RoundTrip, book

log = logging.getLogger(__name__)

IndicatorSource = Literal["auto", "engine", "stored"]


@dataclass(slots=True)
class _Order:
    req: OrderRequest
    submitted: int
    eligible: int
    seq: int


class Backtester:
    """One strategy over one replay (see the module docstring)."""

    def __init__(
        self,
        strategy_cls: type[Strategy],
        params: Mapping[str, Any] | None = None,
        *,
        tickers: Iterable[str] = (),
        cash: float = 100_000.0,
        fill_model: FillModel | None = None,
        calendar: SessionCalendar | None = None,
        bar_seconds: int = 60,
        indicators: IndicatorSource = "auto",
        equity_interval_ms: int | None = None,
        price_points: int = 1500,
        progress: Callable[[int, int], None] | None = None,
        bar_source: Callable[[str, int], tuple[Bar, Indicators] | None] | None = None,
        progress_every: int = 1 << 17,
        max_logs: int = 1000,
    ) -> None:
        if not (cash > 0 and math.isfinite(cash)):
            raise ValueError(f"cash must be positive and finite, not {cash!r}")
        if bar_seconds <= 0:
            raise ValueError("bar_seconds must be positive")
        self.calendar = calendar or SessionCalendar()
        self.fills_model = fill_model or FillModel()
        self.bar_ms = bar_seconds * 1000
        self.indicator_source = indicators
        self.equity_interval = equity_interval_ms or self.bar_ms
        self.replay = IndicatorReplay(self.calendar, bar_seconds)
        self.tick_bars = TickBars(bar_seconds)
        self.initial_cash = float(cash)
        self.cash = float(cash)
        self.now_ms = 0
        self.positions: dict[str, int] = {}
        self.avg_prices: dict[str, float] = {}
        self.last: dict[str, float] = {}
        self.orders: dict[str, _Order] = {}
        self.by_ticker: dict[str, list[str]] = {}
        self.keys: set[str] = set()
        self.seq = 0
        self.fills: list[FillRecord] = []
        self.trips: list[RoundTrip] = []
        self.open_trips: dict[str, RoundTrip] = {}
        self.rejected: list[dict[str, Any]] = []
        self.cancelled = 0
        self.deferred: list[OrderUpdate] = []
        self.events = 0
        self.dropped = 0
        self.first_ts: int | None = None
        self.last_ts: dict[str, int] = {}
        self.pending_rows: dict[str, Tick] = {}
        self.clock = 0
        self.bucket = -1
        self.equity_ts: array[int] = array("q")
        self.equity: array[float] = array("d")
        self.exposed = 0
        self.price_points = price_points
        self.prices: dict[str, Decimator] = {}
        self.progress = progress
        self.bar_source = bar_source
        self.minutes: dict[str, int] = {}
        self.progress_every = progress_every
        self.max_logs = max_logs
        self.log_lines = 0
        self.ctx = BacktestContext(self)
        self.strategy = strategy_cls(self.ctx, params)
        self.params = _params_dict(self.strategy.params)
        wanted = tuple(self.strategy.tickers) or tuple(tickers)
        self.tickers = tuple(dict.fromkeys(t.upper() for t in wanted))
        if not self.strategy.tickers:
            self.strategy.tickers = self.tickers  # what flatten() without a ticker covers
        # None: every ticker fed (a recording replayed whole)
        self.wanted: frozenset[str] | None = frozenset(self.tickers) if self.tickers else None
        self.started = False

    # --- Context operations -----------------------------------------------------------

    def submit(self, order: OrderRequest) -> str:
        """See :meth:`Context.submit`."""
        if not isinstance(order, OrderRequest):
            raise TypeError(f"submit() takes an OrderRequest, not {type(order).__name__}")
        if order.key in self.keys:
            return order.key
        self.keys.add(order.key)
        self.seq += 1
        self.orders[order.key] = _Order(
            order, self.now_ms, self.now_ms + self.fills_model.latency_ms, self.seq
        )
        self.by_ticker.setdefault(order.ticker, []).append(order.key)
        return order.key

    def cancel(self, key: str) -> None:
        """See :meth:`Context.cancel`."""
        o = self.orders.pop(key, None)
        if o is None:
            return
        self.by_ticker[o.req.ticker].remove(key)
        self.cancelled += 1
        self.deferred.append(OrderUpdate(key, "CANCELLED", 0, None, None))

    # --- events -----------------------------------------------------------------------

    def _start(self) -> None:
        self.started = True
        self.strategy.on_start()
        self._deliver()

    def _clock(self, ticker: str, ts: int, now: int, same: bool = False) -> bool:
        """Advance to an event of ``ticker`` at ``ts`` (handled at ``now``); False (the event is
        dropped and counted) if it is not later than that ticker's previous event (``same``:
        not earlier; a second committed again)."""
        prev = self.last_ts.get(ticker)
        if prev is not None and (ts < prev or (ts == prev and not same)):
            self.dropped += 1
            return False
        self.last_ts[ticker] = ts
        if self.first_ts is None:
            self.first_ts = ts
        if now // self.equity_interval > self.bucket:
            self._new_bucket(now)
        if now > self.clock:
            self.clock = now
        self.events += 1
        if self.progress is not None and self.events % self.progress_every == 0:
            self.progress(self.events, ts)
        return True

    def feed_bar(self, bar: Bar, ind: Indicators | None = None) -> None:
        """One finished bar (in time order across tickers). ``ind``: the indicator values to
        use (``None``: computed by the engine)."""
        t = bar.ticker
        w = self.wanted
        if w is not None and t not in w:
            return
        if not self.started:
            self._start()
        # _clock(), inlined: this is the per-bar hot path
        ts = bar.ts
        prev = self.last_ts.get(t)
        if prev is not None and ts <= prev:
            self.dropped += 1
            return
        self.last_ts[t] = ts
        now = ts + self.bar_ms
        if now // self.equity_interval > self.bucket:
            self._new_bucket(now)
        if now > self.clock:
            self.clock = now
        self.events += 1
        if self.progress is not None and self.events % self.progress_every == 0:
            self.progress(self.events, ts)
        if self.by_ticker.get(t):
            self._match_bar(bar)
        if ind is None or self.indicator_source == "engine":
            ind = self.replay.bar(bar)
        self.last[t] = bar.close
        p = self.prices.get(t)
        if p is None:
            p = self.prices[t] = Decimator(self.price_points)
        p.add(now, bar.close)
        self.now_ms = now
        self.strategy.on_bar(bar, ind)
        if self.deferred:
            self._deliver()

    def feed_tick(self, tick: Tick, ind: Indicators | None = None) -> None:
        """One committed per-second row (in time order per ticker). ``ind``: the row's stored
        indicators; ``indicators="engine"`` (or ``"auto"`` with ``ind=None``) computes them
        with the engine instead; ``"stored"`` with ``ind=None`` gives all-``None`` values."""
        t = tick.ticker
        w = self.wanted
        if w is not None and t not in w:
            return
        if not self.started:
            self._start()
        src = self.indicator_source
        if src == "engine" or (ind is None and src == "auto"):
            ind = self._engine_row(tick)
        elif ind is None:
            ind = NO_INDICATORS  # "stored", and the row has none
        finished, deliver = self.tick_bars.push(tick, ind)
        if not deliver:
            return
        if self.bar_source is not None:
            finished = self._stored_bar(t, tick.ts)
        if not self._clock(t, tick.ts, tick.ts, same=True):
            return
        if self.by_ticker.get(t):
            self._match_tick(tick)
        if tick.price is not None:
            self.last[t] = tick.price
            p = self.prices.get(t)
            if p is None:
                p = self.prices[t] = Decimator(self.price_points)
            p.add(tick.ts, tick.price)
        self.now_ms = tick.ts
        if finished is not None:
            self.strategy.on_bar(*finished)
            if self.deferred:
                self._deliver()
        if tick.price is not None:  # as live: a row without a price is no tick
            self.strategy.on_tick(tick, ind)
            if self.deferred:
                self._deliver()

    def _stored_bar(self, ticker: str, ts: int) -> tuple[Bar, Indicators] | None:
        """With a ``bar_source`` (as the live runtime reads ``bars_1m``): a row of a later
        minute than the ticker's current one finishes that minute; its stored bar, if any."""
        minute = ts - ts % self.bar_ms
        current = self.minutes.get(ticker)
        if current is None or minute > current:
            self.minutes[ticker] = minute
        if current is None or minute <= current:
            return None
        assert self.bar_source is not None
        return self.bar_source(ticker, current)

    def _engine_row(self, tick: Tick) -> Indicators:
        """Indicators of a row computed by the engine: the ticker's previous second is folded
        when a later one arrives and the current one is peeked (as the service writes a
        provisional row), so a second committed twice is not counted twice. The second's sum
        of price x shares is approximated by the row's price x volume."""
        t = tick.ticker
        prev = self.pending_rows.get(t)
        if prev is not None:
            if tick.ts < prev.ts:
                return NO_INDICATORS  # an older row: dropped by TickBars
            if tick.ts > prev.ts and prev.price is not None:
                self.replay.second(t, prev.ts, prev.price, prev.price * prev.volume, prev.volume)
        self.pending_rows[t] = tick
        if tick.price is None:
            return self.replay.values(t)
        return self.replay.peek(t, tick.ts, tick.price, tick.price * tick.volume, tick.volume)

    def _deliver(self) -> None:
        while self.deferred:
            batch, self.deferred = self.deferred, []
            for u in batch:
                self.strategy.on_order_update(u)

    # --- matching ---------------------------------------------------------------------

    def _match_bar(self, bar: Bar) -> None:
        keys = self.by_ticker[bar.ticker]
        for key in list(keys):
            o = self.orders.get(key)
            if o is None or o.eligible > bar.ts or o.submitted > bar.ts:
                continue
            r = o.req
            price = bar_fill(
                r.order_type, r.side == "BUY", bar.open, bar.high, bar.low, r.limit_price
            )
            if price is not None:
                self._fill(o, price, bar.ts)

    def _match_tick(self, tick: Tick) -> None:
        px = tick.price
        bid = tick.bid if tick.bid is not None else px
        ask = tick.ask if tick.ask is not None else px
        if bid is None or ask is None:
            return
        for key in list(self.by_ticker[tick.ticker]):
            o = self.orders.get(key)
            if o is None or o.eligible > tick.ts or o.submitted > tick.ts:
                continue
            r = o.req
            price = touch_fill(r.order_type, r.side == "BUY", bid, ask, r.limit_price)
            if price is not None:
                self._fill(o, price, tick.ts)

    def _fill(self, o: _Order, raw: float, ts: int) -> None:
        r = o.req
        buy = r.side == "BUY"
        fm = self.fills_model
        price = fm.slipped(raw, buy, r.limit_price)
        qty = r.quantity
        commission = fm.commission(qty, price)
        self.orders.pop(r.key)
        self.by_ticker[r.ticker].remove(r.key)
        if buy and qty * price + commission > self.cash + 1e-9:
            # market-sim's rule: a buy the cash can no longer pay is rejected at fill time
            error = "insufficient cash at fill time"
            self.rejected.append({"key": r.key, "ts": ts, "error": error})
            self.now_ms = ts
            self.strategy.on_order_update(OrderUpdate(r.key, "REJECTED", 0, None, error))
            return
        self.cash -= (qty * price if buy else -qty * price) + commission
        self._book(r.ticker, qty if buy else -qty, price, commission, ts)
        self.fills.append(
            FillRecord(
                r.key, r.ticker, r.side, qty, price, commission, ts, o.submitted, r.order_type
            )
        )
        self.now_ms = ts
        self.strategy.on_fill(Fill(r.key, r.ticker, r.side, qty, price, ts))
        self.strategy.on_order_update(OrderUpdate(r.key, "FILLED", qty, price, None))

    def _book(self, ticker: str, signed: int, price: float, commission: float, ts: int) -> None:
        book(self.positions, self.avg_prices, self.open_trips, self.trips,
             ticker, signed, price, commission, ts)  # fmt: skip

    # --- equity -----------------------------------------------------------------------

    def equity_now(self) -> float:
        """Cash plus the open positions marked at the last prices."""
        eq = self.cash
        last = self.last
        for t, q in self.positions.items():
            eq += q * last.get(t, self.avg_prices.get(t, 0.0))
        return eq

    def _new_bucket(self, now: int) -> None:
        if self.bucket >= 0:
            self._sample()
        if self.first_ts is None:
            self.first_ts = now - self.bar_ms
        self.bucket = now // self.equity_interval

    def _sample(self) -> None:
        self.equity_ts.append(self.clock)
        self.equity.append(self.equity_now())
        if self.positions:
            self.exposed += 1

    def finish(self) -> BacktestResult:
        """End the replay: bars still forming (per-second input) are delivered, the last
        equity sample is taken, and the result is returned. Open positions stay open
        (marked at the last price)."""
        if not self.started:
            self._start()
        flushed = self.tick_bars.flush()
        for bar, ind in flushed if self.bar_source is None else ():
            self.now_ms = max(self.now_ms, bar.ts + self.bar_ms)
            self.strategy.on_bar(bar, ind)
            self._deliver()
        if self.events:
            self._sample()
        return BacktestResult(
            strategy=self.strategy.name,
            params=self.params,
            tickers=list(self.tickers) or sorted(self.last_ts),
            initial_cash=self.initial_cash,
            final_cash=self.cash,
            fill_model=self.fills_model,
            events=self.events,
            first_ts=self.first_ts,
            last_ts=self.clock if self.events else None,
            fills=self.fills,
            round_trips=self.trips,
            open_trips=[self.open_trips[t] for t in sorted(self.open_trips)],
            positions=dict(sorted(self.positions.items())),
            last_prices=dict(sorted(self.last.items())),
            equity_ts=self.equity_ts,
            equity=self.equity,
            exposed=self.exposed,
            rejected=self.rejected,
            cancelled=self.cancelled,
            unfilled=[o.req.key for o in sorted(self.orders.values(), key=lambda o: o.seq)],
            logs=self.ctx.logs,
            log_lines=self.log_lines,
            dropped_events=self.dropped + self.tick_bars.dropped,
            prices=self.prices,
            calendar=self.calendar,
        )


def _params_dict(params: Any) -> dict[str, Any]:
    import dataclasses

    if dataclasses.is_dataclass(params) and not isinstance(params, type):
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(params).items()
        }
    return {}
