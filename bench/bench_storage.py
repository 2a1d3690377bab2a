"""Benchmark of the storage layout: bytes per sample and the 7-session + 1-year projection.

Starts its own PostgreSQL, applies the migrations, then writes one simulated session of the
reference universe (5 tickers + 200 option contracts, every instrument changing every
second, ``bench/storage_universe.py``) through the real path: the indicators ``Engine``
conflates the ticks, the real ``Writer`` commits every ``--batch-seconds`` simulated seconds
(COPY -> staging -> INSERT .. ON CONFLICT), and compaction (``streamdesk.storage_compact``)
runs every 60 simulated seconds, as the indicators service does by default. It then prints bytes per
sample per table, the projection for 7 sessions at per-second resolution plus a year of
1-minute bars, and query latencies on a generated full week (the session's chunks copied to
6 more days), and writes ``bench/results/storage.json``.

Run: ``.venv/bin/python bench/bench_storage.py`` (or ``make bench BENCH=storage``);
``--quick`` simulates the first hour only and scales the projection to a full session.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, timedelta
from pathlib import Path
from typing import Any

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from storage_universe import SESSION_SECONDS, TICKERS, session_open_utc, session_rows
from streamdesk_dev.localservers import PostgresServer

from streamdesk.migrate import find_migrations_dir, migrate
from streamdesk.partitions import ensure_partition, ensure_storage_partitions
from streamdesk.storage import report
from streamdesk.storage_compact import compact
from streamdesk.storage_layout import BARS, SPECS
from streamdesk_indicators.engine import Engine
from streamdesk_indicators.sessions import SessionCalendar
from streamdesk_indicators.writer import Batch, Writer

DAY = date(2026, 3, 10)
RESULTS = Path(__file__).resolve().parent / "results" / "storage.json"
SESSIONS = 7
BAR_DAYS = 252  # trading days in a year
MB = 2**20


async def _hot_bytes(conn: asyncpg.Connection) -> int:
    total = 0
    for spec in SPECS:
        total += int(
            await conn.fetchval(
                "SELECT coalesce(sum(pg_total_relation_size(inhrelid)), 0) FROM pg_inherits "
                "WHERE inhparent = $1::regclass",
                spec.hot,
            )
        )
    return total


async def write_session(dsn: str, seconds: int, batch_seconds: int) -> dict[str, Any]:
    """Generate, commit and compact one session; return counts and timings.

    Equity ticks go through the indicators Engine (conflation, SMA9/VWAP/EMA9, bars); option
    rows are generated as the Engine emits them (vectorised: 200 contracts per second), and
    everything is committed by the real Writer."""
    writer = Writer(dsn)
    engine = Engine(SessionCalendar())
    conn = await asyncpg.connect(dsn, server_settings={"jit": "off"})
    t_gen = t_write = t_compact = 0.0
    hot_peak = commits = 0
    ticks = 0
    try:
        t = time.perf_counter()
        options: list[Any] = []
        for i, (eq, opts) in enumerate(session_rows(DAY, seconds)):
            engine.process_equities(
                (e.symbol, e.ts, e.last, e.bid, e.ask, e.volume, e.last_size) for e in eq
            )
            options += opts
            ticks += len(eq) + len(opts)
            if (i + 1) % batch_seconds == 0 or i == seconds - 1:
                out, _ = engine.take()
                t_gen += time.perf_counter() - t
                t = time.perf_counter()
                await writer.commit(
                    Batch(seconds=out.seconds, options=options, bars=out.bars, days=out.days)
                )
                options = []
                commits += 1
                t_write += time.perf_counter() - t
                # every 60 simulated s: STORAGE_COMPACT_INTERVAL's default in the service
                if (i + 1) % 60 == 0 or i == seconds - 1:
                    t = time.perf_counter()
                    await compact(conn)
                    t_compact += time.perf_counter() - t
                    hot_peak = max(hot_peak, await _hot_bytes(conn))
                t = time.perf_counter()
    finally:
        await writer.close()
        await conn.close()
    return {
        "ticks": ticks,
        "commits": commits,
        "generate_s": t_gen,
        "write_s": t_write,
        "compact_s": t_compact,
        "hot_peak_bytes": hot_peak,
    }


async def bars_bytes_per_row(conn: asyncpg.Connection) -> tuple[float, dict[str, Any]]:
    """bars_1m bytes per bar, measured on a year of bars: the session's bars (written by the
    writer from the simulated ticks: market-sim's prices, the engine's vwap) copied to
    ``BAR_DAYS - 1`` earlier days, then compacted as the service does (migration 0110)."""
    n_session = int(await conn.fetchval("SELECT count(*) FROM bars_1m"))
    # --quick wrote the first hour: repeat its bars over the session's 390 minutes first
    # (a chunk's size depends on how many of its slots have bars)
    await conn.execute(
        """
        INSERT INTO bars_1m_hot (ticker, bucket, open, high, low, close, volume, vwap, source)
        SELECT b.ticker, b.bucket + k * s.span, b.open, b.high, b.low, b.close, b.volume,
               b.vwap, b.source
        FROM bars_1m_hot b,
             (SELECT max(bucket) - min(bucket) + interval '1 minute' AS span,
                     min(bucket) AS first FROM bars_1m_hot) s,
             generate_series(1, 6) k
        WHERE b.bucket + k * s.span < s.first + interval '390 minutes'
        ON CONFLICT DO NOTHING
        """
    )
    await conn.execute(
        """
        INSERT INTO bars_1m_hot (ticker, bucket, open, high, low, close, volume, vwap, source)
        SELECT b.ticker, b.bucket - d * interval '1 day', b.open, b.high, b.low, b.close,
               b.volume, b.vwap, b.source
        FROM bars_1m_hot b, generate_series(1, $1::int - 1) d
        """,
        BAR_DAYS,
    )
    t = time.perf_counter()
    stats = await compact(conn, tables=(BARS,))
    compact_s = time.perf_counter() - t
    await conn.execute("VACUUM ANALYZE bars_1m_hot, bars_1m_packed, bars_grid")
    size = int(
        await conn.fetchval(
            "SELECT pg_total_relation_size('bars_1m_hot') + "
            "(SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_inherits i "
            " JOIN pg_class c ON c.oid = i.inhrelid "
            " WHERE i.inhparent IN ('bars_1m_packed'::regclass, 'bars_grid'::regclass))"
        )
    )
    rows = int(await conn.fetchval("SELECT count(*) FROM bars_1m"))
    info = {
        "bars": rows,
        "session_bars": n_session,
        "packed_chunks": stats.chunks,
        "compact_s": round(compact_s, 2),
    }
    return size / rows, info


async def make_week(conn: asyncpg.Connection) -> None:
    """Copy the session's chunks and grid to 6 earlier days: a full week to query."""
    for back in range(1, SESSIONS):
        day = DAY - timedelta(days=back)
        await ensure_storage_partitions(conn, day)
        for table in ("equity_data", "indicators", "option_prices"):
            await ensure_partition(conn, table, day)
        shift = f"interval '{back} days'"
        for spec in SPECS:
            cols = ["ticker", "n", *(s for s, _ in spec.static), "m", "w", "f"]
            await conn.execute(
                f"INSERT INTO {spec.packed} (t0, t1, {', '.join(cols)}) "
                f"SELECT t0 - {shift}, t1 - {shift}, {', '.join(cols)} FROM {spec.packed} "
                f"WHERE t0 >= $1 AND t0 < $1 + interval '1 day'",
                _day_start(DAY),
            )
        await conn.execute(
            f"INSERT INTO storage_grid SELECT ts - {shift}, t0 - {shift}, pos FROM storage_grid "
            f"WHERE ts >= $1 AND ts < $1 + interval '1 day'",
            _day_start(DAY),
        )
    await conn.execute("VACUUM ANALYZE")


