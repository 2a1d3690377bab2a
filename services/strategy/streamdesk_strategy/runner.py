"""One live strategy: its :class:`LiveContext`, limits, positions and order read-back.

A :class:`Runner` turns committed messages into ``on_bar``/``on_tick`` calls, collects what
the strategy asks for in a :class:`~streamdesk_strategy.store.Decision`, and applies the
order rows it reads back (fills, status changes) as ``on_fill``/``on_order_update``. It does
no I/O itself except through the callables the service gives it, so its logic is tested
without a database.

Limits (per strategy row): ``quantity_max`` per order and ``max_position`` (absolute position
plus open orders) refuse the one order (an alert, the strategy keeps running);
``max_orders_per_day`` and ``max_loss_per_day`` (realized today + unrealized at the last
committed price, New York day) disable the strategy with an alert.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from streamdesk.messages import CommittedMessage
from streamdesk.pnl import Book, signed_quantity
from streamdesk.strategy.api import (
    Fill,
    Indicators,
    OrderRequest,
    OrderUpdate,
    Strategy,
    StrategyError,
    Tick,
    load_strategy,
)

from .bars import MinuteTracker
from .context import (
    FINAL,
    KEYS_REMEMBERED,
    STATUS_WORDS,
    BarFetch,
    LiveContext,
    Tracked,
    check_order,
    ny_day,
    request_of,
    stream_id,
)
from .store import Decision, NewOrder, OrderRow, StrategyRow

log = logging.getLogger(__name__)


class Runner:
    """One strategy row running live (see the module docstring)."""

    def __init__(self, row: StrategyRow, *, paper: bool, today: date) -> None:
        self.row = row
        self.sid = row.id
        self.paper = paper
        self.enabled = row.enabled
        self.state: dict[str, Any] = dict(row.state)
        self._state_json = json.dumps(self.state, sort_keys=True)
        rt = row.runtime
        self.cursor: str | None = rt.get("cursor")
        self.minutes = MinuteTracker({k: int(v) for k, v in dict(rt.get("minutes", {})).items()})
        self._minutes_json = json.dumps(self.minutes.minutes, sort_keys=True)
        self.seen: dict[int, tuple[int, str]] = {
            int(k): (int(v[0]), str(v[1])) for k, v in dict(rt.get("seen", {})).items()
        }
        self.books: dict[str, Book] = {}
        self.last_price: dict[str, float] = {}
        self.last_row: dict[str, tuple[Any, ...]] = {}
        self.open: dict[int, Tracked] = {}
        # Average fill price last seen per open order (prices a partial fill's delta).
        self._avg: dict[int, float] = {}
        self.buffer = Decision()
        self.buffer_requests: list[OrderRequest] = []
        self.updates: list[OrderUpdate] = []
        self.keys: OrderedDict[str, None] = OrderedDict()
        self.day = today
        self.orders_today = 0
        self.realized_today = Decimal(0)
        self.now_ms = 0
        self.disable_request: tuple[str, str, dict[str, Any]] | None = None
        self.alerts: list[tuple[str, str, dict[str, Any]]] = []
        self.counters: dict[str, int] = {
            "bars": 0, "ticks": 0, "orders": 0, "duplicates": 0, "refused": 0, "fills": 0,
            "errors": 0, "bars_missing": 0,
        }  # fmt: skip
        self.strategy: Strategy | None = None
        self.tickers: frozenset[str] = frozenset(row.tickers)
        self.ctx = LiveContext(self)

    # ------------------------------------------------------------------ set-up

    def load(self, max_tickers: int = 10_000) -> None:
        """Import and build the strategy; :class:`StrategyError` if it cannot be (or trades
        more than ``max_tickers``)."""
        cls = load_strategy(self.row.module)
        strategy = cls(self.ctx, self.row.params)
        if self.row.tickers:
            strategy.tickers = tuple(self.row.tickers)
        if not strategy.tickers:
            raise StrategyError(f"{self.sid}: no tickers (set strategies.tickers)")
        if len(strategy.tickers) > max_tickers:
            raise StrategyError(f"{len(strategy.tickers)} tickers: more than {max_tickers}")
        self.tickers = frozenset(strategy.tickers)
        self.strategy = strategy

    def restore(self, filled: list[OrderRow], open_rows: list[OrderRow], orders_today: int,
                now: datetime) -> None:  # fmt: skip
        """Positions from the strategy's fills (as far as ``on_fill`` was delivered: the
        ``seen`` quantities), open orders, today's order count and realized P&L."""
        self.orders_today = orders_today
        today = ny_day(now)
        for row in filled:
            counted = self.seen[row.id][0] if row.id in self.seen else row.filled_quantity
            if counted <= 0 or row.avg_fill_price is None:
                continue
            book = self.books.setdefault(row.symbol, Book())
            gained = book.apply(
                signed_quantity(row.instruction, Decimal(counted)), Decimal(str(row.avg_fill_price))
            )
            if ny_day(row.updated_at) == today:
                self.realized_today += gained
        for row in open_rows:
            filled_seen, status_seen = self.seen.get(row.id, (row.filled_quantity, row.status))
            self._track(row, filled_seen, status_seen)

    def follow(self, rows: list[OrderRow]) -> None:
        """Rows of ``seen`` orders that became final while the runtime was down: tracked, so
        the next :meth:`apply_rows` delivers their fills and final status."""
        for row in rows:
            if row.id not in self.open and row.id in self.seen:
                filled_seen, status_seen = self.seen[row.id]
                self._track(row, filled_seen, status_seen)

    def _track(self, row: OrderRow, filled: int, status: str) -> None:
        key = row.client_order_id.removeprefix(f"{self.sid}:")
        req = request_of(key, row.symbol, row.instruction, row.quantity, row.order_type,
                         row.limit_price)  # fmt: skip
        self.open[row.id] = Tracked(row.id, req, filled, status)
        if filled and row.avg_fill_price is not None:
            self._avg[row.id] = row.avg_fill_price
        self._remember(key)

    def start(self) -> None:
        """``on_start`` once (state restored)."""
        if self.strategy is not None:
            self._call("on_start")

    # ------------------------------------------------------------------ events

    async def handle(self, msg_id: str, msg: CommittedMessage, fetch_bar: BarFetch) -> None:
        """One committed message: finished bars first, then the tick, per followed ticker."""
        if self.cursor is not None and stream_id(msg_id) <= stream_id(self.cursor):
            return  # already handled before a restart
        for row in msg["equity"]:
            ticker = row["ticker"]
            if ticker not in self.tickers:
                continue
            # (ticker, ts) is a key: an older row or the same row again is not new (the
            # backtester's TickBars rule); a changed row of the latest second is.
            key = (row["ts"], row["price"], row["bid"], row["ask"], row["volume"], row["sma9"],
                   row["vwap"], row["ema9"])  # fmt: skip
            last = self.last_row.get(ticker)
            if last is not None and (key[0] < last[0] or key == last):
                continue
            self.last_row[ticker] = key
            if row["price"] is not None:
                self.last_price[ticker] = row["price"]
            finished = self.minutes.advance(ticker, row["ts"])
            if finished is not None and self.active:
                bar, ind = await fetch_bar(ticker, finished)
                if bar is None:
                    self.counters["bars_missing"] += 1
                else:
                    # the row that finished the minute is "now", as in a backtest fed rows
                    self.now_ms = row["ts"]
                    self.counters["bars"] += 1
                    self._call("on_bar", bar, ind)
            if self.active and row["price"] is not None:
                self.now_ms = row["ts"]
                self.counters["ticks"] += 1
                tick = Tick(ticker, row["ts"], row["price"], row["bid"], row["ask"], row["volume"])
                self._call("on_tick", tick, Indicators(row["sma9"], row["vwap"], row["ema9"]))
        self.cursor = msg_id
        self.check_loss()

    @property
    def active(self) -> bool:
        """Enabled, loaded, and not being disabled."""
        return self.enabled and self.strategy is not None and self.disable_request is None

    def _call(self, name: str, *args: Any) -> None:
        """Call a strategy method; an exception disables the strategy (its bug, not ours)."""
        assert self.strategy is not None
        try:
            getattr(self.strategy, name)(*args)
        except Exception as exc:
            self.counters["errors"] += 1
            log.exception("strategy %s raised in %s", self.sid, name)
            self.request_disable(
                "error", f"{name} raised {type(exc).__name__}: {exc}"[:500], {"method": name}
            )
            return
        while self.updates and self.active:
            update = self.updates.pop(0)
            self._call("on_order_update", update)
        self.updates.clear()

    # ------------------------------------------------------------------ orders

    def _remember(self, key: str) -> None:
        self.keys[key] = None
        self.keys.move_to_end(key)
        while len(self.keys) > KEYS_REMEMBERED:
            self.keys.popitem(last=False)

    def open_requests(self) -> list[OrderRequest]:
        """Open orders (the database's, then those not yet written), oldest first."""
        cancelled = set(self.buffer.cancels)
        return [t.request for t in self.open.values() if t.trade_id not in cancelled] + list(
            self.buffer_requests
        )

    def exposure(self, ticker: str) -> int:
        """Position plus the unfilled signed remainder of the open orders of ``ticker``."""
        book = self.books.get(ticker)
        total = int(book.quantity) if book else 0
        for t in self.open.values():
            if t.request.ticker == ticker and t.trade_id not in self.buffer.cancels:
                rest = t.request.quantity - t.filled
                total += rest if t.request.side == "BUY" else -rest
        for r in self.buffer_requests:
            if r.ticker == ticker:
                total += r.quantity if r.side == "BUY" else -r.quantity
        return total

    def submit(self, order: OrderRequest) -> None:
        """Buffer ``order`` after the limits; a known key is a no-op."""
        if order.key in self.keys:
            return
        orders = self.orders_today + len(self.buffer.orders)
        refused = check_order(self.row, order, self.active, self.tickers,
                              self.exposure(order.ticker), orders)  # fmt: skip
        if refused is not None:
            kind, reason = refused
            self._refuse(order, reason, kind="max_position" if kind == "max_position" else "")
            if kind == "max_orders_per_day":
                self.request_disable(kind, f"disabled: max_orders_per_day "
                                     f"{self.row.max_orders_per_day} reached",
                                     {"orders_today": self.orders_today})  # fmt: skip
            return
        self._remember(order.key)
        self.buffer_requests.append(order)
        self.buffer.orders.append(self.new_order(order))

    def new_order(self, order: OrderRequest) -> NewOrder:
        """The trade row of ``order``."""
        return NewOrder(
            client_order_id=f"{self.sid}:{order.key}",
            symbol=order.ticker,
            instruction=order.side,
            quantity=order.quantity,
            order_type=order.order_type,
            limit_price=order.limit_price,
        )

    def _refuse(self, order: OrderRequest, reason: str, kind: str = "") -> None:
        self.counters["refused"] += 1
        log.warning("strategy %s: order %s refused: %s", self.sid, order.key, reason)
        if kind:
            self.alerts.append((kind, f"order {order.key} refused: {reason}", {"key": order.key}))
        self.updates.append(OrderUpdate(order.key, "REJECTED", 0, None, reason))

    def cancel(self, key: str) -> None:
        """Cancel an open order (written with the next decision); unknown keys: no-op."""
        for t in self.open.values():
            if t.request.key == key and t.trade_id not in self.buffer.cancels:
                self.buffer.cancels.append(t.trade_id)
                return
        for i, r in enumerate(self.buffer_requests):
            if r.key == key:  # never written: just dropped
                del self.buffer_requests[i]
                self.buffer.orders = [
                    o for o in self.buffer.orders if o.client_order_id != f"{self.sid}:{key}"
                ]
                self.keys.pop(key, None)
                return

    def flatten(self, requested_ms: int) -> None:
        """Cancel every open order and close every position with market orders (keys from
        the request's time, so a replayed request inserts nothing twice); then disable."""
        for t in list(self.open.values()):
            if t.trade_id not in self.buffer.cancels:
                self.buffer.cancels.append(t.trade_id)
        self.buffer_requests.clear()
        self.buffer.orders.clear()
        for ticker, book in sorted(self.books.items()):
            qty = int(book.quantity)
            if qty == 0:
                continue
            req = OrderRequest(
                key=f"flatten:{ticker}:{requested_ms}",
                ticker=ticker,
                side="SELL" if qty > 0 else "BUY",
                quantity=abs(qty),
            )
            self._remember(req.key)
            self.buffer_requests.append(req)
            self.buffer.orders.append(self.new_order(req))
        self.request_disable("flatten", "disabled: flattened by the operator", {}, alert=False)

    def request_disable(
        self, kind: str, message: str, detail: dict[str, Any], *, alert: bool = True
    ) -> None:
        """Stop calling the strategy; the service writes the disable (and alert) next."""
        if self.disable_request is None:
            self.disable_request = (kind, message, {**detail, "alert": alert})

    # ------------------------------------------------------------------ limits

    def new_day(self, today: date) -> None:
        """Reset the daily counters when the New York day changes."""
        if today != self.day:
            self.day = today
            self.orders_today = 0
            self.realized_today = Decimal(0)

    def day_pnl(self) -> Decimal:
        """Realized today plus unrealized at the last committed prices."""
        total = self.realized_today
        for ticker, book in self.books.items():
            price = self.last_price.get(ticker)
            if book.quantity and price is not None:
                total += (Decimal(str(price)) - book.average) * book.quantity
        return total

    def check_loss(self) -> None:
        """Disable when today's loss reaches ``max_loss_per_day``."""
        if not self.enabled or self.disable_request is not None:
            return
        pnl = self.day_pnl()
        if pnl < 0 and -pnl >= self.row.max_loss_per_day:
            self.request_disable(
                "max_loss_per_day",
                f"disabled: today's P&L {pnl:.2f} reached max_loss_per_day "
                f"{self.row.max_loss_per_day}",
                {"day_pnl": str(pnl)},
            )

    # ------------------------------------------------------------------ read-back

    def apply_rows(self, rows: list[OrderRow]) -> None:
        """Fills and status changes of tracked orders -> books, ``on_fill``,
        ``on_order_update``; final orders stop being tracked."""
        for row in rows:
            t = self.open.get(row.id)
            if t is None:
                continue
            if row.filled_quantity > t.filled and row.avg_fill_price is not None:
                delta = row.filled_quantity - t.filled
                prev_avg = Decimal(str(t_avg)) if (t_avg := self._avg.get(row.id)) else Decimal(0)
                total = Decimal(str(row.avg_fill_price)) * row.filled_quantity
                price = (total - prev_avg * t.filled) / delta
                self._avg[row.id] = row.avg_fill_price
                book = self.books.setdefault(row.symbol, Book())
                self.realized_today += book.apply(
                    signed_quantity(row.instruction, Decimal(delta)), price
                )
                t.filled = row.filled_quantity
                self.counters["fills"] += 1
                fill = Fill(
                    t.request.key,
                    row.symbol,
                    t.request.side,
                    delta,
                    float(price),
                    int(row.updated_at.astimezone(UTC).timestamp() * 1000),
                )
                self.now_ms = max(self.now_ms, fill.ts)
                if self.active:
                    self._call("on_fill", fill)
            if row.status != t.status:
                t.status = row.status
                word = STATUS_WORDS.get(row.status, row.status.upper())
                update = OrderUpdate(
                    t.request.key, word, row.filled_quantity, row.avg_fill_price, row.error
                )
                if self.active:
                    self._call("on_order_update", update)
            if row.status in FINAL:
                del self.open[row.id]
                self._avg.pop(row.id, None)
        self.check_loss()

    # ------------------------------------------------------------------ persistence

    def take_decision(self, *, force: bool) -> Decision | None:
        """The decision to write now (None: nothing changed and no checkpoint due)."""
        state_json = json.dumps(self.state, sort_keys=True)
        minutes_json = json.dumps(self.minutes.minutes, sort_keys=True)
        changed = state_json != self._state_json
        moved = minutes_json != self._minutes_json
        if not (self.buffer.orders or self.buffer.cancels or changed or moved or force):
            return None
        decision = self.buffer
        decision.state = self.state if changed else None
        decision.runtime = self.runtime()
        self.buffer = Decision()
        self.buffer_requests = []
        self._state_json = state_json
        self._minutes_json = minutes_json
        return decision

    def runtime(self) -> dict[str, Any]:
        """The resume point: committed-stream id, current minutes, fills seen of open orders."""
        return {
            "cursor": self.cursor,
            "minutes": dict(self.minutes.minutes),
            "seen": {str(t.trade_id): [t.filled, t.status] for t in self.open.values()},
        }

    def written(self, results: list[tuple[NewOrder, int | None]], existing: list[OrderRow]) -> None:
        """Track the inserted orders (and, for replayed ids, the existing rows)."""
        by_coid = {r.client_order_id: r for r in existing}
        for order, tid in results:
            key = order.client_order_id.removeprefix(f"{self.sid}:")
            if tid is not None:
                self.counters["orders"] += 1
                if not key.startswith("flatten:"):
                    self.orders_today += 1
                req = request_of(key, order.symbol, order.instruction, order.quantity,
                                 order.order_type, order.limit_price)  # fmt: skip
                self.open[tid] = Tracked(tid, req, 0, "pending")
            else:
                self.counters["duplicates"] += 1
                row = by_coid.get(order.client_order_id)
                if row is not None and row.status not in FINAL and row.id not in self.open:
                    self._track(row, 0, "pending")
