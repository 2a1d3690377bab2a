"""Benchmark of the trade-executor: INSERT commit -> broker accepted latency, p50 / p99.

Starts its own PostgreSQL and Redis from local binaries, migrates, starts market-sim and one
``trade-executor`` process (paper mode, default worker count), and keeps the streamer's quote
hashes fresh in Redis (as the streamer would), so risk checks read quotes from Redis.

Measured:

- **baseline**: the raw round trip of schwab-py ``place_order`` to market-sim from this process
  (same client stack, no database, no risk checks): what no executor can beat;
- **executor**: for each trade, the time from the INSERT's commit returning (client clock) to
  the executor receiving the broker's 201 (``accepted_at`` in the ``submitting -> working``
  event; same machine, same clock), with trades inserted open-loop at ``--rate`` per second
  over ``--symbols`` symbols (so the one-open-order-per-symbol rule does not queue them);
- breakdown: INSERT -> claimed (``submitting`` committed) and claimed -> accepted.

Target: executor p99 <= 100 ms. Exit code 1 if missed.

    .venv/bin/python bench/bench_executor.py [--trades 400] [--rate 40]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from streamdesk_dev.localservers import PostgresServer, RedisServer, free_port

from streamdesk.config import CommonSettings
from streamdesk.constants import last_quote_key
from streamdesk.migrate import migrate
from streamdesk.models import TradeRequest
from streamdesk.schwab import ensure_paper_token, make_client
from streamdesk_executor.orders import build_order

ROOT = Path(__file__).resolve().parent.parent
P99_TARGET_MS = 100.0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def fmt(name: str, values: list[float]) -> str:
    return (
        f"{name:<34} n={len(values):<4} p50={pct(values, 50):7.2f} ms  "
        f"p90={pct(values, 90):7.2f} ms  p99={pct(values, 99):7.2f} ms  "
        f"max={max(values):7.2f} ms  mean={statistics.fmean(values):7.2f} ms"
    )


def start_sim(tmp: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIM_")}
    env.update({"SIM_PORT": str(port), "SIM_LOG_LEVEL": "WARNING"})
    log = (tmp / "market-sim.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamdesk_sim"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=tmp,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/admin/health", timeout=1):
                return proc
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("market-sim did not start") from None
            time.sleep(0.1)


async def quote_refresher(
    client: Any, redis_url: str, symbols: list[str], stop: asyncio.Event
) -> None:
    """Write the streamer's quote hashes from market-sim quotes every 0.5 s."""
    r = aioredis.Redis.from_url(redis_url)
    try:
        while not stop.is_set():
            resp = await client.get_quotes(symbols)
            now_ms = int(time.time() * 1000)
            pipe = r.pipeline()
            for sym, entry in resp.json().items():
                q = entry.get("quote") or {}
                if not q.get("quoteTime"):
                    continue
                pipe.hset(
                    last_quote_key(sym),
                    mapping={
                        "last": q["lastPrice"],
                        "bid": q["bidPrice"],
                        "ask": q["askPrice"],
                        "ts": now_ms,
                    },
                )
            await pipe.execute()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)
    finally:
        await r.aclose()


async def baseline(client: Any, account: str, n: int) -> list[float]:
    out = []
    spec = build_order(
        TradeRequest(
            symbol="BASE", asset_type="EQUITY", instruction="BUY", quantity=1, order_type="MARKET"
        )
    )
    for _ in range(n):
        t0 = time.perf_counter()
        resp = await client.place_order(account, spec)
        out.append((time.perf_counter() - t0) * 1000)
        assert resp.status_code == 201, resp.status_code
        await asyncio.sleep(0.005)
    return out


