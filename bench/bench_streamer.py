"""Benchmark of the streamer: CPU per tick and sustained ticks/s, market-sim -> Redis.

Starts its own Redis (local binary) and a market-sim in load mode, then measures:

A. In-process, on the *same* frames recorded from market-sim's websocket (load symbols, the
   field set the streamer subscribes to), CPU time per tick of
   1. the baseline: schwab-py's own ``StreamClient.handle_message`` with a no-op handler
      (json.loads, ``copy.deepcopy`` + relabel per message, handler call);
   2. our ``FastStreamClient.pump`` (orjson, no copy, decode to complete tick rows);
   3. our whole path: pump + conflating queue + pipelined XADD/HSET into the real Redis.
   Ratios are against (1), measured in the same run.
B. End to end: the ``streamer`` process subscribed to every load symbol while market-sim
   streams at ``--rate`` updates/s: ticks/s published to Redis (heartbeat counters), CPU
   microseconds per tick of the streamer process (psutil), conflated count, and the rate the
   simulator actually managed to send (it is a Python process on the same cores).
C. The everyday case (default tickers + SPY options at market-sim's default pace): CPU % of
   one core of the streamer process - what matters on a 5 %-of-a-vCPU Lightsail plan.

Targets (issue 4): >= 100k ticks/s and <= 10 us CPU per tick in the streamer process.

    .venv/bin/python bench/bench_streamer.py [--symbols 2000] [--rate 50000] [--seconds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import warnings
from pathlib import Path
from typing import Any

import psutil

from streamdesk.config import load_settings
from streamdesk.constants import HEARTBEAT_PATTERN
from streamdesk.localservers import RedisServer, free_port
from streamdesk.redisutil import create_redis
from streamdesk.schwab import ensure_paper_token, make_client, make_stream_client
from streamdesk_streamer import fields as F
from streamdesk_streamer.client import FastStreamClient
from streamdesk_streamer.config import Settings
from streamdesk_streamer.decode import Decoder
from streamdesk_streamer.publisher import Publisher
from streamdesk_streamer.tickqueue import ConflatingQueue

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from schwab.streaming import StreamClient

TARGET_TICKS_S = 100_000
TARGET_US_TICK = 10.0


def start_sim(tmp: Path, **env: Any) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    child = {k: v for k, v in os.environ.items() if not k.startswith("SIM_")}
    child.update({"SIM_PORT": str(port), "SIM_LOG_FORMAT": "text", "SIM_LOG_LEVEL": "WARNING"})
    child.update({f"SIM_{k.upper()}": str(v) for k, v in env.items()})
    log = open(tmp / "market-sim.log", "wb")  # noqa: SIM115 - owned by the process
    proc = subprocess.Popen([sys.executable, "-m", "streamdesk_sim"], env=child, stdout=log,
                            stderr=subprocess.STDOUT, cwd=tmp)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(base + "/admin/health", timeout=2).read()
            return proc, base
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((tmp / "market-sim.log").read_text()[-2000:]) from None
            time.sleep(0.1)


def sim_state(base: str) -> Any:
    with urllib.request.urlopen(base + "/admin/state", timeout=5) as resp:
        return json.loads(resp.read())


class ReplaySocket:
    """Hands recorded frames to a StreamClient as if they came off the websocket."""

    def __init__(self, frames: list[str]) -> None:
        self.frames = frames
        self.i = 0

    async def recv(self) -> str:
        f = self.frames[self.i]
        self.i += 1
        return f

    async def send(self, _data: str) -> None:
        return None

    async def close(self) -> None:
        return None


async def record_frames(settings: Settings, symbols: list[str], n: int) -> list[str]:
    client = make_client(settings, asyncio=True)
    stream = make_stream_client(client)
    await stream.login()
    fields = F.equity_fields()
    for i in range(0, len(symbols), 300):
        chunk = symbols[i : i + 300]
        if i == 0:
            await stream.level_one_equity_subs(chunk, fields=fields)
        else:
            await stream.level_one_equity_add(chunk, fields=fields)
    frames: list[str] = []
    while len(frames) < n:
        raw = await asyncio.wait_for(stream._socket.recv(), 10)
        if '"data"' in raw and "LEVELONE_EQUITIES" in raw:
            frames.append(raw)
    await stream._socket.close()
    await client.close_async_session()
    return frames


def count_items(frames: list[str]) -> int:
    return sum(len(d["content"]) for f in frames for d in json.loads(f)["data"])


async def measure_baseline(frames: list[str]) -> float:
    sc = StreamClient(object())
    seen = [0]

    def handler(msg: dict[str, Any]) -> None:
        seen[0] += len(msg["content"])

    sc.add_level_one_equity_handler(handler)
    sc._socket = ReplaySocket(frames)
    t0 = time.process_time()
    for _ in frames:
        await sc.handle_message()
    return time.process_time() - t0


async def measure_ours(
    frames: list[str], redis_url: str | None, partitions: int
) -> tuple[float, int]:
    decoder = Decoder()
    queue = ConflatingQueue(1_000_000)
    sink_rows: list[int] = [0]

    def sink(rows: list[tuple[Any, ...]]) -> None:
        if redis_url is None:
            sink_rows[0] += len(rows)
        else:
            queue.put_many(rows)

    fc = FastStreamClient(object(), decoder, sink)
    fc._socket = ReplaySocket(frames)
    pub = None
    redis = None
    if redis_url is not None:
        redis = create_redis(redis_url)
        pub = Publisher(redis, partitions=partitions)
    t0 = time.process_time()
    for batch, _ in enumerate(frames, 1):
        await fc.pump(5.0)
        if pub is not None and (batch % 20 == 0 or len(queue) > 10_000):
            rows = queue.drain()
            sink_rows[0] += len(rows)
            await pub.publish(rows)
    if pub is not None:
        rows = queue.drain()
        sink_rows[0] += len(rows)
        await pub.publish(rows)
    cpu = time.process_time() - t0
    if redis is not None:
        await redis.aclose()
    return cpu, sink_rows[0]


async def hb_counters(redis_url: str) -> dict[str, Any]:
    redis = create_redis(redis_url)
    try:
        async for key in redis.scan_iter(match=HEARTBEAT_PATTERN):
            raw = await redis.get(key)
            if raw:
                value = json.loads(raw)
                if value.get("service") == "streamer":
                    return dict(value["counters"])
    finally:
        await redis.aclose()
    return {}


async def end_to_end(args: argparse.Namespace, tmp: Path, base: str, redis_url: str,
                     symbols: list[str], **extra: str) -> dict[str, float]:  # fmt: skip
    env = {k: v for k, v in os.environ.items()}
    env.update(
        {
            "TICKERS": ",".join(symbols),
            "OPTION_UNDERLYINGS": extra.pop("OPTION_UNDERLYINGS", ""),
            "REDIS_URL": redis_url,
            "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/none",
            "SCHWAB_BASE_URL": base,
            "SCHWAB_TOKEN_PATH": str(tmp / "token-e2e.json"),
            "HEARTBEAT_INTERVAL": "1",
            "LOG_LEVEL": "WARNING",
            "LOG_FORMAT": "text",
            "STREAM_PARTITIONS": "4",
            **extra,
        }
    )
    log = open(tmp / "streamer.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "streamdesk_streamer"], env=env, stdout=log,
                            stderr=subprocess.STDOUT, cwd=tmp)  # fmt: skip
    try:
        ps = psutil.Process(proc.pid)
        deadline = time.monotonic() + 60
        while True:
            c = await hb_counters(redis_url)
            if c.get("state") == "streaming" and c.get("ticks_published", 0) > 0:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((tmp / "streamer.log").read_text()[-3000:])
            await asyncio.sleep(0.5)
        await asyncio.sleep(2)  # warm-up
        c0 = await hb_counters(redis_url)
        s0 = sim_state(base)["stats"]
        cpu0 = sum(ps.cpu_times()[:2])
        t0 = time.monotonic()
        await asyncio.sleep(args.seconds)
        c1 = await hb_counters(redis_url)
        s1 = sim_state(base)["stats"]
        cpu1 = sum(ps.cpu_times()[:2])
        t1 = time.monotonic()
        rss = ps.memory_info().rss / 2**20
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    # Heartbeat counters lag by up to one interval; both ends lag alike.
    ticks = c1["ticks_published"] - c0["ticks_published"]
    dt = t1 - t0
    return {
        "sim_sent_per_s": (s1["equity_updates"] - s0["equity_updates"]) / dt,
        "ticks_per_s": ticks / dt,
        "cpu_us_per_tick": (cpu1 - cpu0) / max(ticks, 1) * 1e6,
        "cpu_pct": (cpu1 - cpu0) / dt * 100,
        "conflated": float(c1["conflated"]),
        "reconnects": float(c1["reconnects"]),
        "rss_mb": rss,
        "exit_code": float(proc.returncode if proc.returncode is not None else -1),
    }


async def main_async(args: argparse.Namespace) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="bench-streamer-"))
    redis_server = RedisServer(tmp / "redis")
    redis_server.start()
    sim, base = start_sim(
        tmp, load_symbols=args.symbols, load_rate=args.rate, heartbeat_interval=2,
        send_queue=20000, option_underlyings="SPY",
    )  # fmt: skip
    symbols = [f"LD{i:05d}" for i in range(args.symbols)]
    try:
        settings = load_settings(
            Settings, schwab_base_url=base, schwab_token_path=tmp / "token.json",
            redis_url=redis_server.url,
        )  # fmt: skip
        ensure_paper_token(settings)
        frames = await record_frames(settings, symbols, args.frames)
        items = count_items(frames)
        print(f"recorded {len(frames)} frames, {items} level-one items "
              f"({items / len(frames):.1f} per frame)")  # fmt: skip
        base_cpu = await measure_baseline(frames)
        dec_cpu, dec_ticks = await measure_ours(frames, None, 4)
        full_cpu, _ = await measure_ours(frames, redis_server.url, 4)
        us = lambda cpu: cpu / items * 1e6  # noqa: E731
        print("\nA. CPU per tick on identical frames (in-process)")
        print(
            f"  baseline schwab-py handle_message (deepcopy+relabel): {us(base_cpu):6.2f} us/tick"
        )
        print(
            f"  FastStreamClient.pump -> tick rows:                 {us(dec_cpu):6.2f} us/tick"
            f"  ({base_cpu / dec_cpu:.1f}x faster, {dec_ticks} ticks)"
        )
        print(
            f"  pump + queue + XADD/HSET pipeline into Redis:       {us(full_cpu):6.2f} us/tick"
            f"  ({base_cpu / full_cpu:.1f}x baseline; {items / full_cpu:,.0f} ticks/s of CPU)"
        )
        await asyncio.sleep(1)
        e2e = await end_to_end(args, tmp, base, redis_server.url, symbols)
        print("\nB. End to end: market-sim load mode "
              f"({args.symbols} symbols, asked {args.rate:,.0f} updates/s) -> streamer "
              f"process -> Redis, {args.seconds:.0f}s")  # fmt: skip
        print(f"  simulator actually sent:   {e2e['sim_sent_per_s']:10,.0f} updates/s")
        print(f"  streamer published:        {e2e['ticks_per_s']:10,.0f} ticks/s")
        print(
            f"  streamer CPU per tick:     {e2e['cpu_us_per_tick']:10.2f} us  "
            f"(process CPU {e2e['cpu_pct']:.0f}% of one core, RSS {e2e['rss_mb']:.0f} MB)"
        )
        print(f"  conflated: {e2e['conflated']:.0f}, reconnects: {e2e['reconnects']:.0f}")
        cap = 1e6 / e2e["cpu_us_per_tick"]
        print(
            f"  => capacity at 100% of one core: {cap:,.0f} ticks/s "
            f"(target >= {TARGET_TICKS_S:,}); CPU target <= {TARGET_US_TICK} us/tick: "
            f"{'met' if e2e['cpu_us_per_tick'] <= TARGET_US_TICK else 'MISSED'}"
        )
        # C. The everyday case: default tickers and SPY options at market-sim's default pace.
        sim.terminate()
        sim.wait(10)
        sim, base = start_sim(tmp, heartbeat_interval=10)
        quiet = await end_to_end(
            args, tmp, base, redis_server.url, ["SPY", "QQQ", "AAPL", "MSFT", "NVDA"],
            OPTION_UNDERLYINGS="SPY", HEARTBEAT_INTERVAL="5",
        )  # fmt: skip
        print(
            "\nC. Everyday load: 5 tickers + 24 SPY option contracts at market-sim's default pace"
        )
        print(f"  streamer published:        {quiet['ticks_per_s']:10,.0f} ticks/s")
        print(f"  streamer process CPU:      {quiet['cpu_pct']:10.2f} % of one core  "
              f"(RSS {quiet['rss_mb']:.0f} MB)")  # fmt: skip
    finally:
        sim.terminate()
        try:
            sim.wait(10)
        except subprocess.TimeoutExpired:
            sim.kill()
        redis_server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--symbols", type=int, default=2000)
    p.add_argument("--rate", type=float, default=50_000)
    p.add_argument("--seconds", type=float, default=15)
    p.add_argument("--frames", type=int, default=400)
    return asyncio.run(main_async(p.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
