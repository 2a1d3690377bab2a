"""SQL of the chart reads: candles per timeframe, sessions with data, SMA9/VWAP crosses.

Sources (docs/gateway.md, "Candles"):

* ``1s``: ``equity_data`` LEFT JOIN ``indicators`` (one row per second with activity, so a 1-s
  candle's open = high = low = close = the second's last price), newest first with ``LIMIT``:
  the view walks its time grid backwards and stops after N seconds;
* ``1m`` .. ``1D``: ``bars_1m`` (OHLC of the raw ticks, written by the writer in the same
  transaction as the seconds and kept a year), rolled up with ``date_bin`` (minutes and hours:
  New York's UTC offset is a whole number of hours, so epoch-aligned bins are New York bins)
  or by New York date (1D); sma9/vwap are the bucket's last ``indicators`` row, one
  ``ORDER BY timestamp DESC LIMIT 1`` probe per bucket (a whole-session scan of the view costs
  ~0.7 s, the probes a few ms each).

A session is a New York calendar date (pre-market and after-hours included).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import asyncpg

from streamdesk.market_calendar import NEW_YORK

TF_SECONDS = {"1s": 1, "1m": 60, "5m": 300, "15m": 900, "1h": 3600, "1D": 86400}


def session_bounds_utc(day: date) -> tuple[datetime, datetime]:
    """[New York midnight of ``day``, next New York midnight) as aware UTC datetimes."""
    lo = datetime.combine(day, time(0), NEW_YORK).astimezone(UTC)
    hi = datetime.combine(day + timedelta(days=1), time(0), NEW_YORK).astimezone(UTC)
    return lo, hi


def ny_date(at: datetime) -> date:
    """The New York calendar date of an aware datetime."""
    return at.astimezone(NEW_YORK).date()


def ms(at: datetime) -> int:
    """Epoch milliseconds of an aware datetime."""
    return int(at.timestamp() * 1000)


@dataclass(slots=True)
class Candles:
    t: list[int]
    o: list[float]
    h: list[float]
    l: list[float]  # noqa: E741
    c: list[float]
    v: list[int]
    sma9: list[float | None]
    vwap: list[float | None]

    @classmethod
    def from_rows(cls, rows: list[asyncpg.Record]) -> Candles:
        return cls(
            t=[ms(r["t"]) for r in rows],
            o=[r["o"] for r in rows],
            h=[r["h"] for r in rows],
            l=[r["l"] for r in rows],
            c=[r["c"] for r in rows],
            v=[int(r["v"]) for r in rows],
            sma9=[r["sma9"] for r in rows],
            vwap=[r["vwap"] for r in rows],
        )


_SECONDS_SQL = """
SELECT t, o, o AS h, o AS l, o AS c, v, sma9, vwap FROM (
    SELECT e."timestamp" AS t, e.price AS o, e.volume AS v, i.sma9, i.vwap
    FROM equity_data e
    LEFT JOIN indicators i ON i.ticker = e.ticker AND i."timestamp" = e."timestamp"
    WHERE e.ticker = $1 AND e."timestamp" >= $2 AND e."timestamp" < $3
    ORDER BY e."timestamp" DESC
    LIMIT $4
) x ORDER BY t
"""

# The bucket's last indicator row: a LATERAL probe per bucket, bounded by the session end.
_LAST_INDICATOR = """
LEFT JOIN LATERAL (
    SELECT i.sma9, i.vwap FROM indicators i
    WHERE i.ticker = $1 AND i."timestamp" >= a.t AND i."timestamp" < LEAST(a.t_end, $3)
    ORDER BY i."timestamp" DESC LIMIT 1
) ind ON true
"""

_BINNED_SQL = f"""
WITH a AS (
    SELECT date_bin($5::interval, bucket, timestamptz 'epoch') AS t,
           date_bin($5::interval, bucket, timestamptz 'epoch') + $5::interval AS t_end,
           (array_agg(open ORDER BY bucket))[1] AS o, max(high) AS h, min(low) AS l,
           (array_agg(close ORDER BY bucket DESC))[1] AS c, sum(volume) AS v
    FROM bars_1m
    WHERE ticker = $1 AND bucket >= $2 AND bucket < $3
    GROUP BY 1, 2
    ORDER BY 1 DESC
    LIMIT $4
)
SELECT a.t, a.o, a.h, a.l, a.c, a.v, ind.sma9, ind.vwap
FROM a {_LAST_INDICATOR}
ORDER BY a.t
"""

_DAILY_SQL = f"""
WITH d AS (
    SELECT (bucket AT TIME ZONE 'America/New_York')::date AS day, bucket, open, high, low,
           close, volume
    FROM bars_1m
    WHERE ticker = $1 AND bucket >= $2 AND bucket < $3
), a AS (
    SELECT day::timestamp AT TIME ZONE 'America/New_York' AS t,
           (day + 1)::timestamp AT TIME ZONE 'America/New_York' AS t_end,
           (array_agg(open ORDER BY bucket))[1] AS o, max(high) AS h, min(low) AS l,
           (array_agg(close ORDER BY bucket DESC))[1] AS c, sum(volume) AS v
    FROM d GROUP BY day
    ORDER BY day DESC
    LIMIT $4
)
SELECT a.t, a.o, a.h, a.l, a.c, a.v, ind.sma9, ind.vwap
FROM a {_LAST_INDICATOR}
ORDER BY a.t
"""


async def candles(
    conn: asyncpg.Pool | asyncpg.Connection, ticker: str, tf: str, session: date, limit: int
) -> Candles:
    """The last ``limit`` candles of ``ticker`` at ``tf`` in ``session`` (for 1D: the last
    ``limit`` days ending with ``session``), oldest first."""
    lo, hi = session_bounds_utc(session)
    if tf == "1s":
        rows = await conn.fetch(_SECONDS_SQL, ticker, lo, hi, limit)
    elif tf == "1D":
        # N sessions span at most ~1.5 N calendar days (weekends, holidays); bars older than
        # their retention (a year) are gone anyway
        first = session - timedelta(days=min(limit * 3 // 2 + 7, 3660))
        rows = await conn.fetch(_DAILY_SQL, ticker, session_bounds_utc(first)[0], hi, limit)
    else:
        step = timedelta(seconds=TF_SECONDS[tf])
        rows = await conn.fetch(_BINNED_SQL, ticker, lo, hi, limit, step)
    return Candles.from_rows(rows)


async def latest_session(conn: asyncpg.Pool | asyncpg.Connection, ticker: str) -> date | None:
    """The New York date of the ticker's newest data (seconds or bars), None without data."""
    newest = await conn.fetchval(
        "SELECT greatest("
        '(SELECT "timestamp" FROM equity_data WHERE ticker = $1 '
        'ORDER BY "timestamp" DESC LIMIT 1), '
        "(SELECT bucket FROM bars_1m WHERE ticker = $1 ORDER BY bucket DESC LIMIT 1))",
        ticker,
    )
    return None if newest is None else ny_date(newest)


