"""Strategies used by the live-runtime tests (importable by module path, also by a
subprocess with this directory on PYTHONPATH)."""

from __future__ import annotations

from dataclasses import dataclass

from streamdesk.strategy.api import Bar, Fill, Indicators, OrderUpdate, Strategy


class BuyOnFirstBar(Strategy):
    """Buys ``qty`` at the first finished bar, once (remembered in ``ctx.state``)."""

    name = "buy_on_first_bar"

    @dataclass(frozen=True)
    class Params:
        qty: int = 10

    def on_bar(self, bar: Bar, ind: Indicators) -> None:
        if not self.ctx.state.get("bought"):
            self.buy(bar.ticker, self.params.qty, "entry")
            self.ctx.state["bought"] = bar.ts


class BuyEveryBar(Strategy):
    """Buys ``qty`` at every finished bar; records what it hears."""

    name = "buy_every_bar"

    @dataclass(frozen=True)
    class Params:
        qty: int = 1

    def on_bar(self, bar: Bar, ind: Indicators) -> None:
        self.ctx.state.setdefault("bars", []).append([bar.ts, bar.close, ind.sma9])
        self.buy(bar.ticker, self.params.qty, "bar")

    def on_fill(self, fill: Fill) -> None:
        self.ctx.state.setdefault("fills", []).append([fill.key, fill.quantity, fill.price])

    def on_order_update(self, update: OrderUpdate) -> None:
        self.ctx.state.setdefault("updates", []).append([update.key, update.status])


class Boom(Strategy):
    """Raises at the first bar."""

    name = "boom"

    def on_bar(self, bar: Bar, ind: Indicators) -> None:
        raise RuntimeError("strategy bug")
