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
