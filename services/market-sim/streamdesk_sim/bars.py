"""``CHART_EQUITY`` bars: formed from each equity step's trades, sent once complete."""

from __future__ import annotations

from typing import Any

from streamdesk_sim.protocol import CHART, chart_entry
from streamdesk_sim.streaming import Streamer


class ChartBars:
    """Bars of ``interval`` sim seconds per symbol; a bar is sent when its interval ends."""

    def __init__(self, interval: float, streamer: Streamer) -> None:
        self.interval_ms = int(interval * 1000)
        self.streamer = streamer
        #: Bars being formed: symbol -> [bar_start_ms, open, high, low, close, volume].
        self._bars: dict[str, list[float]] = {}
        self._seq: dict[str, int] = {}

    def update(self, changed: dict[str, dict[int, Any]], now_ms: int) -> None:
        """Add the trades of one step (``changed``: fields per symbol) at sim time ``now_ms``."""
        bar_start = now_ms - now_ms % self.interval_ms
        # Bars of earlier intervals are complete, whether or not the symbol trades now.
        done = [(sym, bar) for sym, bar in self._bars.items() if bar[0] < bar_start]
        for sym, _ in done:
            del self._bars[sym]
        for sym, ch in changed.items():
            if 3 not in ch or 9 not in ch:  # no trade (last price and size) this step
                continue
            price, size = float(ch[3]), float(ch[9])
            bar = self._bars.get(sym)
            if bar is None:
                self._bars[sym] = [bar_start, price, price, price, price, size]
            else:
                bar[2] = max(bar[2], price)
                bar[3] = min(bar[3], price)
                bar[4] = price
                bar[5] += size
        if done:
            self._send(done)

    def _send(self, done: list[tuple[str, list[float]]]) -> None:
        for conn, subs in self.streamer.subscribers(CHART):
            content = []
            for sym, bar in done:
                if sym not in subs:
                    continue
                seq = self._seq.get(sym, 0) + 1
                self._seq[sym] = seq
                content.append(chart_entry(sym, seq, bar))
            conn.data(CHART, content)