def _day_start(d: date) -> Any:
    from datetime import datetime

    return datetime(d.year, d.month, d.day, tzinfo=UTC)


async def time_queries(conn: asyncpg.Connection) -> dict[str, dict[str, Any]]:
    """Median of 5 runs (after one warm-up) of the contract's queries on the full week."""
    contract = await conn.fetchval("SELECT ticker FROM option_prices_packed ORDER BY 1 LIMIT 1")
    open_ = session_open_utc(DAY - timedelta(days=2))
    close = open_ + timedelta(seconds=SESSION_SECONDS)
    queries: dict[str, tuple[str, list[Any], float]] = {
        "equity_data latest 10": (
            "SELECT * FROM equity_data WHERE ticker = 'QQQ' ORDER BY timestamp DESC LIMIT 10",
            [],
            50,
        ),
        "indicators latest 10": (
            "SELECT * FROM indicators WHERE ticker = 'QQQ' ORDER BY timestamp DESC LIMIT 10",
            [],
            50,
        ),
        "option_prices latest 10": (
            "SELECT * FROM option_prices WHERE ticker = $1 ORDER BY timestamp DESC LIMIT 10",
            [contract],
            50,
        ),
        "option_prices one contract, one session": (
            'SELECT * FROM option_prices WHERE ticker = $1 AND "timestamp" >= $2 '
            'AND "timestamp" < $3 ORDER BY "timestamp"',
            [contract, open_, close],
            200,
        ),
        "equity_data one ticker, one session": (
            'SELECT * FROM equity_data WHERE ticker = $1 AND "timestamp" >= $2 '
            'AND "timestamp" < $3 ORDER BY "timestamp"',
            ["QQQ", open_, close],
            200,
        ),
        "gateway history (60 min, prices + indicators)": (
            'SELECT e."timestamp", e.price, e.volume, i.sma9, i.vwap FROM equity_data e '
            'LEFT JOIN indicators i ON i.ticker = e.ticker AND i."timestamp" = e."timestamp" '
            "WHERE e.ticker = $1 AND e.\"timestamp\" > $2::timestamptz - interval '60 minutes' "
            'ORDER BY e."timestamp" DESC LIMIT 2000',
            ["QQQ", close],
            200,
        ),
        "newest option row (ORDER BY timestamp DESC LIMIT 1)": (
            'SELECT * FROM option_prices ORDER BY "timestamp" DESC LIMIT 1',
            [],
            50,
        ),
    }
    out: dict[str, dict[str, Any]] = {}
    for name, (sql, params, bound) in queries.items():
        rows = await conn.fetch(sql, *params)
        times = []
        for _ in range(5):
            t = time.perf_counter()
            await conn.fetch(sql, *params)
            times.append((time.perf_counter() - t) * 1000)
        plan = await conn.fetch("EXPLAIN " + sql, *params)
        top = [r[0].strip() for r in plan if "Scan" in r[0]][:3]
        out[name] = {
            "ms": round(statistics.median(times), 2),
            "bound_ms": bound,
            "rows": len(rows),
            "met": statistics.median(times) <= bound,
            "scans": top,
        }
    return out


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="sd-bench-storage-"))
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
        await conn.execute("VACUUM")
        base_bytes = int(await conn.fetchval("SELECT pg_database_size(current_database())"))
        seconds = 3600 if args.quick else SESSION_SECONDS
        print(
            f"writing {seconds} s of {len(TICKERS)} tickers + {len(TICKERS) * 40} contracts "
            f"through Engine + Writer, compacting every 60 s ...",
            flush=True,
        )
        t = time.perf_counter()
        run = await write_session(dsn, seconds, args.batch_seconds)
        run["wall_s"] = time.perf_counter() - t
        await conn.execute("VACUUM ANALYZE")
        rep = await report(conn, 500, 7)
        bar_bytes, bar_info = await bars_bytes_per_row(conn)
        scale = SESSION_SECONDS / seconds
        bps = {t.table: round(t.packed_bytes_per_sample or 0.0, 2) for t in rep.tables}
        packed_per_session = sum(t.packed_bytes + t.grid_share_bytes for t in rep.tables) * scale
        samples = {t.table: t.samples for t in rep.tables}
        proj_7 = (SESSIONS * packed_per_session + run["hot_peak_bytes"]) / MB
        proj_bars = bar_bytes * len(TICKERS) * 390 * BAR_DAYS / MB
        total = base_bytes / MB + proj_7 + proj_bars
        await make_week(conn)
        queries = await time_queries(conn)
        await conn.close()
    finally:
        if args.keep:
            print(f"server kept running: {pg.dsn('streamdesk')} (data in {root})")
        else:
            pg.stop("fast")
            shutil.rmtree(root, ignore_errors=True)
    result = {
        "bytes_per_sample": bps,
        "bytes_per_sample_note": "packed chunks + their share of storage_grid, per stored "
        "sample (one ticker-second or contract-second with all its fields), after VACUUM",
        "samples": samples,
        "hot_peak_mb": round(run["hot_peak_bytes"] / MB, 2),
        "bars_1m_bytes_per_row": round(bar_bytes, 1),
        "bars_1m_year": bar_info,
        "empty_database_mb": round(base_bytes / MB, 2),
        "projected_mb_7_sessions": round(proj_7, 1),
        "projected_mb_1y_bars": round(proj_bars, 1),
        "projected_mb_total": round(total, 1),
        "target_mb": 400,
        "quick": args.quick,
        "simulated_seconds": seconds,
        "run": {k: round(v, 2) if isinstance(v, float) else v for k, v in run.items()},
        "queries_full_week": queries,
    }
    return result


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="first hour only, projection scaled")
    ap.add_argument("--keep", action="store_true", help="leave the server running (debugging)")
    ap.add_argument("--batch-seconds", type=int, default=10, help="simulated seconds per commit")
    args = ap.parse_args()
    res = asyncio.run(main_async(args))
    print(
        f"ticks {res['run']['ticks']:,} -> commits {res['run']['commits']}, "
        f"wall {res['run']['wall_s']:.0f} s (generate {res['run']['generate_s']:.0f} s, "
        f"write {res['run']['write_s']:.0f} s, compact {res['run']['compact_s']:.0f} s)"
    )
    print("bytes per sample (packed + grid share):")
    for table, n in res["bytes_per_sample"].items():
        print(f"  {table:<15}{n:>8.2f}   ({res['samples'][table]:,} samples)")
    print(
        f"hot tables peak: {res['hot_peak_mb']} MB; bars_1m {res['bars_1m_bytes_per_row']} "
        f"B/row; empty database {res['empty_database_mb']} MB"
    )
    print(
        f"projected: 7 sessions {res['projected_mb_7_sessions']} MB + 1 year of bars "
        f"{res['projected_mb_1y_bars']} MB + empty db = {res['projected_mb_total']} MB "
        f"(target <= 400 MB: {'met' if res['projected_mb_total'] <= 400 else 'MISSED'})"
    )
    print("queries on a full week (median of 5):")
    for name, q in res["queries_full_week"].items():
        print(
            f"  {name:<48}{q['ms']:>9.2f} ms  (bound {q['bound_ms']} ms: "
            f"{'met' if q['met'] else 'MISSED'}; {q['rows']} rows)"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(res, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
