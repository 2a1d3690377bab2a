"""The whole StreamDesk stack as local processes, faults at seeded random moments, a workload.

``Stack`` starts PostgreSQL (durable: fsync on) and Redis (AOF, ``appendfsync everysec``)
from local binaries (``streamdesk_dev.localservers``), a :class:`~chaos_proxy.TcpProxy` in front
of each, then every service from its console script in ``.venv/bin`` with its configuration
in the environment, all pointed at the proxies. A supervisor task restarts any service that
exits (as compose's ``restart: unless-stopped`` would). ``market-sim`` is the market and the
broker, and the oracle: its sent log (``/admin/sent``) is what went in, its order book
(``/admin/broker/orders``) is what the broker received; it is hung (SIGSTOP) and made to
misbehave through its fault endpoints but never killed, because a restart would erase both.

Nothing here depends on the wall clock: ``MARKET_HOURS=always`` and the simulator's
always-open clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import ROUND_UP, Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import asyncpg
import redis.asyncio as aioredis
from chaos_profiles import FAULT_KINDS, Profile
from chaos_proxy import TcpProxy
from streamdesk_dev.localservers import PostgresServer, RedisServer, free_port

from streamdesk import constants
from streamdesk.migrate import migrate
from streamdesk.partitions import ensure_partitions

log = logging.getLogger("chaos")

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
#: libfaketime's variables pass through, so `make test-clock` moves the services' clocks too.
CLOCK_ENV = ("LD_PRELOAD", "FAKETIME")
EQ = "LEVELONE_EQUITIES"
OPT = "LEVELONE_OPTIONS"
#: The gateway's API token in the harness (GATEWAY_TOKEN); trades go through it authenticated.
GATEWAY_TOKEN = "chaos-harness-gateway-token"
ALL_SERVICES = ("streamer", "indicators", "trade-executor", "health", "gateway")
#: Faults that can interrupt the market-data stream (and so explain a recorded gap).
STREAM_FAULTS = (
    "kill9:streamer",
    "stop:streamer",
    "stop:market-sim",
    "sim:ws_drop",
    "sim:ws_pause",
    "final:stop",
)
SIM_KEY = "streamdesk-sim-key"
SIM_SECRET = "streamdesk-sim-secret"


# --------------------------------------------------------------------------- records
@dataclass
class Fault:
    """One injected fault: kind, what it hit, when (epoch seconds, wall clock)."""

    kind: str
    start: float
    end: float = 0.0
    detail: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "start": self.start, "end": self.end, "detail": self.detail}


@dataclass
class Service:
    """One supervised service process."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    killed_by_us: bool = False
    stopped: bool = False  # SIGSTOPped right now
    unexpected_exits: list[int] = field(default_factory=list)

    def spawn(self) -> None:
        out = self.log_path.open("ab")
        try:
            out.write(f"\n===== start #{self.starts + 1} at {time.time():.3f}\n".encode())
            out.flush()
            self.proc = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=self.log_path.parent,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a terminal's Ctrl-C reaches only the harness
            )
        finally:
            out.close()
        self.starts += 1
        self.killed_by_us = False
        self.stopped = False

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> bool:
        if not self.alive:
            return False
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(sig)
            return True
        return False

    def terminate(self, timeout: float = 15.0) -> int | None:
        """SIGCONT + SIGTERM, then SIGKILL after ``timeout``; the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.killed_by_us = True
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGCONT)
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode


# --------------------------------------------------------------------------- market-sim
class SimAdmin:
    """Blocking client of market-sim's ``/admin`` endpoints (call through ``asyncio.to_thread``)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def call(self, method: str, path: str, body: Any = None, timeout: float = 5.0) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.base_url + "/admin/" + path.lstrip("/"),
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None

    async def acall(self, method: str, path: str, body: Any = None, timeout: float = 5.0) -> Any:
        return await asyncio.to_thread(self.call, method, path, body, timeout)


