"""RSS of the live stack under the reference workload, per process and in total.

Starts its own PostgreSQL and Redis (AOF on, as in compose) from local binaries, migrates,
starts market-sim (the market; not counted: it is not part of the live stack) with the
reference universe (5 tickers + 200 option contracts: 5 underlyings x 2 expirations x 10
strikes x call/put), then the live services with ``BATCH_INTERVAL=1`` and one WebSocket client
on the gateway (a browser's live feed). Once rows are committed and the client receives
them, it samples every process's RSS once a second for ``--seconds`` and prints, per process,
the median RSS of the window and the peak (``VmHWM``), then the totals, and the CPU (% of
one core) each process used in the window.

Modes (``--mode``):

- ``separate``: one process per service (what compose runs today);
- ``combined``: ``streamdesk-stack <--group>`` (``python -m streamdesk.multiservice``: one
  interpreter for those services) and every other service alone; the trade-executor always
  runs alone. The default group is docker-compose.small.yml's.

``--bytecode cached`` runs the services with compiled bytecode (``PYTHONPYCACHEPREFIX``,
written once before the run), as the images do (``UV_COMPILE_BYTECODE=1``); ``as-is`` keeps
the caller's environment (``PYTHONDONTWRITEBYTECODE=1`` here: every start compiles from
source: 7-17 MB more per process right after the imports, ~15 MB over the whole stack
at work; docs/deploy.md). ``--env K=V`` is passed to every service
(``MALLOC_ARENA_MAX=1``, ``PYTHONMALLOC=malloc`` ...). ``--json PATH`` writes the figures.

    .venv/bin/python bench/bench_memory.py                        # both modes, 30 s each
    .venv/bin/python bench/bench_memory.py --mode separate --bytecode as-is
    .venv/bin/python bench/bench_memory.py --mode combined --env MALLOC_ARENA_MAX=1

Exit code 1 if the total of the last mode measured exceeds ``--budget`` (250 MB).
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
import psutil
import websockets
from streamdesk_dev.localservers import PostgresServer, RedisServer, free_port, terminate

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TICKERS = "SPY,QQQ,AAPL,MSFT,NVDA"
GATEWAY_TOKEN = "bench-memory-token-0123456789abcdef"
#: (program, console script) of the live stack; ``strategy`` only when installed.
LIVE = [
    ("streamer", "streamer"),
    ("indicators", "indicators"),
    ("trade-executor", "trade-executor"),
    ("health", "health"),
    ("gateway", "gateway"),
    ("strategy", "strategy"),
]
DEFAULT_GROUP = "streamer,indicators,health,gateway,strategy"
MAIN_MODULES = [
    "streamdesk_streamer.__main__",
    "streamdesk_indicators.__main__",
    "streamdesk_executor.__main__",
    "streamdesk_health.__main__",
    "streamdesk_gateway.__main__",
    "streamdesk.multiservice",
    "streamdesk_sim.__main__",
]


def _vm(pid: int, key: str) -> float:
    """A ``/proc/<pid>/status`` figure in MB (``VmRSS``, ``VmHWM``)."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def _wait_http(url: str, timeout: float, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited ({proc.returncode}) before {url} answered")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1):
            return
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


def _compile_bytecode(cache: Path, env: dict[str, str]) -> None:
    """Write the bytecode of everything the services import into ``cache`` (once)."""
    code = (
        "import contextlib,importlib,sys\nfor m in sys.argv[1:]:\n"
        "    with contextlib.suppress(ImportError):\n        importlib.import_module(m)\n"
    )
    # schwab-py, PyJWT, the websocket stack: imported lazily, so imported here by name.
    extra = ["schwab.auth", "schwab.client", "schwab.streaming", "jwt", "websockets.client"]
    subprocess.run(
        [sys.executable, "-c", code, *MAIN_MODULES, *extra], env=env, check=True, cwd=ROOT
    )


