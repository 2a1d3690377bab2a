"""Start real PostgreSQL and Redis servers from local binaries (tests, ``make run``, bench).

Used when no Docker engine is reachable (otherwise tests may use testcontainers). Servers run
on loopback, on a given or free port, with their data in a directory of the caller's choice.
PostgreSQL refuses to run as root, so when uid is 0 it runs as the ``postgres`` user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any


class PrerequisiteError(RuntimeError):
    """A required server binary is missing; the message says how to install it."""


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def terminate(proc: subprocess.Popen[Any], timeout: float = 10.0) -> None:
    """Stop a child process: SIGTERM, then SIGKILL after ``timeout`` seconds; always reaped."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def find_pg_bin() -> Path:
    """Directory holding ``initdb``/``pg_ctl``/``postgres`` (PATH or /usr/lib/postgresql/*/bin)."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for directory in candidates:
        if Path(directory, "initdb").exists() and Path(directory, "postgres").exists():
            return Path(directory)
    initdb = shutil.which("initdb")
    if initdb and Path(initdb).with_name("postgres").exists():
        return Path(initdb).parent
    raise PrerequisiteError(
        "PostgreSQL server binaries not found (initdb, postgres). Install them with: "
        "sudo apt-get install -y postgresql   (or set DATABASE_URL to an existing database)"
    )


def find_redis_server() -> str:
    """Path of ``redis-server``."""
    path = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )
    if not path:
        raise PrerequisiteError(
            "redis-server not found. Install it with: sudo apt-get install -y redis-server   "
            "(or set REDIS_URL to an existing Redis)"
        )
    return path


def _as_pg_user() -> list[str]:
    if os.geteuid() != 0:
        return []
    return ["runuser", "-u", "postgres", "--"]


def _chown_pg(path: Path) -> None:
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(path, pw.pw_uid, pw.pw_gid)


def _wait_port(port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


class PostgresServer:
    """A PostgreSQL cluster in ``datadir`` listening on 127.0.0.1:``port``.

    ``durable=False`` (tests) turns off fsync for speed. ``start()`` initializes the cluster
    if needed; ``stop(mode)`` uses ``pg_ctl stop -m mode``.
    """

    def __init__(self, datadir: Path, port: int | None = None, *, durable: bool = True) -> None:
        self.datadir = Path(datadir).resolve()
        self.port = port or free_port()
        self.durable = durable
        self.bin = find_pg_bin()
        self.logfile = self.datadir.parent / f"{self.datadir.name}.log"

    @property
    def url(self) -> str:
        """DSN of the ``postgres`` database as the ``postgres`` superuser."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def dsn(self, database: str) -> str:
        """DSN of ``database`` on this server."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        res = subprocess.run([*_as_pg_user(), *args], capture_output=True, timeout=120)
        if check and res.returncode != 0:
            tail = ""
            if self.logfile.exists():
                tail = "\n".join(self.logfile.read_text(errors="replace").splitlines()[-5:])
            raise RuntimeError(
                f"{Path(args[0]).name} failed ({res.returncode}): "
                f"{res.stderr.decode(errors='replace').strip()}\n{tail}"
            )
        return res

    def initdb(self) -> None:
        """Initialize the cluster if ``datadir`` has none."""
        if (self.datadir / "PG_VERSION").exists():
            return
        self.datadir.mkdir(parents=True, exist_ok=True)
        _chown_pg(self.datadir)
        self.datadir.chmod(0o700)
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.datadir),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",
        )

    def start(self, timeout: float = 30.0) -> None:
        """Initialize if needed and start; return when it accepts connections."""
        self.initdb()
        self.logfile.touch()
        _chown_pg(self.logfile)
        opts = [
            f"-p {self.port}",
            "-c listen_addresses=127.0.0.1",
            f"-k {self.datadir}",
            "-c max_connections=200",
            "-c shared_buffers=64MB",
        ]
        if not self.durable:
            opts += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.datadir),
            "-l",
            str(self.logfile),
            "-o",
            " ".join(opts),
            "-w",
            "-t",
            str(int(timeout)),
            "start",
        )
        _wait_port(self.port, timeout)

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``, ``smart`` or ``immediate``)."""
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.datadir),
            "-m",
            mode,
            "-w",
            "stop",
            check=False,
        )

    def is_running(self) -> bool:
        """Whether the cluster's postmaster is running."""
        res = self._run(str(self.bin / "pg_ctl"), "-D", str(self.datadir), "status", check=False)
        return res.returncode == 0


class RedisServer:
    """A ``redis-server`` on 127.0.0.1:``port`` with its files in ``datadir``."""

    def __init__(self, datadir: Path, port: int | None = None, *, persist: bool = False) -> None:
        self.datadir = Path(datadir).resolve()
        self.port = port or free_port()
        self.persist = persist
        self.binary = find_redis_server()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """URL of database 0."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 15.0) -> None:
        """Start the server and wait until it listens."""
        self.datadir.mkdir(parents=True, exist_ok=True)
        args = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.datadir),
            "--daemonize",
            "no",
            "--protected-mode",
            "yes",
            "--maxmemory-policy",
            "noeviction",
        ]
        if self.persist:
            args += ["--appendonly", "yes", "--appendfsync", "everysec", "--save", "300 1"]
        else:
            args += ["--save", "", "--appendonly", "no"]
        log = open(self.datadir / "redis.log", "ab")  # noqa: SIM115 - owned by the process
        # Own session: a terminal Ctrl-C reaches the runner, which stops Redis in order.
        # Redis keeps the real clock: its jemalloc start-up deadlocks under libfaketime
        # (`make test-clock` preloads it into every process), and Redis's own time only
        # shows in TTLs and stream ids, which are relative to itself.
        env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "FAKETIME")}
        self.proc = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env
        )
        log.close()
        _wait_port(self.port, timeout, self.proc)

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate the server (SIGTERM, then SIGKILL after ``timeout``)."""
        if self.proc is None:
            return
        terminate(self.proc, timeout)
        self.proc = None
