"""The pipeline as the local stack runs it, started piece by piece so phases can change it.

PostgreSQL (durable: fsync on, as in production) and Redis come from local binaries
(``streamdesk_dev.localservers``); the services are the programs of the stack runner
(``streamdesk_dev.stack._programs``: the same argv, ``STACK_SERVICES`` and whatever layout the
runner has), each launched directly (no supervisord, so the benchmark can stop, kill and add
single processes) with one environment, logs in ``<root>/logs``.

The commit log: a deferred constraint trigger on ``indicator_offsets`` records, at each
COMMIT of the writer's transaction (deferred triggers run as the transaction commits, just
before its WAL record is flushed), the stream, the new ``last_id`` and the database's
``clock_timestamp()``. A flush that is fenced (rolled back) leaves no row. It is installed in
the benchmark's own database only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import asyncpg
from streamdesk_dev import stack as dev_stack
from streamdesk_dev.localservers import PostgresServer, RedisServer, free_port

from streamdesk.migrate import find_migrations_dir, migrate
from streamdesk.partitions import ensure_partitions

from .procs import ProcSet

COMMIT_LOG_SQL = """
CREATE TABLE IF NOT EXISTS bench_commit_log (
    stream text NOT NULL, last_id text NOT NULL, at timestamptz NOT NULL, backend int NOT NULL);
CREATE OR REPLACE FUNCTION bench_log_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.last_id IS DISTINCT FROM OLD.last_id THEN
        INSERT INTO bench_commit_log VALUES
            (NEW.stream, NEW.last_id, clock_timestamp(), pg_backend_pid());
    END IF;
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS bench_commit_log ON indicator_offsets;
CREATE CONSTRAINT TRIGGER bench_commit_log AFTER UPDATE ON indicator_offsets
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bench_log_commit();
"""

#: The one-INSERT-per-tick baseline's table: what a user's handler would write.
BASELINE_SQL = """
CREATE TABLE IF NOT EXISTS baseline_ticks (
    ticker text NOT NULL, ts timestamptz NOT NULL, price double precision,
    bid double precision, ask double precision, volume bigint,
    inserted_at timestamptz NOT NULL DEFAULT clock_timestamp());
