"""The :class:`~streamdesk.strategy.api.Context` a backtest hands its strategy."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from streamdesk.strategy.api import OrderRequest

if TYPE_CHECKING:
    from streamdesk.strategy.backtest import Backtester


class BacktestContext:
    """The :class:`~streamdesk.strategy.api.Context` of a backtest."""

    def __init__(self, bt: Backtester) -> None:
        self._bt = bt
        self._state: dict[str, Any] = {}
        self.logs: list[tuple[int, str]] = []

    @property
    def now_ms(self) -> int:
        return self._bt.now_ms

    @property
    def state(self) -> dict[str, Any]:
        return self._state

    def position(self, ticker: str) -> int:
        return self._bt.positions.get(ticker, 0)

    def avg_price(self, ticker: str) -> float | None:
        return self._bt.avg_prices.get(ticker)

    def submit(self, order: OrderRequest) -> str:
        return self._bt.submit(order)

    def cancel(self, key: str) -> None:
        self._bt.cancel(key)

    def open_orders(self, ticker: str | None = None) -> list[OrderRequest]:
        bt = self._bt
        if ticker is not None:
            return [bt.orders[k].req for k in bt.by_ticker.get(ticker, ())]
        return [o.req for o in sorted(bt.orders.values(), key=lambda o: o.seq)]

    def log(self, message: str) -> None:
        if len(self.logs) < self._bt.max_logs:
            self.logs.append((self._bt.now_ms, str(message)))
        self._bt.log_lines += 1