class Run:
    """One live stack on free ports in ``tmp`` (Postgres, Redis and market-sim shared)."""

    def __init__(self, tmp: Path, env: dict[str, str], log: Path) -> None:
        self.tmp, self.env, self.log = tmp, env, log
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, argv: list[str]) -> None:
        out = open(self.log / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
        self.procs[name] = subprocess.Popen(
            argv, env=self.env, cwd=self.tmp, stdout=out, stderr=subprocess.STDOUT
        )
        out.close()

    def stop(self) -> None:
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
        for proc in self.procs.values():
            terminate(proc, 20)


async def _committed_rows(dsn: str) -> int:
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM option_prices"))
    finally:
        await conn.close()


async def _ws_client(port: int, received: list[int], stop: asyncio.Event) -> None:
    """A browser's live feed: read every message until ``stop``."""
    url = f"ws://127.0.0.1:{port}/ws"
    headers = {"Authorization": f"Bearer {GATEWAY_TOKEN}"}
    while not stop.is_set():
        try:
            async with websockets.connect(url, additional_headers=headers, max_size=None) as ws:
                while not stop.is_set():
                    with contextlib.suppress(TimeoutError):
                        message = await asyncio.wait_for(ws.recv(), 1.0)
                        if '"ping"' not in str(message)[:40]:
                            received[0] += 1
        except (OSError, websockets.WebSocketException):
            await asyncio.sleep(0.5)


async def measure(
    run: Run, dsn: str, gw_port: int, seconds: float, warmup: float
) -> dict[str, Any]:
    """Wait for committed rows and live messages, then sample RSS for ``seconds``."""
    received = [0]
    stop = asyncio.Event()
    client = asyncio.create_task(_ws_client(gw_port, received, stop))
    try:
        deadline = time.monotonic() + 120
        while (await _committed_rows(dsn)) == 0 or received[0] == 0:
            for name, proc in run.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited ({proc.returncode}); see {run.log}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"no committed rows / live messages within 120 s; {run.log}")
            await asyncio.sleep(0.5)
        await asyncio.sleep(warmup)
        ps = {name: psutil.Process(proc.pid) for name, proc in run.procs.items()}
        cpu0 = {name: sum(p.cpu_times()[:2]) for name, p in ps.items()}
        rows0, msgs0, t0 = await _committed_rows(dsn), received[0], time.monotonic()
        samples: dict[str, list[float]] = {name: [] for name in run.procs}
        while time.monotonic() - t0 < seconds:
            for name, proc in run.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited ({proc.returncode}) during the window")
                samples[name].append(_vm(proc.pid, "VmRSS"))
            await asyncio.sleep(1.0)
        dt = time.monotonic() - t0
        rows1, msgs1 = await _committed_rows(dsn), received[0]
        peaks = {name: _vm(proc.pid, "VmHWM") for name, proc in run.procs.items()}
        cpu = {name: (sum(p.cpu_times()[:2]) - cpu0[name]) / dt * 100 for name, p in ps.items()}
    finally:
        stop.set()
        await asyncio.wait({client}, timeout=5)
    return {
        "rss_mb": {k: round(statistics.median(v), 1) for k, v in samples.items()},
        "peak_mb": {k: round(v, 1) for k, v in peaks.items()},
        "cpu_pct": {k: round(v, 1) for k, v in cpu.items()},
        "option_rows_per_s": round((rows1 - rows0) / dt, 1),
        "ws_messages_per_s": round((msgs1 - msgs0) / dt, 2),
    }


