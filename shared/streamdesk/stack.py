"""The local stack runner behind ``make run``.

Starts a local PostgreSQL (``.data/pg``) and ``redis-server`` (``.data/redis``) unless
``DATABASE_URL`` / ``REDIS_URL`` are set, applies migrations, then runs every service that is
installed under honcho with per-service prefixed logs. Ctrl-C stops the services, then the
servers; the data stays in ``.data/`` for the next run.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from .localservers import PostgresServer, PrerequisiteError, RedisServer

DATA = Path(".data")
PG_PORT = 54329
REDIS_PORT = 63799
#: STACK_SERVICES: "all" (default), "none", or a comma list of Procfile names below.
#: STACK_PG_PORT / STACK_REDIS_PORT override the local servers' ports.
DB_NAME = "streamdesk"

#: (Procfile name, python package, console script, waits for market-sim)
SERVICES = [
    ("market-sim", "streamdesk_sim", "market-sim", False),
    ("streamer", "streamdesk_streamer", "streamer", True),
    ("indicators", "streamdesk_indicators", "indicators", False),
    ("executor", "streamdesk_executor", "trade-executor", True),
    ("health", "streamdesk_health", "health", False),
    ("gateway", "streamdesk_gateway", "gateway", False),
]


def _read_dotenv(path: Path = Path(".env")) -> dict[str, str]:
    out: dict[str, str] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                key, _, value = line.partition("=")
                out[key.strip()] = value.strip().strip('"').strip("'")
    return out


def _installed(pkg: str) -> bool:
    try:
        return importlib.util.find_spec(f"{pkg}.__main__") is not None
    except ModuleNotFoundError:
        return False


async def _ensure_database(admin_dsn: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_dsn, timeout=10)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


_STOP = {"requested": False}


def _terminate(signum: int, frame: object) -> None:
    # SIGTERM (systemd, `timeout`, a supervisor) stops the stack like Ctrl-C does.
    if not _STOP["requested"]:
        _STOP["requested"] = True
        raise KeyboardInterrupt


def main() -> int:
    """Run the stack in the foreground until Ctrl-C or SIGTERM."""
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    env = {**_read_dotenv(), **os.environ}
    DATA.mkdir(exist_ok=True)
    if os.geteuid() == 0:
        DATA.chmod(0o755)
    pg: PostgresServer | None = None
    redis: RedisServer | None = None
    try:
        if not env.get("DATABASE_URL"):
            pg = PostgresServer(DATA / "pg", int(env.get("STACK_PG_PORT", PG_PORT)))
            print(f"stack: starting PostgreSQL on 127.0.0.1:{pg.port} (data in {pg.datadir})")
            pg.start()
            asyncio.run(_ensure_database(pg.url, DB_NAME))
            env["DATABASE_URL"] = pg.dsn(DB_NAME)
        if not env.get("REDIS_URL"):
            redis = RedisServer(
                DATA / "redis", int(env.get("STACK_REDIS_PORT", REDIS_PORT)), persist=True
            )
            print(f"stack: starting Redis on 127.0.0.1:{redis.port}")
            redis.start()
            env["REDIS_URL"] = redis.url
        env.setdefault("SCHWAB_TOKEN_PATH", str((DATA / "schwab-token.json").resolve()))
        print("stack: applying migrations")
        subprocess.run([sys.executable, "-m", "streamdesk.cli", "migrate"], env=env, check=True)

        use_sim = env.get("TRADING_MODE", "paper") == "paper" and not env.get("SCHWAB_BASE_URL")
        wanted = env.get("STACK_SERVICES", "all").strip().lower()
        chosen = {n.strip() for n in wanted.split(",")} if wanted not in ("all", "") else None
        lines = []
        for name, pkg, script, waits in SERVICES:
            if not _installed(pkg) or (name == "market-sim" and not use_sim):
                continue
            if chosen is not None and name not in chosen:
                continue
            # Absolute path: the venv's bin directory need not be on PATH.
            exe = Path(sys.executable).parent / script
            cmd = str(exe) if exe.exists() else script
            if waits and use_sim:
                cmd = f"{sys.executable} -m streamdesk.waitfor 127.0.0.1:8090 -- {cmd}"
            lines.append(f"{name}: {cmd}")
        if not lines:
            print(
                "stack: no services to run; Postgres and Redis are up. Ctrl-C to stop.", flush=True
            )
            signal.sigwait({signal.SIGINT, signal.SIGTERM})
            return 0
        procfile = DATA / "Procfile"
        procfile.write_text("\n".join(lines) + "\n")
        honcho = shutil.which("honcho") or str(Path(sys.executable).with_name("honcho"))
        print("stack: services:", ", ".join(line.split(":")[0] for line in lines))
        print("stack: dashboard on http://127.0.0.1:8080   health on http://127.0.0.1:8081/health")
        proc = subprocess.Popen([honcho, "-f", str(procfile), "-d", ".", "start"], env=env)
        try:
            rc = proc.wait()
            # honcho may see the same signal first and exit before our handler runs.
            return 0 if _STOP["requested"] else rc
        except KeyboardInterrupt:
            # A terminal Ctrl-C reached honcho too (same process group); a SIGTERM sent to
            # this process alone did not, so pass it on. honcho then stops every service.
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
            return 0  # a requested stop is a clean exit
    except PrerequisiteError as exc:
        print(f"stack: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        # A second Ctrl-C must not abort the clean stop of the servers.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if redis is not None:
            print("stack: stopping Redis")
            redis.stop()
        if pg is not None:
            print("stack: stopping PostgreSQL (data kept in .data/pg)")
            pg.stop("fast")


if __name__ == "__main__":
    sys.exit(main())
