"""Opening-range breakout: the rest of the API (state, limit orders, cancel, ``on_fill``,
``on_order_update``).

Per ticker and session day: the high and low of the first ``range_minutes`` 1-minute bars
after ``open`` (local time ``tz``) are the range. The first bar that closes above the range
high sends a BUY LIMIT at ``close * (1 + entry_slack_bps/1e4)``, cancelled if it has not
filled ``entry_timeout_bars`` bars later. When it fills (``on_fill``) a SELL LIMIT take-profit
at ``entry + target_ranges x range`` is placed; a bar that closes below the range low cancels
the take-profit and sells at market (the stop); at ``exit_at`` (local) everything still open
is cancelled and flattened. At most one entry per ticker and day. All of it lives in
``ctx.state`` (JSON), so a live restart keeps the day's range and the open order keys.

Load it as ``streamdesk.strategy.examples.opening_range:OpeningRangeBreakout``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from streamdesk.strategy.api import (
    Bar,
    Context,
    Fill,
    Indicators,
    OrderUpdate,
    Strategy,
    StrategyError,
)


def _hhmm(value: str) -> int:
    hh, _, mm = value.partition(":")
    return int(hh) * 60 + int(mm)


class OpeningRangeBreakout(Strategy):
    """The opening-range breakout (see the module docstring)."""

    name = "opening_range_breakout"

    @dataclass(frozen=True)
    class Params:
        """Parameters of :class:`OpeningRangeBreakout`."""

        quantity: int = 100
        range_minutes: int = 15
        entry_slack_bps: float = 5.0
        entry_timeout_bars: int = 3
        target_ranges: float = 1.0
        open: str = "09:30"
        exit_at: str = "15:55"
        tz: str = "America/New_York"
        tickers: tuple[str, ...] = ()

    def __init__(self, ctx: Context, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(ctx, params)
        p = self.params
        if isinstance(p.quantity, bool) or not isinstance(p.quantity, int) or p.quantity <= 0:
            raise StrategyError(f"quantity must be a positive int, not {p.quantity!r}")
        if p.range_minutes <= 0 or p.entry_timeout_bars <= 0 or p.target_ranges <= 0:
            raise StrategyError("range_minutes, entry_timeout_bars, target_ranges must be > 0")
        try:
            self._tz = ZoneInfo(p.tz)
            self._open, self._exit = _hhmm(p.open), _hhmm(p.exit_at)
        except (ValueError, KeyError) as exc:
            raise StrategyError(f"bad open/exit_at/tz: {exc}") from exc
        self._days: dict[str, dict[str, Any]] = {}
        self._by_key: dict[str, str] = {}

    def on_start(self) -> None:
        self._days = self.ctx.state.setdefault("days", {})
        self._by_key = self.ctx.state.setdefault("keys", {})

    def _local(self, ts: int) -> tuple[str, int]:
        dt = datetime.fromtimestamp(ts / 1000, UTC).astimezone(self._tz)
        return dt.date().isoformat(), dt.hour * 60 + dt.minute

    def on_bar(self, bar: Bar, ind: Indicators) -> None:
        p = self.params
        t = bar.ticker
        day, minute = self._local(bar.ts)
        s = self._days.get(t)
        if s is None or s["day"] != day:
            if s is not None and self.ctx.position(t) != 0:
                self.flatten(t, "overnight")  # a position never outlives its day
            s = self._days[t] = {"day": day, "high": None, "low": None, "phase": "range"}
        since_open = minute - self._open
        if since_open < 0:
            return
        if s["phase"] == "range":
            if since_open < p.range_minutes:
                s["high"] = bar.high if s["high"] is None else max(s["high"], bar.high)
                s["low"] = bar.low if s["low"] is None else min(s["low"], bar.low)
                return
            s["phase"] = "armed" if s["high"] is not None else "done"
        if minute >= self._exit:
            if s["phase"] in ("pending", "long"):
                self.flatten(t, "close")
                self.ctx.log(f"{t}: flat at the close")
            s["phase"] = "done"
            return
        phase = s["phase"]
        if phase == "armed" and bar.close > s["high"]:
            limit = round(bar.close * (1 + p.entry_slack_bps / 10_000), 2)
            key = self.buy(t, p.quantity, "entry", limit=limit)
            self._by_key[key] = t
            s.update(phase="pending", entry=key, bars=0)
        elif phase == "pending":
            s["bars"] += 1
            if s["bars"] >= p.entry_timeout_bars:
                self.ctx.cancel(s["entry"])
        elif phase == "long" and bar.close < s["low"]:
            if s.get("target"):
                self.ctx.cancel(s["target"])
            pos = self.ctx.position(t)
            if pos > 0:
                self.sell(t, pos, "stop")
            s["phase"] = "done"

    def on_fill(self, fill: Fill) -> None:
        t = self._by_key.pop(fill.key, None)
        s = self._days.get(fill.ticker)
        if t is None or s is None or s.get("entry") != fill.key:
            return
        target = round(fill.price + self.params.target_ranges * (s["high"] - s["low"]), 2)
        key = self.sell(fill.ticker, fill.quantity, "target", limit=target)
        s.update(phase="long", target=key)
        self.ctx.log(f"{fill.ticker}: long {fill.quantity} at {fill.price}, target {target}")

    def on_order_update(self, update: OrderUpdate) -> None:
        for t, s in self._days.items():
            if s.get("entry") == update.key and update.status in ("CANCELLED", "REJECTED"):
                self._by_key.pop(update.key, None)
                s["phase"] = "done"
                self.ctx.log(f"{t}: entry {update.status.lower()}")
            elif s.get("target") == update.key and update.status == "FILLED":
                s["phase"] = "done"
