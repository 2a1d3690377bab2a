"""Benchmark of market-sim's load mode: updates/s delivered to one schwab-py client, sim CPU.

Starts market-sim in load mode (``--symbols`` load symbols ``LD00000``..., ``--rate``
aggregate level-one updates per second) and measures, each phase for ``--seconds``:

1. **baseline (idle)**: load mode running, nobody subscribed: the cost of the market model
   alone (sim CPU %);
2. **raw websocket client**: a minimal client (``websockets`` + ``json.loads``) subscribed to
   every load symbol: the simulator's own ceiling;
3. **schwab-py StreamClient**: the real, unmodified client (``handle_message`` with a no-op
   handler), the configuration the acceptance criterion names.

For 2 and 3: updates/s received (content entries), the ratio to the configured rate, sim CPU %
(psutil, user+system of the sim process over the window), sim CPU microseconds per update, the
ratio of sim CPU to the idle baseline, and the client's own CPU % (when the client is at ~100%
of a core, the client, not the simulator, is the limit). Exit code 1 if the schwab-py phase
sustains less than 95% of the configured rate.

    .venv/bin/python bench/bench_market_sim.py [--symbols 2000] [--rate 10000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import websockets
from streamdesk_dev.localservers import free_port

from streamdesk.config import CommonSettings
from streamdesk.schwab import ensure_paper_token, make_client, make_stream_client

FIELDS = "0,1,2,3,4,5,8,9,33,34,35"  # what a tick consumer needs


def start_sim(tmp: Path, **env: Any) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    child = {k: v for k, v in os.environ.items() if not k.startswith("SIM_")}
    child.update({"SIM_PORT": str(port), "SIM_LOG_FORMAT": "text", "SIM_LOG_LEVEL": "WARNING"})
    child.update({f"SIM_{k.upper()}": str(v) for k, v in env.items()})
    log = open(tmp / "market-sim.log", "wb")  # noqa: SIM115 - owned by the process
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamdesk_sim"], env=child, stdout=log, stderr=subprocess.STDOUT
    )
    log.close()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(base + "/admin/health", timeout=2).read()
            return proc, base
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError((tmp / "market-sim.log").read_text()[-2000:]) from None
            time.sleep(0.1)


def sim_stats(base: str) -> dict[str, Any]:
    with urllib.request.urlopen(base + "/admin/state", timeout=5) as resp:
        return json.loads(resp.read())  # type: ignore[no-any-return]


class CpuWindow:
    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)

    def __enter__(self) -> CpuWindow:
        t = self.proc.cpu_times()
        self.cpu0, self.t0 = t.user + t.system, time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        t = self.proc.cpu_times()
        self.cpu = t.user + t.system - self.cpu0
        self.wall = time.monotonic() - self.t0

    @property
    def percent(self) -> float:
        return 100.0 * self.cpu / self.wall


async def raw_client(
    base: str, token: str, symbols: list[str], seconds: float
) -> tuple[int, float]:
    ws_url = base.replace("http", "ws") + "/ws"
    async with websockets.connect(ws_url, max_size=None) as ws:
        reqs = [
            {
                "service": "ADMIN",
                "command": "LOGIN",
                "requestid": "0",
                "parameters": {"Authorization": token},
            },
            {
                "service": "LEVELONE_EQUITIES",
                "command": "SUBS",
                "requestid": "1",
                "parameters": {"keys": ",".join(symbols), "fields": FIELDS},
            },
        ]
        await ws.send(json.dumps({"requests": reqs}))
        # Skip the snapshot, then count.
        n = 0
        start = end = 0.0
        while True:
            msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if "data" not in msg:
                continue
            if not end:
                start = time.monotonic()
                end = start + seconds
                continue
            for d in msg["data"]:
                n += len(d["content"])
            if time.monotonic() >= end:
                return n, time.monotonic() - start


async def schwab_client(
    settings: CommonSettings, symbols: list[str], seconds: float
) -> tuple[int, float]:
    client = make_client(settings, asyncio=True)
    stream = make_stream_client(client)
    count = [0]
    stream.add_level_one_equity_handler(
        lambda m: count.__setitem__(0, count[0] + len(m["content"]))
    )
    await stream.login(websocket_connect_args={"max_size": None})
    fields = [stream.LevelOneEquityFields(int(f)) for f in FIELDS.split(",")]
    await stream.level_one_equity_subs(symbols, fields=fields)
    await asyncio.wait_for(stream.handle_message(), 10)  # the snapshot
    count[0] = 0
    start = time.monotonic()
    end = start + seconds
    while time.monotonic() < end:
        await asyncio.wait_for(stream.handle_message(), 10)
    n, elapsed = count[0], time.monotonic() - start
    with contextlib.suppress(Exception):
        await asyncio.wait_for(stream.logout(), 5)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(stream._socket.close(), 3)
    await client.close_async_session()
    return n, elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbols", type=int, default=2000)
    ap.add_argument("--rate", type=float, default=10_000.0)
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-sim-"))
    proc, base = start_sim(
        tmp,
        load_symbols=args.symbols,
        load_rate=args.rate,
        tick_interval=5,
        option_underlyings="SPY",
        sent_log_size=0,
        max_symbols=args.symbols + 10,
        send_queue=5000,
    )
    symbols = [f"LD{i:05d}" for i in range(args.symbols)]
    settings = CommonSettings(
        schwab_base_url=base, schwab_token_path=tmp / "token.json", trading_mode="paper"
    )
    ensure_paper_token(settings)
    token = json.loads((tmp / "token.json").read_text())["token"]["access_token"]
    results: dict[str, Any] = {}
    try:
        time.sleep(1.0)
        with CpuWindow(proc.pid) as idle:
            time.sleep(args.seconds)
        results["idle"] = idle
        print(
            f"market-sim load mode: {args.symbols} symbols at {args.rate:.0f} updates/s "
            f"configured, {args.seconds:.0f} s per phase, machine cores={os.cpu_count()}"
        )
        print(f"1. baseline, no subscriber:  sim CPU {idle.percent:5.1f}%")
        for label, runner in (
            ("2. raw websocket client:   ", lambda: raw_client(base, token, symbols, args.seconds)),
            ("3. schwab-py StreamClient: ", lambda: schwab_client(settings, symbols, args.seconds)),
        ):
            with CpuWindow(proc.pid) as w, CpuWindow(os.getpid()) as me:
                n, elapsed = asyncio.run(runner())
            rate = n / elapsed
            per = 1e6 * w.cpu / max(n, 1)
            print(
                f"{label} {rate:9.0f} updates/s ({rate / args.rate:5.1%} of configured), "
                f"sim CPU {w.percent:5.1f}% ({w.percent / max(idle.percent, 0.1):4.1f}x idle), "
                f"{per:5.1f} us sim CPU per update; client CPU {me.percent:5.1f}%"
            )
            results[label] = rate
        state = sim_stats(base)
        print(f"sim counters: {state['stats']}, connections now {len(state['connections'])}")
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
    schwab_rate = results["3. schwab-py StreamClient: "]
    ok = schwab_rate >= 0.95 * args.rate
    print("PASS" if ok else "FAIL", f"schwab-py client sustained {schwab_rate:.0f}/{args.rate:.0f}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