# Loose index scan over bars_1m's time axis (bars_grid, backwards): one probe per session
# (ORDER BY .. LIMIT 1, not max(): an aggregate over the view would visit every minute).
_SESSIONS_SQL = """
WITH RECURSIVE s(day) AS (
    SELECT (SELECT (bucket AT TIME ZONE 'America/New_York')::date FROM bars_1m WHERE ticker = $1
            ORDER BY bucket DESC LIMIT 1)
    UNION ALL
    SELECT (SELECT (b.bucket AT TIME ZONE 'America/New_York')::date FROM bars_1m b
            WHERE b.ticker = $1
              AND b.bucket < s.day::timestamp AT TIME ZONE 'America/New_York'
            ORDER BY b.bucket DESC LIMIT 1)
    FROM s WHERE s.day IS NOT NULL
)
SELECT day FROM s WHERE day IS NOT NULL LIMIT $2
"""


async def sessions(
    conn: asyncpg.Pool | asyncpg.Connection, ticker: str, limit: int = 1000
) -> list[date]:
    """New York dates with data for ``ticker``, ascending (the newest ``limit``)."""
    days = {r["day"] for r in await conn.fetch(_SESSIONS_SQL, ticker, limit)}
    newest = await latest_session(conn, ticker)  # seconds written without bars (tools, tests)
    if newest is not None:
        days.add(newest)
    return sorted(days)[-limit:]


# The session's indicator seconds, crossed in Python: measured 115 ms against 220 ms for the
# same with lag() in SQL on a reference-universe session (bench/bench_candles.py; the SQL's
# join back to equity_data for the price read the session's prices too).
_IND_SQL = """
SELECT "timestamp" AS t, sma9, vwap FROM indicators
WHERE ticker = $1 AND "timestamp" >= $2 AND "timestamp" < $3
  AND sma9 IS NOT NULL AND vwap IS NOT NULL
ORDER BY "timestamp"
"""
_PRICES_SQL = """
SELECT "timestamp" AS t, price FROM equity_data
WHERE ticker = $1 AND "timestamp" = ANY($2::timestamptz[])
"""


def find_crosses(rows: list[tuple[datetime, float, float]]) -> list[tuple[datetime, int, float]]:
    """(t, +1 up / -1 down, sma9) where SMA9 - VWAP changes sign; seconds where it is 0 are
    skipped (touching is not crossing), so a cross is a second whose sign differs from the
    previous non-zero second's."""
    out: list[tuple[datetime, int, float]] = []
    prev = 0
    for t, sma9, vwap in rows:
        d = sma9 - vwap
        sign = (d > 0) - (d < 0)
        if sign == 0:
            continue
        if prev and sign != prev:
            out.append((t, sign, sma9))
        prev = sign
    return out


async def crosses(
    conn: asyncpg.Pool | asyncpg.Connection, ticker: str, session: date
) -> list[dict[str, Any]]:
    """SMA9/VWAP crosses of one session: ``{t, price, direction}``; up = SMA9 goes above."""
    lo, hi = session_bounds_utc(session)
    rows = await conn.fetch(_IND_SQL, ticker, lo, hi)
    found = find_crosses([(r["t"], r["sma9"], r["vwap"]) for r in rows])
    prices: dict[datetime, float] = {}
    if found:
        got = await conn.fetch(_PRICES_SQL, ticker, [t for t, _, _ in found])
        prices = {r["t"]: r["price"] for r in got}
    return [
        {"t": ms(t), "price": prices.get(t, sma9), "direction": "up" if sign > 0 else "down"}
        for t, sign, sma9 in found
    ]
