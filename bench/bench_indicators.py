"""Benchmark of the indicators service: sustained ticks/s and tick-to-commit latency.

Starts its own PostgreSQL (durable: fsync on) and Redis from local binaries, then measures in
the same run:

1. baseline: a naive writer that INSERTs (upserts) every tick in its own transaction;
2. capacity: ticks/s while draining a pre-loaded backlog through the real service;
3. latency: a separate producer process XADDs at ``--rate`` ticks/s for ``--seconds``
   seconds while the service runs; tick-to-commit latency = time of the COMMIT (+XACK)
   minus the time Redis accepted the entry (its id), p50/p99/max over all entries.

Run: ``uv run python bench/bench_indicators.py`` (``--help`` for options). Prints figures;
it is a script, not a timed test.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import msgpack
import redis
import redis.asyncio as aioredis
from streamdesk_dev.localservers import PostgresServer, RedisServer

from streamdesk import constants
from streamdesk.codec import VERSION
from streamdesk.migrate import find_migrations_dir, migrate
from streamdesk.partitions import ensure_partitions
from streamdesk_indicators.config import Settings
from streamdesk_indicators.runner import IndicatorsService

PER_ENTRY = 200


def symbols(n: int) -> list[str]:
    return [f"S{i:04d}" for i in range(n)]


def entries_for(
    syms: list[str], n_ticks: int, t0_ms: int, rate: int, partitions: int, cum: dict[str, int]
) -> list[tuple[str, bytes]]:
    """Encoded entries (stream, payload) of ``n_ticks`` round-robin ticks starting at t0."""
    by_part: dict[int, list[tuple[object, ...]]] = {}
    out: list[tuple[str, bytes]] = []
    nsym = len(syms)
    for i in range(n_ticks):
        s = syms[i % nsym]
        c = cum[s] = cum[s] + 100
        price = 100.0 + (i % 97) * 0.01
        ts = t0_ms + (i * 1000) // rate
        p = constants.partition_for(s, partitions)
        rows = by_part.setdefault(p, [])
        rows.append((s, ts, price, price - 0.01, price + 0.01, c, 100))
        if len(rows) >= PER_ENTRY:
            out.append((constants.tick_stream(p), msgpack.packb([VERSION, rows, []])))
            by_part[p] = []
    for p, rows in by_part.items():
        if rows:
            out.append((constants.tick_stream(p), msgpack.packb([VERSION, rows, []])))
    return out


def produce_paced(redis_url: str, rate: int, seconds: float, nsym: int, partitions: int) -> None:
    """Producer process: XADD ``rate`` ticks/s in 10 ms slices.

    The payloads are encoded up front (event times advancing at ``rate`` from the start), so
    the load generator itself costs almost no CPU during the measurement; latency is measured
    from the time Redis accepts each entry, not from the tick's event time.
    """
    r = redis.Redis.from_url(redis_url)
    syms = symbols(nsym)
    cum = dict.fromkeys(syms, 0)
    slice_s = 0.01
    per_slice = int(rate * slice_s)
    n_slices = int(seconds / slice_s)
    t0 = int(time.time() * 1000) + 2000  # roughly when the run starts
    slices = [
        entries_for(syms, per_slice, t0 + int(k * slice_s * 1000), rate, partitions, cum)
        for k in range(n_slices)
    ]
    start = time.perf_counter()
    for k, entries in enumerate(slices):
        target = start + k * slice_s
        now = time.perf_counter()
        if target > now:
            time.sleep(target - now)
        pipe = r.pipeline(transaction=False)
        for stream, payload in entries:
            pipe.xadd(stream, {constants.TICK_FIELD: payload})
        pipe.execute()
    r.close()


async def baseline(dsn: str, n: int, nsym: int) -> float:
    """Naive writer: one upsert and one COMMIT per tick."""
    conn = await asyncpg.connect(dsn)
    syms = symbols(nsym)
    t0 = datetime.now(UTC).timestamp()
    try:
        start = time.perf_counter()
        for i in range(n):
            ts = datetime.fromtimestamp(t0 + i // 100, UTC)
            await conn.execute(
                # the hot table behind the equity_data view (migration 0060): ON CONFLICT
                'INSERT INTO equity_data_hot (ticker, "timestamp", price, volume) '
                'VALUES ($1,$2,$3,$4) ON CONFLICT (ticker, "timestamp") DO UPDATE SET '
                "price = EXCLUDED.price, volume = equity_data_hot.volume + EXCLUDED.volume",
                syms[i % nsym],
                ts,
                100.0 + i % 7,
                100,
            )
        return n / (time.perf_counter() - start)
    finally:
        await conn.close()


async def drained(r: aioredis.Redis, partitions: int) -> bool:
    for p in range(partitions):
        stream = constants.tick_stream(p)
        if not await r.exists(stream):
            continue
        groups = await r.xinfo_groups(stream)
        if not groups or groups[0]["pending"] or groups[0]["lag"]:
            return False
    return True


async def run_service_until(
    settings: Settings, cond: object, timeout: float
) -> tuple[IndicatorsService, float]:
    service = IndicatorsService(settings)
    r = aioredis.Redis.from_url(settings.redis_url)
    start = time.perf_counter()
    task = asyncio.create_task(service.run())
    try:
        await asyncio.sleep(0.2)
        while not await cond(r):  # type: ignore[operator]
            if task.done():
                task.result()
            if time.perf_counter() - start > timeout:
                raise TimeoutError("benchmark did not finish in time")
            await asyncio.sleep(0.02)
        elapsed = time.perf_counter() - start
    finally:
        service.shutdown.request("bench")
        await asyncio.wait({task}, timeout=20)
        await r.aclose()
    return service, elapsed


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


async def main_async(args: argparse.Namespace) -> None:
    root = Path(tempfile.mkdtemp(prefix="sd-bench-ind-"))
    root.chmod(0o755)
    pg = PostgresServer(root / "pg", durable=True)
    rs = RedisServer(root / "redis")
    pg.start()
    rs.start()
    try:
        admin = await asyncpg.connect(pg.url)
        await admin.execute("CREATE DATABASE streamdesk")
        await admin.close()
        dsn = pg.dsn("streamdesk")
        conn = await asyncpg.connect(dsn)
        await migrate(conn, find_migrations_dir(None))
        await ensure_partitions(conn, days_ahead=2)
        await conn.close()
        common = {
            "database_url": dsn,
            "redis_url": rs.url,
            "stream_partitions": args.partitions,
            "batch_interval": args.batch_interval,
            "batch_size": args.batch_size,
            "instance_id": "bench",
            "log_level": "WARNING",
        }
        print(
            f"machine: {os.cpu_count()} cores; PostgreSQL durable (fsync on); "
            f"{args.symbols} symbols, {args.partitions} partitions, "
            f"{PER_ENTRY} ticks/entry, BATCH_INTERVAL={args.batch_interval}s"
        )

        base = await baseline(dsn, args.baseline_ticks, args.symbols)
        conn = await asyncpg.connect(dsn)
        await conn.execute("TRUNCATE equity_data_hot")  # keep the storage figures to our rows
        await conn.close()
        print(
            f"baseline  naive per-tick INSERT+COMMIT: {base:,.0f} ticks/s "
            f"({args.baseline_ticks} ticks)"
        )

        # capacity: drain a backlog
        r = redis.Redis.from_url(rs.url)
        r.flushall()
        cum = dict.fromkeys(symbols(args.symbols), 0)
        t0 = int(time.time() * 1000)
        entries = entries_for(
            symbols(args.symbols), args.backlog, t0, 100_000, args.partitions, cum
        )
        pipe = r.pipeline(transaction=False)
        for i, (stream, payload) in enumerate(entries):
            pipe.xadd(stream, {constants.TICK_FIELD: payload})
            if i % 500 == 0:
                pipe.execute()
        pipe.execute()
        settings = Settings(**common)  # type: ignore[arg-type]
        service, elapsed = await run_service_until(
            settings, lambda c: drained(c, args.partitions), timeout=300
        )
        cap = service.ticks / elapsed
        print(
            f"capacity  backlog of {service.ticks:,} ticks drained in {elapsed:.2f}s: "
            f"{cap:,.0f} ticks/s = {cap / base:,.1f}x baseline; rows written "
            f"{service.rows_written:,} in {service.commits} commits"
        )

        # latency at a paced rate
        r.flushall()
        r.close()
        producer = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--produce",
                rs.url,
                str(args.rate),
                str(args.seconds),
                str(args.symbols),
                str(args.partitions),
            ]
        )
        prod_started = time.perf_counter()
        settings = Settings(**common)  # type: ignore[arg-type]

        async def done(c: aioredis.Redis) -> bool:
            return producer.poll() is not None and await drained(c, args.partitions)

        service, elapsed = await run_service_until(settings, done, timeout=args.seconds + 120)
        prod_elapsed = time.perf_counter() - prod_started
        lat = list(service.latencies)
        rate = service.ticks / args.seconds
        print(
            f"sustained {service.ticks:,} ticks offered at {args.rate:,}/s for "
            f"{args.seconds}s (achieved offer {rate:,.0f}/s; drained {prod_elapsed:.1f}s "
            f"after start): {rate / base:,.1f}x baseline"
        )
        print(
            f"latency   tick-to-commit p50 {pct(lat, 0.5):.0f} ms, p99 {pct(lat, 0.99):.0f} ms,"
            f" max {max(lat):.0f} ms over {len(lat):,} entries (bound: BATCH_INTERVAL + 250 ms"
            f" = {args.batch_interval * 1000 + 250:.0f} ms) -> "
            f"{'OK' if pct(lat, 0.99) <= args.batch_interval * 1000 + 250 else 'MISSED'}"
        )
        print(
            f"flushes   {service.commits} commits, flush p99 "
            f"{pct(list(service.flush_latencies), 0.99):.1f} ms"
        )
        await storage_report(dsn)
    finally:
        rs.stop()
        pg.stop("fast")


async def storage_report(dsn: str) -> None:
    """Measured on-disk bytes per row (heap main fork + indexes) of the per-second tables."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("VACUUM ANALYZE")
        for table in ("equity_data_hot", "indicators_hot", "bars_1m"):  # rows before compaction
            rows = await conn.fetchval(f"SELECT count(*) FROM {table}")
            size = await conn.fetchval(
                """
                SELECT coalesce(sum(pg_relation_size(c.oid) + pg_indexes_size(c.oid)), 0)
                FROM pg_class c
                WHERE c.relname = $1 OR c.oid IN (
                    SELECT inhrelid FROM pg_inherits WHERE inhparent = $1::regclass)
                """,
                table,
            )
            if rows:
                print(
                    f"storage   {table}: {rows:,} rows, {size / rows:.0f} bytes/row "
                    "(heap + indexes)"
                )
    finally:
        await conn.close()


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--produce":
        url, rate, seconds, nsym, parts = sys.argv[2:7]
        produce_paced(url, int(rate), float(seconds), int(nsym), int(parts))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rate", type=int, default=100_000, help="offered ticks/s")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--symbols", type=int, default=500)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--backlog", type=int, default=500_000)
    ap.add_argument("--baseline-ticks", type=int, default=3_000)
    ap.add_argument("--batch-interval", type=float, default=1.0)
    ap.add_argument("--batch-size", type=int, default=5_000)
    asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    main()
