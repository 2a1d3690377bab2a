"""Benchmark of the health service: idle CPU and RSS of the ``health`` process.

Starts its own PostgreSQL and Redis from local binaries, migrates, seeds a realistic state
(three live service heartbeats, ticks for the tickers, tick streams with a consumer group),
starts ``python -m streamdesk_health`` with its default 5 s check interval and measures:

- idle CPU (% of one core) and RSS over ``--seconds`` with nobody scraping;
- the same while /health and /metrics are scraped once per second (a busy Prometheus);
- latency of GET /health and GET /metrics, and the duration of one check round.

Targets: idle CPU <= 1 % of one core, RSS < 60 MB. Exit code 1 if a target is missed.

    .venv/bin/python bench/bench_health.py [--seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import psutil
import redis.asyncio as aioredis
from streamdesk_dev.localservers import PostgresServer, RedisServer, free_port

from streamdesk import constants
from streamdesk.heartbeat import Heartbeat
from streamdesk.migrate import migrate
from streamdesk.partitions import ensure_partitions

ROOT = Path(__file__).resolve().parent.parent
TICKERS = ["SPY", "QQQ", "AAPL", "MSFT", "NVDA"]
CPU_TARGET_PCT = 1.0
RSS_TARGET_MB = 60.0


async def seed(dsn: str, redis_url: str) -> None:
    admin = await asyncpg.connect(dsn.rsplit("/", 1)[0] + "/postgres")
    try:
        await admin.execute("CREATE DATABASE streamdesk")
    finally:
        await admin.close()
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn, ROOT / "migrations")
        await ensure_partitions(conn, days_ahead=1, days_behind=1)
        now = datetime.now(UTC).replace(microsecond=0)
        # One hour of per-second ticks for each ticker: ~18k rows, a realistic index depth.
        rows = [
            (t, now - timedelta(seconds=s), 100.0 + s % 7, 10) for t in TICKERS for s in range(3600)
        ]
        await conn.copy_records_to_table(
            "equity_data", records=rows, columns=["ticker", "timestamp", "price", "volume"]
        )
        await conn.copy_records_to_table(
            "indicators",
            records=[(t, ts, 1.0, 1.0) for t, ts, _, _ in rows],
            columns=["ticker", "timestamp", "sma9", "vwap"],
        )
    finally:
        await conn.close()
    r = aioredis.Redis.from_url(redis_url)
    try:
        for stream in constants.tick_streams(4):
            await r.xgroup_create(stream, constants.INDICATORS_GROUP, id="0", mkstream=True)
            for i in range(100):
                await r.xadd(stream, {constants.TICK_FIELD: str(i)}, maxlen=10_000)
    finally:
        await r.aclose()


def get(url: str) -> float:
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            resp.read()
    except urllib.error.HTTPError as exc:  # 503 when something is down still has a body
        exc.read()
    return time.perf_counter() - start


def get_json(url: str) -> dict[str, object]:
    """The JSON body of ``url``, also when the answer is 503 (something is down)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return dict(json.loads(resp.read()))
    except urllib.error.HTTPError as exc:
        with exc:
            return dict(json.loads(exc.read()))