class SentLog:
    """What market-sim sent, copied incrementally (``?since=``) so its bounded log never
    overflows: ``updates[(service, symbol)]`` = every entry, in ``seq`` order."""

    def __init__(self, admin: SimAdmin) -> None:
        self.admin = admin
        self.updates: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.incomplete: list[str] = []
        self.polls = 0

    def _poll(self) -> None:
        summary = self.admin.call("GET", "sent", timeout=5.0)
        for service, symbols in summary.items():
            for symbol, counts in symbols.items():
                have = self.updates.setdefault((service, symbol), [])
                last = have[-1]["seq"] if have else 0
                if counts["count"] <= last:
                    continue
                got = self.admin.call(
                    "GET", f"sent/{service}/{quote(symbol, safe='')}?since={last}", timeout=10.0
                )
                if not got["complete"]:
                    self.incomplete.append(f"{service}/{symbol} after seq {last}")
                have.extend(u for u in got["updates"] if u["seq"] > last)
        self.polls += 1

    async def poll(self) -> bool:
        """One incremental copy; False if the simulator did not answer (e.g. SIGSTOPped)."""
        try:
            await asyncio.to_thread(self._poll)
        except (OSError, urllib.error.URLError, TimeoutError, json.JSONDecodeError):
            return False
        return True

    def count(self) -> int:
        return sum(len(v) for v in self.updates.values())


