"""Which minute a ticker's committed rows are in, and when a minute is finished.

The committed message carries the latest committed row per ticker of a flush; a row of a
later minute means the earlier minute is complete in Postgres (the writer commits a ticker's
seconds in order and writes the minute's ``bars_1m`` row in the same transaction), so the
runtime then reads the finished bar from ``bars_1m`` and the indicators at its last second.
"""

from __future__ import annotations

MINUTE_MS = 60_000


def minute_of(ts_ms: int) -> int:
    """Start of the minute holding ``ts_ms`` (epoch ms)."""
    return ts_ms - ts_ms % MINUTE_MS


class MinuteTracker:
    """The current minute per ticker (bounded by the tickers followed); JSON-able."""

    def __init__(self, minutes: dict[str, int] | None = None) -> None:
        self.minutes: dict[str, int] = dict(minutes or {})

    def advance(self, ticker: str, ts_ms: int) -> int | None:
        """Record a committed row of ``ticker`` at ``ts_ms``; return the start of the minute
        it finishes (the ticker's previous minute), or None (same minute, first row, or a
        row older than the current minute: a late re-commit, ignored for bars)."""
        minute = minute_of(ts_ms)
        current = self.minutes.get(ticker)
        if current is None:
            self.minutes[ticker] = minute
            return None
        if minute <= current:
            return None
        self.minutes[ticker] = minute
        return current
