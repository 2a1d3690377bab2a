"""Benchmark of the gateway's chart reads over one session of the reference universe.

Writes a session (``bench_storage.write_session``: 5 tickers + 200 contracts every second,
through the real Engine, Writer and compaction) into its own PostgreSQL, then times the SQL
behind ``/api/candles`` (1s with the default cap and uncapped, 1m/5m/1h/1D), ``/api/signals``
(lag() in SQL vs the session's rows crossed in Python), ``/api/quotes`` and the option chain.
Median of 5 after a warm-up; prints latencies and ratios (not a timed test).

Run: ``.venv/bin/python bench/bench_candles.py`` (``--quick``: the first hour only).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_storage import DAY, write_session
from storage_universe import SESSION_SECONDS, TICKERS
from streamdesk_dev.localservers import PostgresServer

from streamdesk.migrate import find_migrations_dir, migrate
from streamdesk.partitions import ensure_partition
from streamdesk_gateway import market_sql
from streamdesk_gateway.routes_account import _OPTION_MARKS_SQL
from streamdesk_gateway.routes_market import _CHAIN_SQL, _QUOTES_SQL

# The alternative measured against crossing in Python (market_sql.crosses).
LAG_SQL = """
SELECT x.t, x.dir, coalesce(e.price, x.sma9) AS price FROM (
    SELECT t, sma9, sign(d) AS dir, lag(sign(d)) OVER (ORDER BY t) AS prev
    FROM (
        SELECT "timestamp" AS t, sma9, sma9 - vwap AS d FROM indicators
        WHERE ticker = $1 AND "timestamp" >= $2 AND "timestamp" < $3
          AND sma9 IS NOT NULL AND vwap IS NOT NULL
    ) s
    WHERE d <> 0
) x
LEFT JOIN equity_data e ON e.ticker = $1 AND e."timestamp" = x.t
WHERE x.prev IS NOT NULL AND x.dir <> x.prev
ORDER BY x.t
"""


async def _median(fn: Callable[[], Awaitable[Any]], runs: int = 5) -> tuple[float, Any]:
    out = await fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        out = await fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), out


def _py_crosses(rows: list[asyncpg.Record]) -> int:
    prev = 0
    n = 0
    for r in rows:
        if r["sma9"] is None or r["vwap"] is None:
            continue
        d = r["sma9"] - r["vwap"]
        sign = (d > 0) - (d < 0)
        if sign and prev and sign != prev:
            n += 1
        if sign:
            prev = sign
    return n


async def run(conn: asyncpg.Connection) -> list[tuple[str, float, str]]:
    ticker = next(iter(TICKERS))
    lo, hi = market_sql.session_bounds_utc(DAY)
    res: list[tuple[str, float, str]] = []

    async def candles(tf: str, limit: int) -> Any:
        return await market_sql.candles(conn, ticker, tf, DAY, limit)

    for tf, limit in (("1s", 2000), ("1s", 30_000), ("1m", 2000), ("5m", 2000), ("1h", 2000),
                      ("1D", 30)):  # fmt: skip
        t, out = await _median(lambda tf=tf, limit=limit: candles(tf, limit))
        res.append((f"candles {tf} limit {limit}", t, f"{len(out.t)} buckets"))
    t, out = await _median(lambda: market_sql.crosses(conn, ticker, DAY))
    res.append(("signals as served (Python + price probes)", t, f"{len(out)} crosses"))
    t, rows = await _median(lambda: conn.fetch(LAG_SQL, ticker, lo, hi))
    res.append(("signals: lag() in SQL (the alternative)", t, f"{len(rows)} crosses"))

    async def py() -> int:
        rows = await conn.fetch(
            'SELECT "timestamp", sma9, vwap FROM indicators WHERE ticker = $1 '
            'AND "timestamp" >= $2 AND "timestamp" < $3 ORDER BY "timestamp"',
            ticker,
            lo,
            hi,
        )
        return _py_crosses(rows)

    t, n = await _median(py)
    res.append(("signals: rows fetched, crossed in Python", t, f"{n} crosses"))
    t, _ = await _median(lambda: market_sql.sessions(conn, ticker))
    res.append(("sessions", t, ""))
    t, _ = await _median(lambda: conn.fetch(_QUOTES_SQL, list(TICKERS)))
    res.append((f"quotes SQL ({len(TICKERS)} tickers)", t, ""))
    t, rows = await _median(lambda: conn.fetch(_CHAIN_SQL, ticker))
    res.append(("option chain", t, f"{len(rows)} contracts"))
    if rows:
        syms = [r["ticker"] for r in rows[:10]]
        t, _ = await _median(lambda: conn.fetch(_OPTION_MARKS_SQL, syms))
        res.append(("option marks (10 contracts)", t, ""))
    return res


async def main_async(args: argparse.Namespace) -> None:
    root = Path(tempfile.mkdtemp(prefix="sd-bench-candles-"))
    root.chmod(0o755)
    pg = PostgresServer(root / "pg", durable=False)
    pg.start()
    try:
        admin = await asyncpg.connect(pg.url)
        await admin.execute("CREATE DATABASE streamdesk")
        await admin.close()
        dsn = pg.dsn("streamdesk")
        conn = await asyncpg.connect(dsn, server_settings={"jit": "off"})
        await migrate(conn, find_migrations_dir(None))
        for table in ("equity_data", "indicators", "option_prices"):
            await ensure_partition(conn, table, DAY)
        seconds = 3600 if args.quick else SESSION_SECONDS
        print(f"writing {seconds} s of the reference universe ...", flush=True)
        t = time.perf_counter()
        await write_session(dsn, seconds, 10)
        await conn.execute("VACUUM ANALYZE")
        print(f"written in {time.perf_counter() - t:.0f} s; timing (median of 5):", flush=True)
        results = await run(conn)
        base = results[0][1]
        for name, ms_, note in results:
            print(f"  {name:<44}{ms_:>9.1f} ms  {ms_ / base:>6.1f}x  {note}")
        await conn.close()
    finally:
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="first hour only")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
