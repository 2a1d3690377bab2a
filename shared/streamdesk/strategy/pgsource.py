"""Stored history from Postgres, streamed with a server-side cursor (bounded memory).

``bars_1m`` gives :class:`~streamdesk.strategy.api.Bar` s; ``equity_data`` joined with
``indicators`` gives per-second rows with the indicator values the service wrote. Both in
time order, then ticker, between ``start`` (inclusive) and ``end`` (exclusive).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime

import asyncpg

from streamdesk.strategy.api import Bar, Indicators, Tick

BARS_SQL = """
SELECT ticker, (extract(epoch FROM bucket) * 1000)::bigint AS ts,
       open, high, low, close, volume, vwap
FROM bars_1m
WHERE ticker = ANY($1::text[]) AND bucket >= $2 AND bucket < $3
ORDER BY bucket, ticker
"""

SECONDS_SQL = """
SELECT e.ticker, (extract(epoch FROM e."timestamp") * 1000)::bigint AS ts,
       e.price, e.volume, e.bid, e.ask, i.sma9, i.vwap, i.ema9, i.ticker IS NOT NULL AS has_ind
FROM equity_data e
LEFT JOIN indicators i ON i.ticker = e.ticker AND i."timestamp" = e."timestamp"
WHERE e.ticker = ANY($1::text[]) AND e."timestamp" >= $2 AND e."timestamp" < $3
ORDER BY e."timestamp", e.ticker
"""


async def stream_bars(
    conn: asyncpg.Connection,
    tickers: Sequence[str],
    start: datetime,
    end: datetime,
    prefetch: int = 5000,
) -> AsyncIterator[Bar]:
    """The ``bars_1m`` rows of ``tickers`` in ``[start, end)``, ``prefetch`` rows a fetch."""
    async with conn.transaction(readonly=True):
        async for r in conn.cursor(BARS_SQL, list(tickers), start, end, prefetch=prefetch):
            yield Bar(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7])


async def stream_seconds(
    conn: asyncpg.Connection,
    tickers: Sequence[str],
    start: datetime,
    end: datetime,
    prefetch: int = 5000,
) -> AsyncIterator[tuple[Tick, Indicators | None]]:
    """The ``equity_data`` rows of ``tickers`` in ``[start, end)`` with their stored
    indicators (``None`` where the second has no ``indicators`` row)."""
    async with conn.transaction(readonly=True):
        async for r in conn.cursor(SECONDS_SQL, list(tickers), start, end, prefetch=prefetch):
            ind = Indicators(r[6], r[7], r[8]) if r[9] else None
            yield Tick(r[0], r[1], r[2], r[4], r[5], r[3]), ind


BAR_MAP_SQL = """
SELECT b.ticker, (extract(epoch FROM b.bucket) * 1000)::bigint AS ts,
       b.open, b.high, b.low, b.close, b.volume, b.vwap, i.sma9, i.vwap, i.ema9
FROM bars_1m b
LEFT JOIN LATERAL (
    SELECT sma9, vwap, ema9 FROM indicators
    WHERE ticker = b.ticker AND "timestamp" >= b.bucket
      AND "timestamp" < b.bucket + interval '1 minute'
    ORDER BY "timestamp" DESC LIMIT 1
) i ON true
WHERE b.ticker = ANY($1::text[]) AND b.bucket >= $2 AND b.bucket < $3
"""


async def load_bar_map(
    conn: asyncpg.Connection, tickers: Sequence[str], start: datetime, end: datetime
) -> dict[tuple[str, int], tuple[Bar, Indicators]]:
    """The ``bars_1m`` rows in ``[start, end)`` with the indicators of each bar's last second,
    keyed by ``(ticker, minute_ms)``: what the live runtime reads when a minute finishes
    (for the span of a recording; its size is minutes x tickers)."""
    out: dict[tuple[str, int], tuple[Bar, Indicators]] = {}
    for r in await conn.fetch(BAR_MAP_SQL, list(tickers), start, end):
        out[(r[0], r[1])] = (
            Bar(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]),
            Indicators(r[8], r[9], r[10]),
        )
    return out