def wait_ready(base: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("health exited during start-up")
        try:
            with urllib.request.urlopen(base + "/readyz", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("health did not become ready")


def measure(p: psutil.Process, seconds: float, scrape: str | None) -> tuple[float, float, float]:
    """CPU % of one core, mean RSS MB and max RSS MB over ``seconds``."""
    rss: list[float] = []
    t0 = p.cpu_times()
    w0 = time.monotonic()
    next_scrape = w0
    while (now := time.monotonic()) - w0 < seconds:
        if scrape is not None and now >= next_scrape:
            get(scrape + "/health")
            get(scrape + "/metrics")
            next_scrape += 1.0
        rss.append(p.memory_info().rss / 2**20)
        time.sleep(0.25)
    t1 = p.cpu_times()
    wall = time.monotonic() - w0
    cpu = (t1.user + t1.system - t0.user - t0.system) / wall * 100
    return cpu, statistics.fmean(rss), max(rss)


async def beat(redis_url: str, stop: asyncio.Event) -> None:
    r = aioredis.Redis.from_url(redis_url)
    beats = [
        Heartbeat(r, s, instance="bench", counters=lambda: {"rows": 1})
        for s in ("streamer", "indicators", "trade-executor", "gateway")
    ]
    for hb in beats:
        hb.start()
    try:
        await stop.wait()
    finally:
        for hb in beats:
            await hb.stop()
        await r.aclose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=12.0)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-health-"))
    if os.geteuid() == 0:
        tmp.chmod(0o755)
    pg = PostgresServer(tmp / "pg", durable=False)
    rs = RedisServer(tmp / "redis")
    pg.start()
    rs.start()
    dsn = pg.dsn("streamdesk")
    proc: subprocess.Popen[bytes] | None = None
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    try:
        loop.run_until_complete(seed(dsn, rs.url))
        beater = loop.create_task(beat(rs.url, stop))
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("HEALTH_")},
            "DATABASE_URL": dsn,
            "REDIS_URL": rs.url,
            "TICKERS": ",".join(TICKERS),
            "MARKET_HOURS": "always",
            "HEALTH_PORT": str(port),
            "HEALTH_FRESHNESS_MAX_AGE_S": "86400",
            "LOG_FORMAT": "json",
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamdesk_health"],
            env=env,
            cwd=tmp,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # The heartbeats need the loop to run while we wait and measure in this thread.
        loop.run_until_complete(asyncio.sleep(0.5))
        wait_ready(base, proc)
        p = psutil.Process(proc.pid)

        def run_loop_for(seconds: float) -> None:
            loop.run_until_complete(asyncio.sleep(seconds))

        run_loop_for(args.warmup)
        # Sample in a worker thread so the heartbeat loop keeps running meanwhile.
        idle = loop.run_until_complete(asyncio.to_thread(measure, p, args.seconds, None))
        lat_health = [get(base + "/health") for _ in range(200)]
        lat_metrics = [get(base + "/metrics") for _ in range(200)]
        busy = loop.run_until_complete(asyncio.to_thread(measure, p, args.seconds / 2, base))
        body = get_json(base + "/health")
        stop.set()
        loop.run_until_complete(beater)

        def ms(xs: list[float]) -> str:
            xs = sorted(xs)
            return (
                f"p50 {xs[len(xs) // 2] * 1000:.2f} ms, p99 {xs[int(len(xs) * 0.99)] * 1000:.2f} ms"
            )

        print(f"health bench ({args.seconds:.0f} s idle window, check interval 5 s, 8 components)")
        print(f"  overall status during the run: {body['status']}")
        for name, comp in sorted(body["components"].items()):
            if comp["status"] != "ok":
                print(f"    {name}: {comp['status']} ({comp['reason']})")
        print(f"  check round duration: {body['duration_s'] * 1000:.1f} ms")
        print(f"  idle CPU: {idle[0]:.2f} % of one core (target <= {CPU_TARGET_PCT} %)")
        print(
            f"  idle RSS: mean {idle[1]:.1f} MB, max {idle[2]:.1f} MB (target < {RSS_TARGET_MB} MB)"
        )
        print(f"  scraped 1/s (/health + /metrics): CPU {busy[0]:.2f} %, RSS max {busy[2]:.1f} MB")
        print(f"  GET /health: {ms(lat_health)}")
        print(f"  GET /metrics: {ms(lat_metrics)}")
        ok = idle[0] <= CPU_TARGET_PCT and idle[2] < RSS_TARGET_MB
        print("  result:", "PASS" if ok else "OVER TARGET")
        return 0 if ok else 1
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        stop.set()
        loop.close()
        rs.stop()
        pg.stop("immediate")
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