"""

#: Environment names the benchmark sets itself (an outer value must not leak in).
_OWN = (
    "DATABASE_URL",
    "REDIS_URL",
    "SCHWAB_BASE_URL",
    "TRADING_MODE",
    "TICKERS",
    "OPTION_UNDERLYINGS",
    "INSTANCE_ID",
)


async def set_universe(
    conn: asyncpg.Connection, equities: list[str], underlyings: list[str]
) -> None:
    """Replace the streamed universe (the ``universe`` table the streamer reads at start).

    Written directly, not through ``streamdesk.control``: load mode needs thousands of symbols
    (market-sim updates a symbol at most 50 times a second), beyond the control plane's
    ``MAX_EQUITIES`` (300, what one Schwab connection is given). Marked as seeded, so no
    service re-seeds it from ``TICKERS``."""
    async with conn.transaction():
        await conn.execute("DELETE FROM universe")
        await conn.executemany(
            "INSERT INTO universe (kind, symbol) VALUES ($1, $2)",
            [("equity", s) for s in equities] + [("option", s) for s in underlyings],
        )
        await conn.execute(
            "UPDATE control_state SET universe_seeded_at = now(), version = version + 1"
        )


def _port_open(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:``port``."""
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def post(base: str, path: str, body: dict[str, Any]) -> Any:
    """POST JSON to market-sim's admin API."""
    req = urllib.request.Request(
        base + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def get(base: str, path: str) -> Any:
    with urllib.request.urlopen(base + path, timeout=30) as resp:
        return json.loads(resp.read())


class Pipeline:
    """PostgreSQL, Redis and the stack's programs under ``root``; measured by ``procs``."""

    def __init__(self, root: Path, base_env: dict[str, str]) -> None:
        self.root = root
        (root / "logs").mkdir(parents=True, exist_ok=True)
        self.pg = PostgresServer(root / "pg", durable=True)
        self.redis = RedisServer(root / "redis")
        self.ports = {k: free_port() for k in ("sim", "gateway", "health")}
        self.sim_url = f"http://127.0.0.1:{self.ports['sim']}"
        self.procs = ProcSet()
        self.running: dict[str, subprocess.Popen[bytes]] = {}
        self.token = "bench-" + os.urandom(12).hex()
        keep = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SIM_", "RISK_", "EXECUTOR_", "GATEWAY_")) and k not in _OWN
        }
        self.env = keep | base_env

    # ------------------------------------------------------------------ servers

    async def start_servers(self) -> None:
        self.pg.start()
        self.redis.start()
        assert self.redis.proc is not None
        self.procs.set("redis", self.redis.proc.pid)
        pidfile = self.pg.datadir / "postmaster.pid"
        self.procs.set("postgres", int(pidfile.read_text().split()[0]))
        admin = await asyncpg.connect(self.pg.url)
        if os.environ.get("BENCH_PG_LOG_MS"):  # diagnosis: slow statements, checkpoints
            for k, v in (
                ("log_min_duration_statement", os.environ["BENCH_PG_LOG_MS"]),
                ("log_checkpoints", "on"),
                ("log_autovacuum_min_duration", "0"),
                ("log_lock_waits", "on"),
            ):
                await admin.execute(f"ALTER SYSTEM SET {k} = '{v}'")
            await admin.execute("SELECT pg_reload_conf()")
        await admin.execute("CREATE DATABASE streamdesk")
        await admin.close()
        self.dsn = self.pg.dsn("streamdesk")
        conn = await asyncpg.connect(self.dsn)
        try:
            await migrate(conn, find_migrations_dir(None))
            await ensure_partitions(conn, days_ahead=2)
            await conn.execute(COMMIT_LOG_SQL)
            await conn.execute(BASELINE_SQL)
        finally:
            await conn.close()
        self.procs.start()

    def stop_servers(self, pg_mode: str = "fast") -> None:
        self.procs.stop()
        self.redis.stop()
        with contextlib.suppress(Exception):
            self.pg.stop(pg_mode)

    # ------------------------------------------------------------------ services

    def service_env(self, **extra: str) -> dict[str, str]:
        env = dict(self.env)
        env.update(
            {
                "DATABASE_URL": self.dsn,
                "REDIS_URL": self.redis.url,
                "SCHWAB_BASE_URL": self.sim_url,
                "SCHWAB_TOKEN_PATH": str(self.root / "schwab-token.json"),
                "TRADING_MODE": "paper",
                "SIM_PORT": str(self.ports["sim"]),
                "GATEWAY_PORT": str(self.ports["gateway"]),
                "HEALTH_PORT": str(self.ports["health"]),
                "GATEWAY_TOKEN": self.token,
                "GATEWAY_TOKEN_PATH": str(self.root / "gateway-token"),
            }
        )
        env.update(extra)
        return env

    def programs(self, env: dict[str, str]) -> dict[str, list[str]]:
        """The stack runner's programs (name -> argv) for ``env`` (its STACK_SERVICES)."""
        progs = dev_stack._programs(env, True, self.ports["sim"])
        return {p.name: list(p.argv) for p in progs}

    def launch(
        self, name: str, argv: list[str], env: dict[str, str], faketime: str | None = None
    ) -> subprocess.Popen[bytes]:
        if faketime is not None:
            argv = ["faketime", "-f", faketime, *argv]
        log = open(self.root / "logs" / f"{name}.log", "ab")  # noqa: SIM115 - the child keeps it
        proc = subprocess.Popen(
            argv,
            env=env,
            cwd=self.root,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.running[name] = proc
        # faketime execs the program: same pid, so the measured root is the service itself.
        self.procs.set(name, proc.pid)
        return proc

    def start_all(self, env: dict[str, str], faketime: str | None = None) -> list[str]:
        """Start market-sim first, then every other program of the layout."""
        progs = self.programs(env)
        if "market-sim" in progs:
            # the previous simulator's port must be closed first, or its last answers would
            # pass for the new one's health check
            self.wait(lambda: not _port_open(self.ports["sim"]), 30, "the old market-sim")
            self.launch("market-sim", progs.pop("market-sim"), env, faketime)
            self.wait(lambda: _http_ok(self.sim_url + "/admin/health"), 60, "market-sim")
        for name, argv in progs.items():
            self.launch(name, argv, env, faketime)
        return ["market-sim", *progs]

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
        proc = self.running.pop(name, None)
        self.procs.drop(name)
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)

    def kill(self, name: str) -> None:
        """SIGKILL ``name`` (a crash: no drain, no lease release) and forget it."""
        proc = self.running.pop(name)
        self.procs.drop(name)
        proc.kill()
        proc.wait(10)

    def stop_all(self, keep: tuple[str, ...] = (), timeout: float = 20) -> None:
        """SIGTERM every program (but ``keep``) at once, then wait for each (SIGKILL after
        ``timeout`` s); the simulator last."""
        names = [n for n in self.running if n not in keep]
        # services first, the simulator last (its clients reconnect otherwise)
        names.sort(key=lambda n: n == "market-sim")
        others = [n for n in names if n != "market-sim"]
        for n in others:
            proc = self.running.get(n)
            if proc is not None and proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        t0 = time.monotonic()
        for n in others:
            self.stop(n, timeout=max(0.1, t0 + timeout - time.monotonic()))
        if "market-sim" in names:
            self.stop("market-sim", timeout=timeout)

    def dead(self) -> list[str]:
        return [n for n, p in self.running.items() if p.poll() is not None]

    def log_tail(self, name: str, n: int = 3000) -> str:
        path = self.root / "logs" / f"{name}.log"
        return path.read_text(errors="replace")[-n:] if path.exists() else ""

    def wait(self, check: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if dead := self.dead():
                raise RuntimeError(
                    f"{dead} exited while waiting for {what}:\n"
                    + "\n".join(self.log_tail(d) for d in dead)
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what}")
            time.sleep(0.2)

    async def await_until(self, check: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not await check():
            if dead := self.dead():
                raise RuntimeError(
                    f"{dead} exited while waiting for {what}:\n"
                    + "\n".join(self.log_tail(d) for d in dead)
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what}")
            await asyncio.sleep(0.2)

    def gateway_up(self) -> bool:
        return _http_ok(f"http://127.0.0.1:{self.ports['gateway']}/api/health") or _http_ok(
            f"http://127.0.0.1:{self.ports['gateway']}/"
        )


def python_argv(module: str) -> list[str]:
    return [sys.executable, "-m", module]