# --------------------------------------------------------------------------- the stack
class Stack:
    """Servers, proxies, services, supervisor, faults and workload of one chaos run."""

    def __init__(
        self,
        profile: Profile,
        *,
        services: Iterable[str] = ALL_SERVICES,
        indicators_argv: list[str] | None = None,
        extra_env: dict[str, str] | None = None,
        workdir: Path | None = None,
    ) -> None:
        self.profile = profile
        self.rng = random.Random(profile.seed)
        self.wanted = tuple(services)
        self.indicators_argv = indicators_argv
        self.extra_env = dict(extra_env or {})
        self.root = workdir or Path(tempfile.mkdtemp(prefix="streamdesk-chaos-"))
        self._own_root = workdir is None
        if os.geteuid() == 0:
            self.root.chmod(0o755)  # the postgres user must traverse it
        self.pg = PostgresServer(self.root / "pg", durable=True)
        self.redis = RedisServer(self.root / "redis", persist=True)
        self.pg_proxy: TcpProxy | None = None
        self.redis_proxy: TcpProxy | None = None
        self.sim: Service | None = None
        self.sim_port = free_port()
        self.admin = SimAdmin(f"http://127.0.0.1:{self.sim_port}")
        self.sent = SentLog(self.admin)
        self.services: dict[str, Service] = {}
        self.ports = {"health": free_port(), "gateway": free_port()}
        self.faults: list[Fault] = []
        self.fault_errors: list[str] = []
        self._locks: dict[str, asyncio.Lock] = {}
        self._supervising = False
        self._tasks: list[asyncio.Task[Any]] = []
        self.trades_acked: list[int] = []  # trade ids a client was told were created
        self.trade_attempts = 0
        self.trade_failures = 0
        self.health_final: dict[str, Any] | None = None
        self.db_name = "streamdesk"
        self._retired: list[Service] = []

    # ------------------------------------------------------------------ urls
    @property
    def dsn(self) -> str:
        """Direct DSN (the harness and the checker; never through the proxy)."""
        return self.pg.dsn(self.db_name)

    @property
    def redis_url(self) -> str:
        return self.redis.url

    def _service_env(self) -> dict[str, str]:
        assert self.pg_proxy is not None and self.redis_proxy is not None
        keep = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "PYTHONPATH", "VIRTUAL_ENV", *CLOCK_ENV)
        env = {k: v for k, v in os.environ.items() if k in keep}
        p = self.profile
        env.update(
            {
                "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{self.pg_proxy.port}/"
                f"{self.db_name}",
                "REDIS_URL": f"redis://127.0.0.1:{self.redis_proxy.port}/0",
                "TICKERS": ",".join(p.tickers),
                "STREAM_PARTITIONS": "2",
                "MARKET_HOURS": "always",
                "TRADING_MODE": "paper",
                "SCHWAB_BASE_URL": self.admin.base_url,
                "SCHWAB_TOKEN_PATH": str(self.root / "schwab-token.json"),
                "SCHWAB_API_KEY": SIM_KEY,
                "SCHWAB_APP_SECRET": SIM_SECRET,
                "LOG_FORMAT": "text",
                "LOG_LEVEL": "INFO",
                "HEARTBEAT_INTERVAL": "1",
                "HEARTBEAT_TTL": "5",
                "SHUTDOWN_TIMEOUT": "8",
                # streamer
                "OPTION_UNDERLYINGS": "SPY",
                "OPTION_STRIKES": "2",
                "OPTION_EXPIRATIONS": "1",
                "OPTION_RECENTER_INTERVAL": "3600",
                "HEARTBEAT_TIMEOUT": "3",
                "CONNECT_TIMEOUT": "5",
                "BACKOFF_INITIAL": "0.1",
                "BACKOFF_MAX": "1",
                "STREAM_RETENTION_SECONDS": "86400",  # the checker replays the whole stream
                "STREAM_MAX_ENTRIES": "10000000",
                # indicators
                "BATCH_INTERVAL": "0.5",
                "INSTANCE_ID": "chaos-indicators",
                "LEASE_TTL": "6",
                "RETRY_MAX_DELAY": "1",
                # trade-executor (and the gateway's pre-check)
                "EXECUTOR_POLL_INTERVAL": "0.3",
                "EXECUTOR_SYNC_INTERVAL": "0.3",
                "EXECUTOR_BROKER_TIMEOUT": "2",
                "EXECUTOR_SUBMIT_GRACE": "1",
                "EXECUTOR_ABSENT_AFTER": "10",
                "EXECUTOR_ALERT_AFTER": "5",
                "EXECUTOR_BALANCE_INTERVAL": "5",
                "RISK_ALLOW_MARKET_ORDERS": "true",
                "RISK_DUPLICATE_WINDOW": "0",
                "RISK_MAX_ORDERS_PER_MINUTE": "100000",
                "RISK_MAX_DAILY_NOTIONAL": "1000000000",
                "RISK_MAX_ORDER_NOTIONAL": "10000000",
                "RISK_QUOTE_MAX_AGE": "30",
                "RISK_MAX_QUANTITY_EQUITY": "1000",
                # health, gateway
                "HEALTH_PORT": str(self.ports["health"]),
                "HEALTH_CHECK_INTERVAL": "1",
                "GATEWAY_PORT": str(self.ports["gateway"]),
                "GATEWAY_TOKEN": GATEWAY_TOKEN,
                "CHAOS_DIR": str(self.root),
            }
        )
        env.update(self.extra_env)
        return env

    # ------------------------------------------------------------------ start / stop
    async def start(self) -> None:
        """Servers, schema, proxies, market-sim, then every wanted service."""
        await asyncio.to_thread(self.pg.start)
        await asyncio.to_thread(self.redis.start)
        admin = await asyncpg.connect(self.pg.url)
        try:
            await admin.execute(f'CREATE DATABASE "{self.db_name}"')
        finally:
            await admin.close()
        conn = await asyncpg.connect(self.dsn)
        try:
            await migrate(conn, Path(os.environ.get("MIGRATIONS_DIR") or ROOT / "migrations"))
            await ensure_partitions(conn, days_ahead=3, days_behind=1)
        finally:
            await conn.close()
        self.pg_proxy = TcpProxy(self.pg.port, "pg")
        self.redis_proxy = TcpProxy(self.redis.port, "redis")
        self.pg_proxy.start()
        self.redis_proxy.start()
        await self._start_sim()
        env = self._service_env()
        for name in self.wanted:
            argv = [str(BIN / name)]
            if name == "indicators" and self.indicators_argv:
                argv = self.indicators_argv
            svc = Service(name, argv, dict(env), self.root / f"{name}.log")
            self.services[name] = svc
            svc.spawn()
        self._supervising = True
        self._tasks.append(asyncio.create_task(self._supervise(), name="chaos-supervisor"))
        self._tasks.append(asyncio.create_task(self._poll_sent(), name="chaos-sentlog"))

    async def _start_sim(self) -> None:
        p = self.profile
        keep = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", *CLOCK_ENV)
        env = {k: v for k, v in os.environ.items() if k in keep}
        env.update(
            {
                "SIM_HOST": "127.0.0.1",
                "SIM_PORT": str(self.sim_port),
                "SIM_SEED": str(p.seed),
                "SIM_CLOCK": "always",
                "SIM_TICK_INTERVAL": str(p.tick_interval),
                "SIM_OPTION_INTERVAL": "0.5",
                "SIM_OPTION_UNDERLYINGS": "SPY",
                "SIM_HEARTBEAT_INTERVAL": "1",
                "SIM_SENT_LOG_SIZE": "5000",
                "SIM_SENT_LOG_TOTAL": "100000",
                "SIM_INITIAL_CASH": "100000000",
                "SIM_LOG_FORMAT": "text",
                "SIM_APP_KEY": SIM_KEY,
                "SIM_APP_SECRET": SIM_SECRET,
                "SIM_LOAD_SYMBOLS": str(p.load_symbols),
                "SIM_LOAD_RATE": str(p.load_rate or 1000),
            }
        )
        self.sim = Service("market-sim", [str(BIN / "market-sim")], env, self.root / "sim.log")
        self.sim.spawn()
        deadline = time.monotonic() + 30
        while True:
            try:
                await self.admin.acall("GET", "health", timeout=1.0)
                return
            except (OSError, urllib.error.URLError, TimeoutError):
                if not self.sim.alive or time.monotonic() > deadline:
                    raise RuntimeError(f"market-sim did not start: {self.tail('sim')}") from None
                await asyncio.sleep(0.1)

    def tail(self, name: str, lines: int = 30) -> str:
        path = self.root / ("sim.log" if name == "sim" else f"{name}.log")
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    async def stop_service(self, name: str, timeout: float = 15.0) -> int | None:
        """Stop one service for good (SIGTERM; not restarted)."""
        svc = self.services.pop(name)  # first: the supervisor must not restart it
        svc.killed_by_us = True
        self._retired.append(svc)
        return await asyncio.to_thread(svc.terminate, timeout)

    async def close(self) -> None:
        """Stop everything this stack started; remove its directory. Safe to call twice."""
        self._supervising = False
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        procs = [*self.services.values(), *([self.sim] if self.sim else [])]
        await asyncio.gather(
            *(asyncio.to_thread(s.terminate, 15.0) for s in procs), return_exceptions=True
        )
        for proxy in (self.pg_proxy, self.redis_proxy):
            if proxy is not None:
                await asyncio.to_thread(proxy.stop)
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self.redis.stop)
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self.pg.stop, "immediate")
        if self._own_root and not os.environ.get("CHAOS_KEEP"):
            shutil.rmtree(self.root, ignore_errors=True)

    # ------------------------------------------------------------------ background
    async def _supervise(self) -> None:
        while self._supervising:
            for svc in list(self.services.values()):
                if svc.proc is not None and svc.proc.poll() is not None:
                    if not svc.killed_by_us:
                        svc.unexpected_exits.append(svc.proc.returncode)
                        log.warning("%s exited on its own (%s)", svc.name, svc.proc.returncode)
                        await asyncio.sleep(0.5)  # compose's restart delay, roughly
                    if self._supervising and svc.name in self.services:
                        svc.spawn()
            await asyncio.sleep(0.1)

    async def _poll_sent(self) -> None:
        while True:
            await self.sent.poll()
            await asyncio.sleep(2.0)

    # ------------------------------------------------------------------ faults
    def _lock(self, target: str) -> asyncio.Lock:
        return self._locks.setdefault(target, asyncio.Lock())

    @staticmethod
    def target_of(kind: str) -> str:
        family, _, what = kind.partition(":")
        if family in ("kill9", "stop"):
            return "sim" if what == "market-sim" else what
        if family == "proxy":
            return "postgres" if what.startswith("pg") else "redis"
        if family == "redis":
            return "redis"
        if family == "postgres":
            return "postgres"
        return "sim"

    def plan(self) -> list[tuple[float, str]]:
        """The seeded schedule: (offset in the chaos window, kind)."""
        p = self.profile
        kinds = [k for k in FAULT_KINDS if self._applicable(k)]
        todo = kinds * p.faults_per_kind + [self.rng.choice(kinds) for _ in range(p.extra_faults)]
        self.rng.shuffle(todo)
        n = len(todo)
        span = p.chaos_seconds - 3.0
        return [(span * (i + self.rng.uniform(0.1, 0.9)) / n, k) for i, k in enumerate(todo)]

    def _applicable(self, kind: str) -> bool:
        family, _, what = kind.partition(":")
        if family in ("kill9", "stop") and what != "market-sim":
            return what in self.wanted
        if kind == "sim:order_fault":
            return "trade-executor" in self.wanted
        return True

    async def run_chaos(self, on_fault: Callable[[Fault], None] | None = None) -> None:
        """Inject the planned faults over the chaos window (overlapping on distinct targets)."""
        started = time.monotonic()
        running: list[asyncio.Task[None]] = []
        for offset, kind in self.plan():
            delay = started + offset - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            running.append(asyncio.create_task(self._inject(kind, on_fault), name=kind))
        results = await asyncio.wait_for(asyncio.gather(*running, return_exceptions=True), 120)
        for kind, res in zip([t.get_name() for t in running], results, strict=True):
            if isinstance(res, BaseException):
                self.fault_errors.append(f"{kind}: {type(res).__name__}: {res}")

    async def _inject(self, kind: str, on_fault: Callable[[Fault], None] | None) -> None:
        lock = self._lock(self.target_of(kind))
        async with asyncio.timeout(90):
            async with lock:
                fault = Fault(kind, time.time())
                self.faults.append(fault)
                try:
                    await self._do(kind, fault)
                finally:
                    fault.end = time.time()
                    if on_fault is not None:
                        on_fault(fault)

    async def _do(self, kind: str, fault: Fault) -> None:
        rng = self.rng
        family, _, what = kind.partition(":")
        if family == "kill9":
            svc = self.services[what]
            svc.killed_by_us = True
            if svc.stopped:
                svc.signal(signal.SIGCONT)
            svc.signal(signal.SIGKILL)
            starts = svc.starts
            deadline = time.monotonic() + 20
            while svc.starts == starts and time.monotonic() < deadline:  # supervisor restarts
                await asyncio.sleep(0.05)
            fault.detail = f"restart #{svc.starts}"
            await asyncio.sleep(1.0)
        elif family == "stop":
            svc = self.sim if what == "market-sim" else self.services[what]
            assert svc is not None
            secs = rng.uniform(0.5, 3.0)
            svc.stopped = svc.signal(signal.SIGSTOP)
            try:
                await asyncio.sleep(secs)
            finally:
                svc.signal(signal.SIGCONT)
                svc.stopped = False
            fault.detail = f"{secs:.1f}s"
        elif kind == "redis:kill":
            secs = rng.uniform(0.5, 3.0)
            assert self.redis.proc is not None
            self.redis.proc.kill()
            await asyncio.to_thread(self.redis.proc.wait, 10)
            await asyncio.sleep(secs)
            await asyncio.to_thread(self.redis.start, 30.0)
            fault.detail = f"down {secs:.1f}s"
        elif kind == "postgres:stop":
            secs = rng.uniform(0.5, 3.0)
            await asyncio.to_thread(self.pg.stop, "immediate")
            await asyncio.sleep(secs)
            await asyncio.to_thread(self.pg.start, 60.0)
            fault.detail = f"down {secs:.1f}s"
        elif kind == "sim:ws_drop":
            res = await self.admin.acall("POST", "faults/ws/drop", {})
            fault.detail = f"dropped {res['dropped']}"
            await asyncio.sleep(1.0)
        elif kind == "sim:ws_pause":
            secs = rng.uniform(1.0, 5.0)
            await self.admin.acall("POST", "faults/ws/pause", {"seconds": secs})
            await asyncio.sleep(secs + 0.5)
            fault.detail = f"{secs:.1f}s"
        elif kind == "sim:http_delay":
            secs, delay = rng.uniform(2.0, 6.0), rng.uniform(0.3, 2.5)
            await self.admin.acall(
                "POST", "faults/http", {"delay": delay, "path_prefix": "/", "count": None}
            )
            try:
                await asyncio.sleep(secs)
            finally:
                await self.admin.acall("POST", "faults/http", {"delay": 0})
            fault.detail = f"delay {delay:.1f}s for {secs:.1f}s"
        elif kind == "sim:order_fault":
            mode = rng.choice(
                ["500_after_accept", "no_location", "drop_after_accept", "hang_after_accept"]
            )
            await self.admin.acall("POST", "faults/orders", {"mode": mode, "count": 1})
            deadline = time.monotonic() + 10
            consumed = False
            while time.monotonic() < deadline:
                state = await self.admin.acall("GET", "state")
                if state["faults"]["order_fault"] is None:
                    consumed = True
                    break
                await asyncio.sleep(0.1)
            if mode == "hang_after_accept":
                await asyncio.sleep(2.5)  # past the executor's broker timeout
            await self.admin.acall("POST", "faults/clear", {})
            fault.detail = f"{mode} {'consumed' if consumed else 'not consumed'}"
        elif family == "proxy":
            proxy = self.pg_proxy if what.startswith("pg") else self.redis_proxy
            assert proxy is not None
            if what.endswith("latency"):
                secs, lat = rng.uniform(1.0, 5.0), rng.uniform(0.02, 0.3)
                proxy.set_latency(lat)
                try:
                    await asyncio.sleep(secs)
                finally:
                    proxy.set_latency(0.0)
                fault.detail = f"+{lat * 1000:.0f}ms for {secs:.1f}s"
            else:
                n = await asyncio.to_thread(proxy.cut)
                fault.detail = f"cut {n} connections"
                await asyncio.sleep(0.5)
        else:
            raise ValueError(f"unknown fault kind {kind}")

    # ------------------------------------------------------------------ workload
    async def trade_workload(self, stop: asyncio.Event) -> None:
        """Submit trades until ``stop``: through the gateway (validated), and as plain rows
        (as any client may), some of them meant to be rejected by the risk checks."""
        rng = random.Random(self.profile.seed + 1)
        gw = "gateway" in self.wanted
        conn: asyncpg.Connection | None = None
        r = aioredis.Redis.from_url(self.redis_url, socket_timeout=2)
        try:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        stop.wait(), rng.expovariate(1 / self.profile.trade_interval)
                    )
                if stop.is_set():
                    return
                self.trade_attempts += 1
                sym = rng.choice(self.profile.tickers)
                qty = rng.randint(1, 3)
                roll = rng.random()
                try:
                    if gw and roll < 0.6:
                        await self._submit_gateway(r, sym, qty, rng)
                    else:
                        if conn is None or conn.is_closed():
                            conn = await asyncpg.connect(self.dsn, timeout=3)
                        bad = roll > 0.85
                        tid = await conn.fetchval(
                            "INSERT INTO trades (symbol, asset_type, instruction, quantity, "
                            "order_type) VALUES ($1, 'EQUITY', 'BUY', $2, 'MARKET') RETURNING id",
                            sym,
                            5000 if bad else qty,  # above RISK_MAX_QUANTITY_EQUITY: rejected
                            timeout=3,
                        )
                        self.trades_acked.append(int(tid))
                except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
                    self.trade_failures += 1
                    if conn is not None:
                        conn.terminate()
                        conn = None
                except (urllib.error.URLError, aioredis.RedisError, ValueError):
                    self.trade_failures += 1
        finally:
            if conn is not None:
                conn.terminate()
            await r.aclose()

    async def _submit_gateway(
        self, r: aioredis.Redis, sym: str, qty: int, rng: random.Random
    ) -> None:
        quote_ = await r.hgetall(constants.last_quote_key(sym))
        body: dict[str, Any] = {
            "symbol": sym,
            "asset_type": "EQUITY",
            "instruction": "BUY",
            "quantity": qty,
            "order_type": "MARKET",
        }
        ask = quote_.get(b"ask")
        if ask and rng.random() < 0.5:
            price = (Decimal(ask.decode()) * Decimal("1.01")).quantize(
                Decimal("0.01"), rounding=ROUND_UP
            )
            body.update(order_type="LIMIT", limit_price=str(price))
        url = f"http://127.0.0.1:{self.ports['gateway']}/api/trades"

        def post() -> tuple[int, Any]:
            req = urllib.request.Request(
                url,
                data=json.dumps(body).encode(),
                method="POST",
                headers={
                    "Content-Type": "application/json",
                    "Authorization": f"Bearer {GATEWAY_TOKEN}",
                },
            )
            try:
                with urllib.request.urlopen(req, timeout=3) as resp:
                    return resp.status, json.loads(resp.read())
            except urllib.error.HTTPError as exc:
                return exc.code, None

        status, payload = await asyncio.to_thread(post)
        if status == 201:
            self.trades_acked.append(int(payload["id"]))
        else:
            self.trade_failures += 1

    # ------------------------------------------------------------------ settle
    async def wait_streaming(self, timeout: float) -> None:
        """Until the streamer reports ``streaming``."""
        r = aioredis.Redis.from_url(self.redis_url, socket_timeout=2)
        deadline = time.monotonic() + timeout
        try:
            while True:
                with contextlib.suppress(aioredis.RedisError, OSError):
                    raw = await r.get(constants.STREAMER_STATE_KEY)
                    if raw and json.loads(raw)["state"] == "streaming":
                        return
                if time.monotonic() > deadline:
                    raise AssertionError(f"streamer not streaming: {self.tail('streamer')}")
                await asyncio.sleep(0.2)
        finally:
            await r.aclose()

    async def final_stop_stream(self) -> None:
        """End of input: the simulator stops sending, the streamer drains and stops (SIGTERM),
        the sent log is copied one last time. Recorded as the fault ``final:stop`` because
        the streamer records the stop as a gap."""
        fault = Fault("final:stop", time.time())
        self.faults.append(fault)
        await self.admin.acall("POST", "faults/ws/pause", {"seconds": None})
        await asyncio.sleep(1.0)
        if "streamer" in self.services:
            rc = await self.stop_service("streamer")
            fault.detail = f"streamer exit {rc}"
        for _ in range(5):
            if await self.sent.poll():
                break
            await asyncio.sleep(1.0)
        else:
            raise AssertionError("could not read the simulator's sent log")
        fault.end = time.time()

    async def wait_drained(self, timeout: float) -> None:
        """Until every tick stream is delivered to the indicators group and acknowledged."""
        r = aioredis.Redis.from_url(self.redis_url, socket_timeout=2)
        deadline = time.monotonic() + timeout
        try:
            while True:
                ok = True
                for stream in constants.tick_streams(2):
                    try:
                        groups = await r.xinfo_groups(stream) if await r.exists(stream) else []
                    except aioredis.RedisError:
                        ok = False
                        break
                    g = next(
                        (g for g in groups if g["name"] == constants.INDICATORS_GROUP.encode()),
                        None,
                    )
                    if await r.exists(stream) and (g is None or g["pending"] != 0 or g["lag"] != 0):
                        ok = False
                if ok:
                    return
                if time.monotonic() > deadline:
                    raise AssertionError(f"streams not drained: {self.tail('indicators')}")
                await asyncio.sleep(0.2)
        finally:
            await r.aclose()

    async def wait_trades_settled(self, timeout: float) -> int:
        """Until no trade is pending, submitting, unknown or cancel_requested; rows left."""
        if "trade-executor" not in self.wanted:
            return 0
        deadline = time.monotonic() + timeout
        conn = await asyncpg.connect(self.dsn)
        try:
            while True:
                n = await conn.fetchval(
                    "SELECT count(*) FROM trades WHERE status IN "
                    "('pending', 'submitting', 'unknown', 'cancel_requested')"
                )
                if n == 0 or time.monotonic() > deadline:
                    return int(n)
                await asyncio.sleep(0.3)
        finally:
            await conn.close()

    async def read_health(self) -> dict[str, Any] | None:
        if "health" not in self.wanted:
            return None
        url = f"http://127.0.0.1:{self.ports['health']}/health"

        def get() -> dict[str, Any]:
            try:
                with urllib.request.urlopen(url, timeout=5) as resp:
                    return dict(json.loads(resp.read()))
            except urllib.error.HTTPError as exc:
                return dict(json.loads(exc.read()))

        for _ in range(10):
            try:
                return await asyncio.to_thread(get)
            except (OSError, urllib.error.URLError, json.JSONDecodeError):
                await asyncio.sleep(1.0)
        return None

    async def wait_health_ok(self, timeout: float) -> dict[str, Any] | None:
        """``/health`` once it says ``ok`` (the stack recovered), or the last answer."""
        deadline = time.monotonic() + timeout
        while True:
            health = await self.read_health()
            if health is None or health.get("status") == "ok" or time.monotonic() > deadline:
                return health
            await asyncio.sleep(1.0)

    def counts(self) -> dict[str, Any]:
        """Per-service starts and unexpected exits, for the report."""
        out: dict[str, Any] = {}
        for svc in [*self.services.values(), *self._retired]:
            out[svc.name] = {"starts": svc.starts, "unexpected_exits": svc.unexpected_exits}
        return out
