"""The live :class:`~streamdesk.strategy.api.Context` and the small types the runner uses.

:class:`LiveContext` is what a strategy sees live: it forwards to its :class:`Runner`
(``runner.py``), which holds the state, the positions and the buffered decision.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from streamdesk.strategy.api import Bar, Indicators, OrderRequest, Side

if TYPE_CHECKING:
    from .runner import Runner
    from .store import StrategyRow

log = logging.getLogger("streamdesk_strategy.runner")
NY = ZoneInfo("America/New_York")

#: Executor status words -> OrderUpdate statuses (others are reported as their upper case).
STATUS_WORDS = {
    "working": "ACCEPTED",
    "filled": "FILLED",
    "cancelled": "CANCELLED",
    "expired": "CANCELLED",
    "rejected": "REJECTED",
}
FINAL = frozenset({"filled", "cancelled", "expired", "rejected"})
#: Keys remembered per process for the "same key twice is a no-op" rule (the unique index on
#: client_order_id is the guarantee; this only spares a round trip).
KEYS_REMEMBERED = 10_000

BarFetch = Callable[[str, int], Awaitable[tuple[Bar | None, Indicators]]]


def stream_id(value: str) -> tuple[int, int]:
    """A Redis stream id as a comparable tuple."""
    ms, _, seq = value.partition("-")
    return int(ms), int(seq or 0)


def decode_id(value: Any) -> str:
    """A Redis stream id (bytes or str) as str."""
    return value.decode() if isinstance(value, bytes) else str(value)


def ny_midnight(at: datetime) -> datetime:
    """Midnight starting ``at``'s New York day."""
    return at.astimezone(NY).replace(hour=0, minute=0, second=0, microsecond=0)


def ny_day(at: datetime) -> date:
    """The New York calendar day of ``at``."""
    return at.astimezone(NY).date()


@dataclass(slots=True)
class Tracked:
    """An open order as last seen: the request and the row's fill/status."""

    trade_id: int
    request: OrderRequest
    filled: int
    status: str


class LiveContext:
    """The strategy's :class:`~streamdesk.strategy.api.Context` in the live runtime."""

    def __init__(self, runner: Runner) -> None:
        self._r = runner

    @property
    def now_ms(self) -> int:
        return self._r.now_ms

    @property
    def state(self) -> dict[str, Any]:
        return self._r.state

    def position(self, ticker: str) -> int:
        book = self._r.books.get(ticker)
        return int(book.quantity) if book else 0

    def avg_price(self, ticker: str) -> float | None:
        book = self._r.books.get(ticker)
        return float(book.average) if book and book.quantity else None

    def submit(self, order: OrderRequest) -> str:
        self._r.submit(order)
        return order.key

    def cancel(self, key: str) -> None:
        self._r.cancel(key)

    def open_orders(self, ticker: str | None = None) -> list[OrderRequest]:
        return [r for r in self._r.open_requests() if ticker is None or r.ticker == ticker]

    def log(self, message: str) -> None:
        log.info("[%s] %s", self._r.sid, message)


def request_of(key: str, symbol: str, instruction: str, quantity: int, order_type: str,
               limit_price: float | None) -> OrderRequest:  # fmt: skip
    """The :class:`OrderRequest` of a strategy's ``trades`` row."""
    side: Side = "BUY" if instruction.startswith("BUY") else "SELL"
    limit = order_type == "LIMIT"
    return OrderRequest(key, symbol, side, quantity, "LIMIT" if limit else "MARKET",
                        limit_price if limit else None)  # fmt: skip


def check_order(row: StrategyRow, order: OrderRequest, active: bool, tickers: frozenset[str],
                exposure: int, orders_today: int) -> tuple[str, str] | None:  # fmt: skip
    """The limit ``order`` breaks, as ``(kind, reason)``, or None. ``exposure``: the signed
    position plus open orders of the ticker; ``orders_today``: inserted and buffered."""
    if not active:
        return "disabled", "the strategy is disabled"
    if order.ticker not in tickers:
        return "ticker", f"{order.ticker} is not one of the strategy's tickers"
    if order.quantity > row.quantity_max:
        return "quantity_max", f"quantity {order.quantity} above quantity_max {row.quantity_max}"
    after = exposure + (order.quantity if order.side == "BUY" else -order.quantity)
    if abs(after) > row.max_position and abs(after) > abs(exposure):
        return "max_position", f"position would reach {after}, beyond max_position " \
            f"{row.max_position}"  # fmt: skip
    if orders_today >= row.max_orders_per_day:
        return "max_orders_per_day", f"{orders_today} orders today: max_orders_per_day " \
            f"{row.max_orders_per_day} reached"  # fmt: skip
    return None