async def run(args: argparse.Namespace) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="bench-executor-"))
    if os.geteuid() == 0:
        tmp.chmod(0o755)
    pg = PostgresServer(tmp / "pg", durable=False)
    rd = RedisServer(tmp / "redis")
    sim_port = free_port()
    sim = executor = None
    try:
        pg.start()
        rd.start()
        admin = await asyncpg.connect(pg.dsn("postgres"))
        await admin.execute("CREATE DATABASE streamdesk")
        await admin.close()
        dsn = pg.dsn("streamdesk")
        conn = await asyncpg.connect(dsn)
        await migrate(conn, ROOT / "migrations")
        sim = start_sim(tmp, sim_port)
        base_url = f"http://127.0.0.1:{sim_port}"
        token = tmp / "token.json"
        common = CommonSettings(schwab_base_url=base_url, schwab_token_path=token)
        await asyncio.to_thread(ensure_paper_token, common)
        client = make_client(common, asyncio=True)
        accounts = (await client.get_account_numbers()).json()
        account = accounts[0]["hashValue"]
        urllib.request.urlopen(
            urllib.request.Request(
                f"{base_url}/admin/broker/reset",
                data=json.dumps({"cash": 1e9}).encode(),
                headers={"Content-Type": "application/json"},
                method="POST",
            ),
            timeout=5,
        ).close()
        symbols = [f"S{i:03d}" for i in range(args.symbols)]
        for _ in range(3):  # market-sim starts quoting a symbol when first asked
            await client.get_quotes(symbols)
            await asyncio.sleep(0.3)
        stop = asyncio.Event()
        refresher = asyncio.create_task(quote_refresher(client, rd.url, symbols, stop))
        await asyncio.sleep(0.3)

        base = await baseline(client, account, args.baseline)

        env = {k: v for k, v in os.environ.items() if not k.startswith(("EXECUTOR_", "RISK_"))}
        env.update(
            {
                "DATABASE_URL": dsn,
                "REDIS_URL": rd.url,
                "SCHWAB_BASE_URL": base_url,
                "SCHWAB_TOKEN_PATH": str(token),
                "TRADING_MODE": "paper",
                "RISK_ALLOW_MARKET_ORDERS": "true",
                "RISK_DUPLICATE_WINDOW": "0",
                "RISK_MAX_ORDERS_PER_MINUTE": "100000",
                "RISK_MAX_DAILY_NOTIONAL": "1000000000",
                "RISK_MAX_ORDER_NOTIONAL": "1000000000",
                "EXECUTOR_SYNC_INTERVAL": "0.2",
                "LOG_LEVEL": "WARNING",
                "LOG_FORMAT": "text",
            }
        )
        for item in args.executor_env:
            key, _, value = item.partition("=")
            env[key] = value
        log = (tmp / "executor.log").open("wb")
        executor = subprocess.Popen(
            [sys.executable, "-m", "streamdesk_executor"],
            env=env,
            cwd=tmp,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        # warm-up: wait until the executor takes a trade
        warm = await conn.fetchval(
            "INSERT INTO trades (symbol, asset_type, instruction, quantity, order_type) "
            "VALUES ('WARM', 'EQUITY', 'BUY', 1, 'MARKET') RETURNING id"
        )
        deadline = time.monotonic() + 60
        while await conn.fetchval("SELECT status FROM trades WHERE id=$1", warm) == "pending":
            if time.monotonic() > deadline or executor.poll() is not None:
                raise RuntimeError(f"executor did not start; see {tmp / 'executor.log'}")
            await asyncio.sleep(0.1)

        committed: dict[int, float] = {}
        interval = 1.0 / args.rate
        t_next = time.perf_counter()
        for i in range(args.trades):
            sym = symbols[i % len(symbols)]
            trade_id = await conn.fetchval(
                "INSERT INTO trades (symbol, asset_type, instruction, quantity, order_type) "
                "VALUES ($1, 'EQUITY', 'BUY', 1, 'MARKET') RETURNING id",
                sym,
            )
            committed[trade_id] = time.time()
            t_next += interval
            await asyncio.sleep(max(0.0, t_next - time.perf_counter()))
        deadline = time.monotonic() + 60
        while True:
            left = await conn.fetchval(
                "SELECT count(*) FROM trades WHERE id = ANY($1::bigint[]) "
                "AND status IN ('pending', 'submitting')",
                list(committed),
            )
            if left == 0 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        rows = await conn.fetch(
            "SELECT e.trade_id, e.to_status, e.detail, extract(epoch from e.at) AS at "
            "FROM trade_events e WHERE e.trade_id = ANY($1::bigint[]) "
            "AND e.to_status IN ('submitting', 'working') AND e.from_status IN "
            "('pending', 'submitting')",
            list(committed),
        )
        claimed: dict[int, float] = {}
        accepted: dict[int, float] = {}
        broker_ms: list[float] = []
        for r in rows:
            if r["to_status"] == "submitting":
                claimed[r["trade_id"]] = float(r["at"])
            else:
                detail = json.loads(r["detail"])
                accepted[r["trade_id"]] = float(detail["accepted_at"])
                broker_ms.append(float(detail["broker_ms"]))
        statuses = dict(
            await conn.fetch(
                "SELECT status, count(*) FROM trades WHERE id = ANY($1::bigint[]) GROUP BY 1",
                list(committed),
            )
        )
        lat = [(accepted[t] - committed[t]) * 1000 for t in committed if t in accepted]
        to_claim = [(claimed[t] - committed[t]) * 1000 for t in committed if t in claimed]
        claim_to_acc = [(accepted[t] - claimed[t]) * 1000 for t in committed if t in accepted]
        stop.set()
        await asyncio.wait_for(refresher, 10)
        await client.close_async_session()
        await conn.close()

        print(
            f"trade-executor benchmark: {args.trades} market orders at {args.rate}/s over "
            f"{args.symbols} symbols, 1 executor (4 workers), quotes from Redis"
        )
        print(f"final statuses: {statuses}")
        print(fmt("baseline schwab-py place_order", base))
        print(fmt("INSERT commit -> broker accepted", lat))
        print(fmt("  INSERT commit -> claimed", to_claim))
        print(fmt("  claimed -> broker accepted", claim_to_acc))
        print(fmt("    of which the place_order call", broker_ms))
        p50, p99 = pct(lat, 50), pct(lat, 99)
        print(
            f"ratio executor/baseline: p50 x{p50 / pct(base, 50):.2f}, "
            f"p99 x{p99 / pct(base, 99):.2f}"
        )
        ok = len(lat) == args.trades and p99 <= P99_TARGET_MS
        print(
            f"target p99 <= {P99_TARGET_MS:.0f} ms: {'met' if ok else 'MISSED'} "
            f"(accepted {len(lat)}/{args.trades})"
        )
        return 0 if ok else 1
    finally:
        for proc in (executor, sim):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
        rd.stop()
        pg.stop("immediate")
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trades", type=int, default=400)
    parser.add_argument("--rate", type=float, default=40.0, help="trades inserted per second")
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--baseline", type=int, default=200, help="raw place_order calls")
    parser.add_argument(
        "--executor-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for the executor (repeatable)",
    )
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