def run_mode(args: argparse.Namespace, mode: str, base_env: dict[str, str]) -> dict[str, Any]:
    """Start Postgres, Redis, market-sim and the live stack in ``mode``; measure; stop."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    tmp.chmod(0o755)  # the postgres user traverses it when this runs as root
    logs = tmp / "logs"
    logs.mkdir()
    pg = PostgresServer(tmp / "pg", durable=False)
    redis = RedisServer(tmp / "redis", persist=True)
    sim_port, gw_port, health_port = free_port(), free_port(), free_port()
    run: Run | None = None
    sim: Run | None = None
    try:
        pg.start()
        redis.start()
        asyncio.run(_create_db(pg.url))
        dsn = pg.dsn("streamdesk")
        env = {
            **base_env,
            "DATABASE_URL": dsn,
            "REDIS_URL": redis.url,
            "MIGRATIONS_DIR": str(ROOT / "migrations"),
            "SCHWAB_BASE_URL": f"http://127.0.0.1:{sim_port}",
            "SCHWAB_TOKEN_PATH": str(tmp / "schwab-token.json"),
            "TRADING_MODE": "paper",
            "TICKERS": TICKERS,
            "OPTION_UNDERLYINGS": TICKERS,
            "OPTION_STRIKES": "10",
            "OPTION_EXPIRATIONS": "2",
            "BATCH_INTERVAL": "1",
            "GATEWAY_PORT": str(gw_port),
            "GATEWAY_TOKEN": GATEWAY_TOKEN,
            "GATEWAY_TOKEN_PATH": str(tmp / "gateway-token"),
            "HEALTH_PORT": str(health_port),
            "LOG_FORMAT": "json",
            "SIM_PORT": str(sim_port),
            "SIM_CLOCK": "always",
            "SIM_OPTION_UNDERLYINGS": TICKERS,
            "SIM_OPTION_STRIKES": "10",
            "SIM_OPTION_EXPIRATIONS": "2",
            # As docker-compose.yml runs the strategy service (its backfill loads schwab-py).
            "BACKFILL_ENABLED": "true",
            **dict(kv.split("=", 1) for kv in args.env),
        }
        subprocess.run(
            [sys.executable, "-m", "streamdesk.cli", "migrate"],
            env=env, cwd=tmp, check=True, capture_output=True,
        )  # fmt: skip
        sim = Run(tmp, env, logs)
        sim.start("market-sim", [str(BIN / "market-sim")])
        _wait_http(f"http://127.0.0.1:{sim_port}/admin/health", 60, sim.procs["market-sim"])
        run = Run(tmp, env, logs)
        installed = [(n, s) for n, s in LIVE if (BIN / s).exists()]
        group = [g for g in args.group.split(",") if g] if mode == "combined" else []
        if "trade-executor" in group:
            raise SystemExit("the trade-executor always runs alone (it places orders)")
        venvs = dict(kv.split("=", 1) for kv in args.venv)
        if group:
            python = Path(venvs.get("group", BIN.parent)) / "bin" / "python"
            argv = [str(python), "-m", "streamdesk.multiservice", ",".join(group)]
            run.start("+".join(group), argv)
        for name, script in installed:
            if name not in group:
                run.start(name, [str(Path(venvs.get(name, BIN.parent)) / "bin" / script)])
        result = asyncio.run(measure(run, dsn, gw_port, args.seconds, args.warmup))
        assert redis.proc is not None
        result["rss_mb"]["redis"] = round(_vm(redis.proc.pid, "VmRSS"), 1)
        result["peak_mb"]["redis"] = round(_vm(redis.proc.pid, "VmHWM"), 1)
        result["total_rss_mb"] = round(sum(result["rss_mb"].values()), 1)
        result["total_peak_mb"] = round(sum(result["peak_mb"].values()), 1)
        result["mode"] = mode
        return result
    except Exception:
        args.keep = True  # the logs of what failed
        for log in sorted(logs.glob("*.log")):
            tail = log.read_text(errors="replace").splitlines()[-3:]
            print(f"  {log.name}: " + "\n    ".join(line[:300] for line in tail))
        raise
    finally:
        if run is not None:
            run.stop()
        if sim is not None:
            sim.stop()
        redis.stop()
        pg.stop("immediate")
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"  kept {tmp}")


async def _create_db(url: str) -> None:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        await conn.execute('CREATE DATABASE "streamdesk"')
    finally:
        await conn.close()


def print_table(results: list[dict[str, Any]]) -> None:
    """Per process: median RSS and peak (MB) of each mode, then the totals."""
    names: list[str] = []
    for r in results:
        names += [n for n in r["rss_mb"] if n not in names]
    width = max(len(n) for n in [*names, "process"])
    print(
        f"  {'process':<{width}}"
        + "".join(f"  {r['mode'] + ' RSS':>14} {'peak':>6}" for r in results)
    )
    for name in names:
        cells = [
            f"  {r['rss_mb'][name]:14.1f} {r['peak_mb'][name]:6.1f}"
            if name in r["rss_mb"] else f"  {'-':>14} {'-':>6}"
            for r in results
        ]  # fmt: skip
        print(f"  {name:<{width}}" + "".join(cells))
    totals = "".join(f"  {r['total_rss_mb']:14.1f} {r['total_peak_mb']:6.1f}" for r in results)
    print(f"  {'total':<{width}}{totals}")
    for r in results:
        cpu = ", ".join(f"{k} {v}" for k, v in r["cpu_pct"].items())
        print(
            f"  {r['mode']}: option rows/s {r['option_rows_per_s']}, live messages/s "
            f"{r['ws_messages_per_s']}; CPU % of one core: {cpu} (total "
            f"{sum(r['cpu_pct'].values()):.1f})"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=["separate", "combined", "both"], default="both")
    parser.add_argument("--group", default=DEFAULT_GROUP, help="services of run-many")
    parser.add_argument("--bytecode", choices=["cached", "as-is"], default="cached")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--env", action="append", default=[], metavar="K=V")
    parser.add_argument(
        "--venv",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="run service NAME (or the combined 'group') from the virtualenv DIR, e.g. one "
        "made as the image makes it: uv sync --frozen --no-dev --package <member>",
    )
    parser.add_argument("--budget", type=float, default=250.0)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs)")
    args = parser.parse_args()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "SCHWAB_BASE_URL", "TRADING_MODE")
    }
    env.setdefault("MALLOC_ARENA_MAX", "2")  # as in docker-compose.yml
    if args.bytecode == "cached":
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir()) / "streamdesk-pycache")
        _compile_bytecode(Path(env["PYTHONPYCACHEPREFIX"]), env)
    modes = ["separate", "combined"] if args.mode == "both" else [args.mode]
    results = []
    for mode in modes:
        print(f"== {mode} ({args.bytecode} bytecode; env {' '.join(args.env) or '-'})", flush=True)
        results.append(run_mode(args, mode, env))
    print_table(results)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "bytecode": args.bytecode,
            "env": args.env,
            "venv": args.venv,
            "seconds": args.seconds,
        }
        args.json.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    return 0 if results[-1]["total_rss_mb"] <= args.budget else 1


if __name__ == "__main__":
    sys.exit(main())
