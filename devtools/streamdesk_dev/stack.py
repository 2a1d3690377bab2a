"""The local stack runner behind ``make run``.

Starts a local PostgreSQL (``.data/pg``) and ``redis-server`` (``.data/redis``) unless
``DATABASE_URL`` / ``REDIS_URL`` are set, applies migrations, then runs every installed service
under supervisord (config generated in ``.data/supervisord.conf``). A service that dies is
restarted, like compose's ``restart: unless-stopped``; one that keeps dying within
``STACK_START_SECS`` of its start is retried with a growing delay and given up after
``STACK_START_RETRIES`` retries, while the others keep running. Each service's output reaches
the terminal prefixed with its name (and ``.data/logs/<name>.log``). Ctrl-C or SIGTERM stops
the services, then Redis, then PostgreSQL; the data stays in ``.data/`` for the next run.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamdesk_dev.localservers import PostgresServer, PrerequisiteError, RedisServer

DATA = Path(".data")
PG_PORT = 54329
REDIS_PORT = 63799
#: STACK_SERVICES: "all" (default), "none", or a comma list of the program names below.
#: STACK_COMBINE: a comma list of them run as one program, ``stack`` (one interpreter:
#: ``streamdesk.multiservice``; docs/deploy.md, "Memory budget"); the executor never is.
#: STACK_PG_PORT / STACK_REDIS_PORT override the local servers' ports.
DB_NAME = "streamdesk"
#: Supervision defaults (STACK_START_SECS, STACK_START_RETRIES): a service must stay up this
#: long to count as started (compose likewise resets its back-off after 10 s of running);
#: a start that fails sooner is retried after 1, 2, 3... s, at most this many times.
START_SECS = 10
START_RETRIES = 5
LISTENER = "stack-log"

#: (program name, python package, console script, waits for market-sim, priority)
#: Lower priority starts first and stops last: the simulator outlives its clients, and the
#: gateway and health stop first so nothing new comes in while the others drain.
SERVICES = [
    ("market-sim", "streamdesk_sim", "market-sim", False, 100),
    ("streamer", "streamdesk_streamer", "streamer", True, 200),
    ("indicators", "streamdesk_indicators", "indicators", False, 200),
    ("executor", "streamdesk_executor", "trade-executor", True, 200),
    ("strategy", "streamdesk_strategy", "strategy", True, 250),
    ("health", "streamdesk_health", "health", False, 300),
    ("gateway", "streamdesk_gateway", "gateway", False, 300),
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


# --------------------------------------------------------------------------- supervisord


@dataclass(frozen=True)
class Program:
    """One supervised service: its program name, argv and start priority."""

    name: str
    argv: list[str]
    priority: int


@dataclass(frozen=True)
class Policy:
    """Restart policy of every program (see :data:`START_SECS`, :data:`START_RETRIES`)."""

    start_secs: int = START_SECS
    start_retries: int = START_RETRIES
    stop_wait_secs: int = 15


def _positive_int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise PrerequisiteError(f"{name} must be a whole number >= 0, got {raw!r}")
    return value


def policy_from_env(env: dict[str, str]) -> Policy:
    """The restart policy from ``STACK_START_SECS``, ``STACK_START_RETRIES`` and the services'
    ``SHUTDOWN_TIMEOUT`` (their drain bound; supervisord waits 5 s more before SIGKILL)."""
    try:
        drain = float(env.get("SHUTDOWN_TIMEOUT") or 10)
    except ValueError:
        drain = 10.0
    return Policy(
        start_secs=_positive_int(env, "STACK_START_SECS", START_SECS),
        start_retries=_positive_int(env, "STACK_START_RETRIES", START_RETRIES),
        stop_wait_secs=max(1, int(drain) + 5),
    )


def _socket_path(data: Path) -> Path:
    # AF_UNIX paths are limited to 107 bytes; a deep checkout falls back to the temp dir.
    path = data / "supervisor.sock"
    if len(str(path)) < 100:
        return path
    import tempfile  # imported where needed: keeps the log listener small

    digest = zlib.crc32(str(data).encode())
    return Path(tempfile.gettempdir()) / f"streamdesk-{os.getuid()}-{digest:08x}.sock"


def _q(argv: list[str]) -> str:
    # supervisord expands %(...)s in values, so a literal % is doubled.
    return shlex.join(argv).replace("%", "%%")


def supervisord_config(
    programs: list[Program], data: Path, policy: Policy, password: str | None = None
) -> str:
    """The supervisord.conf text that runs ``programs`` in the foreground, data in ``data``.

    The services' environment is supervisord's own (the runner passes it), so no secret from
    ``.env`` is written to the file. The control socket (0700) takes a per-run ``password``
    (random by default), kept in the 0600 file for ``supervisorctl -c``.
    """
    import secrets

    password = password or secrets.token_urlsafe(18)
    data = data.resolve()
    logs = data / "logs"
    sock = _socket_path(data)
    lines = [
        "; generated by `python -m streamdesk_dev.stack` on every start; edits are overwritten",
        "[supervisord]",
        "nodaemon=true",
        f"logfile={logs / 'supervisord.log'}",
        "logfile_maxbytes=5MB",
        "logfile_backups=2",
        "loglevel=info",
        f"pidfile={data / 'supervisord.pid'}",
        f"childlogdir={logs}",
        *(["user=root"] if os.geteuid() == 0 else []),  # says so instead of warning about it
        "",
        "[unix_http_server]",
        f"file={sock}",
        "chmod=0700",
        "username=stack",
        f"password={password}",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        f"serverurl=unix://{sock}",
        "username=stack",
        f"password={password}",
        "",
        # Prints every service's output with its name in front (see print_log_event).
        f"[eventlistener:{LISTENER}]",
        f"command={_q([sys.executable, '-m', 'streamdesk_dev.stack', '--log-listener'])}",
        "events=PROCESS_LOG",
        "buffer_size=4096",
        "result_handler=streamdesk_dev.stack:print_log_event",
        "priority=1",
        "autorestart=true",
        f"stderr_logfile={logs / (LISTENER + '.log')}",
        "stderr_logfile_maxbytes=1MB",
        "stderr_logfile_backups=1",
    ]
    for prog in programs:
        lines += [
            "",
            f"[program:{prog.name}]",
            f"command={_q(prog.argv)}",
            f"directory={_q([str(Path.cwd())])}",
            f"priority={prog.priority}",
            "autostart=true",
            "autorestart=true",
            f"startsecs={policy.start_secs}",
            f"startretries={policy.start_retries}",
            "stopsignal=TERM",
            f"stopwaitsecs={policy.stop_wait_secs}",
            "stopasgroup=true",
            "killasgroup=true",
            "redirect_stderr=true",
            f"stdout_logfile={logs / (prog.name + '.log')}",
            "stdout_logfile_maxbytes=5MB",
            "stdout_logfile_backups=2",
            "stdout_events_enabled=true",
        ]
    return "\n".join(lines) + "\n"


_partial: dict[tuple[str, str], bytes] = {}
_PARTIAL_MAX = 1 << 16


def print_log_event(event: Any, result: bytes) -> None:
    """supervisord result handler (runs inside supervisord): print a service's output to
    supervisord's stdout, every line prefixed with the time and the program name."""
    name = str(event.process.config.name)
    data = event.data if isinstance(event.data, bytes) else str(event.data).encode()
    key = (name, str(event.channel))
    *lines, rest = (_partial.pop(key, b"") + data).split(b"\n")
    if len(rest) > _PARTIAL_MAX:  # bounded: a huge line without newline is printed in parts
        lines, rest = [*lines, rest], b""
    if rest:
        _partial[key] = rest
    if not lines:
        return
    prefix = f"{time.strftime('%H:%M:%S')} {name:<10} | ".encode()
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.buffer.write(b"".join(prefix + ln.rstrip(b"\r") + b"\n" for ln in lines))
        sys.stdout.buffer.flush()


def _log_listener() -> int:
    """The eventlistener process: acknowledge every event; ``print_log_event`` prints it."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        stdout.write(b"READY\n")
        stdout.flush()
        header = stdin.readline()
        if not header:
            return 0
        fields = dict(token.split(b":", 1) for token in header.split())
        stdin.read(int(fields[b"len"]))
        stdout.write(b"RESULT 2\nOK")
        stdout.flush()


_LOG_LINE = re.compile(
    r"\b(?:INFO|WARN|CRIT|ERRO) (spawned|success|exited|gave up): '?([\w.-]+)'?(.*)$"
)


@dataclass
class CrashReporter:
    """Turns supervisord's log lines about a program into one clear ``stack:`` line: a crash
    and its exit status, the retry it is on, and the give-up of a crash loop."""

    policy: Policy
    conf: str = ".data/supervisord.conf"
    failures: dict[str, int] = field(default_factory=dict)
    starting: set[str] = field(default_factory=set)
    last_status: dict[str, str] = field(default_factory=dict)

    def feed(self, line: str) -> str | None:
        """The ``stack:`` line to print for supervisord's log ``line``, if any."""
        match = _LOG_LINE.search(line)
        if not match or match.group(2) == LISTENER:
            return None
        what, name, rest = match.groups()
        if what == "spawned":
            self.starting.add(name)
            return None
        if what == "success":  # up for startsecs: counted as started, failures reset
            self.starting.discard(name)
            self.failures[name] = 0
            return None
        if what == "gave up":
            status = self.last_status.get(name, "exit status unknown")
            return (
                f"stack: {name} is crash-looping ({status}): gave up after "
                f"{self.policy.start_retries + 1} failed starts in a row; the other services "
                f"keep running. Log: .data/logs/{name}.log; once fixed: "
                f".venv/bin/supervisorctl -c {self.conf} start {name}"
            )
        # exited: "(exit status 2; not expected)" or "(terminated by SIGKILL; not expected)"
        status = re.sub(r";\s*(not )?expected$", "", rest.strip().strip("()"))
        self.last_status[name] = status
        if name not in self.starting:
            word = "crashed" if "not expected" in rest else "exited"
            return f"stack: {name} {word} ({status}); restarting it"
        self.starting.discard(name)
        tries = self.failures.get(name, 0) + 1
        self.failures[name] = tries
        if tries > self.policy.start_retries:
            return None  # supervisord's "gave up" line follows
        return (
            f"stack: {name} exited ({status}) within {self.policy.start_secs}s of its start; "
            f"retry {tries} of {self.policy.start_retries} in {tries}s"
        )


# --------------------------------------------------------------------------- running


_STOP: dict[str, Any] = {"requested": False, "child": None}


def _request_stop(signum: int, frame: object) -> None:
    # SIGTERM (systemd, `timeout`, a supervisor), SIGHUP (terminal closed) and Ctrl-C all
    # stop the stack. Once supervisord runs it gets SIGTERM and stops the services in order;
    # before that, the start-up is unwound.
    if _STOP["requested"]:
        return
    _STOP["requested"] = True
    child: subprocess.Popen[bytes] | None = _STOP["child"]
    if child is None:
        raise KeyboardInterrupt
    with contextlib.suppress(ProcessLookupError):
        child.send_signal(signal.SIGTERM)
    deadline: float = _STOP.get("stop_deadline", 120.0)
    # Last resort if supervisord itself hangs; it SIGKILLs the services after stopwaitsecs.
    timer = threading.Timer(deadline, _kill_child, args=(child,))
    timer.daemon = True
    timer.start()


def _kill_child(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is None:
        print("stack: supervisord did not stop in time; killing it", file=sys.stderr, flush=True)
        with contextlib.suppress(ProcessLookupError):
            child.kill()


_STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}


def _child_setup() -> None:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)  # blocked around the spawn
    # Linux: supervisord gets SIGTERM (and stops the services) if this runner is killed.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG


def _combined(env: dict[str, str]) -> list[str]:
    """``STACK_COMBINE``: the services run in one process (``streamdesk.multiservice``)."""
    raw = env.get("STACK_COMBINE", "").strip()
    if not raw:
        return []
    from streamdesk.multiservice import parse_names  # imported where needed (log listener)

    try:
        return parse_names(raw)
    except ValueError as exc:
        raise PrerequisiteError(f"STACK_COMBINE: {exc}") from None


def _programs(env: dict[str, str], use_sim: bool, sim_port: int) -> list[Program]:
    wanted = env.get("STACK_SERVICES", "all").strip().lower()
    chosen = {n.strip() for n in wanted.split(",")} if wanted not in ("all", "") else None
    combined = _combined(env)
    wait = [sys.executable, "-m", "streamdesk.waitfor", f"127.0.0.1:{sim_port}", "--"]
    out = []
    group: list[str] = []
    group_waits = False
    for name, pkg, script, waits, priority in SERVICES:
        if not _installed(pkg) or (name == "market-sim" and not use_sim):
            continue
        if chosen is not None and name not in chosen:
            continue
        if name in combined:
            group.append(name)
            group_waits = group_waits or waits
            continue
        # Absolute path: the venv's bin directory need not be on PATH.
        exe = Path(sys.executable).parent / script
        argv = [str(exe) if exe.exists() else script]
        if waits and use_sim:
            argv = wait + argv
        out.append(Program(name, argv, priority))
    if group:
        # One program for the group, started with the data services (priority 200).
        argv = [sys.executable, "-m", "streamdesk.multiservice", ",".join(group)]
        out.append(Program("stack", wait + argv if group_waits and use_sim else argv, 200))
    return out


def _supervise(programs: list[Program], env: dict[str, str], policy: Policy) -> int:
    conf = DATA / "supervisord.conf"
    (DATA / "logs").mkdir(exist_ok=True)
    conf.touch(mode=0o600)
    conf.chmod(0o600)
    conf.write_text(supervisord_config(programs, DATA, policy))
    supervisord = Path(sys.executable).with_name("supervisord")
    if not supervisord.exists():
        raise PrerequisiteError("supervisord not found in the venv: run `make install`")
    reporter = CrashReporter(policy, conf=str(conf))
    _STOP["stop_deadline"] = len(programs) * (policy.stop_wait_secs + 2) + 15
    # A stop signal during the spawn waits until the child is known, then stops it.
    signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        proc = subprocess.Popen(
            [str(supervisord), "-c", str(conf.resolve())],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # signals reach it through this runner, in order
            preexec_fn=_child_setup,  # no threads run in this process at this point
        )
        _STOP["child"] = proc
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
    assert proc.stdout is not None
    out = sys.stdout.buffer
    for raw in proc.stdout:
        with contextlib.suppress(OSError):
            out.write(raw)
            out.flush()
        line = raw.decode(errors="replace").rstrip("\n")
        message = reporter.feed(line)
        if message:
            with contextlib.suppress(OSError):
                print(message, flush=True)
    rc = proc.wait()
    _STOP["child"] = None
    if _STOP["requested"]:
        return 0  # a requested stop is a clean exit
    print(f"stack: supervisord exited unexpectedly (code {rc})", file=sys.stderr, flush=True)
    return rc or 1


def main() -> int:
    """Run the stack in the foreground until Ctrl-C, SIGTERM or SIGHUP."""
    if sys.argv[1:] == ["--log-listener"]:
        return _log_listener()
    for sig in _STOP_SIGNALS:
        signal.signal(sig, _request_stop)
    env = {**_read_dotenv(), **os.environ}
    DATA.mkdir(exist_ok=True)
    if os.geteuid() == 0:
        DATA.chmod(0o755)
    pg: PostgresServer | None = None
    redis: RedisServer | None = None
    try:
        policy = policy_from_env(env)
        if not env.get("DATABASE_URL"):
            pg = PostgresServer(DATA / "pg", int(env.get("STACK_PG_PORT", PG_PORT)))
            print(f"stack: starting PostgreSQL on 127.0.0.1:{pg.port} (data in {pg.datadir})")
            pg.start()
            import asyncio  # here: the log listener and supervisord import this module too

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
        print("stack: applying migrations", flush=True)
        migrate = [sys.executable, "-m", "streamdesk.cli", "migrate"]
        if (code := subprocess.run(migrate, env=env, check=False).returncode) != 0:
            print(f"stack: migrations failed (exit {code}); services not started", file=sys.stderr)
            return 1

        use_sim = env.get("TRADING_MODE", "paper") == "paper" and not env.get("SCHWAB_BASE_URL")
        sim_port = int(env.get("SIM_PORT") or 8090)
        if use_sim:
            env["SCHWAB_BASE_URL"] = f"http://127.0.0.1:{sim_port}"
        if sys.stdout.isatty():
            # Services see a pipe to supervisord; a terminal still wants readable lines.
            env.setdefault("LOG_FORMAT", "text")
            env.setdefault("SIM_LOG_FORMAT", "text")
        programs = _programs(env, use_sim, sim_port)
        if not programs:
            print(
                "stack: no services to run; Postgres and Redis are up. Ctrl-C to stop.", flush=True
            )
            signal.sigwait(_STOP_SIGNALS)
            return 0
        gw, hp = env.get("GATEWAY_PORT") or "8080", env.get("HEALTH_PORT") or "8081"
        print("stack: services:", ", ".join(p.name for p in programs))
        print(f"stack: dashboard on http://127.0.0.1:{gw}   health on http://127.0.0.1:{hp}/health")
        print(
            f"stack: a crashed service is restarted; status: .venv/bin/supervisorctl -c "
            f"{DATA / 'supervisord.conf'} status",
            flush=True,
        )
        return _supervise(programs, env, policy)
    except PrerequisiteError as exc:
        print(f"stack: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        # A second Ctrl-C must not abort the clean stop of the servers.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if redis is not None:
            print("stack: stopping Redis", flush=True)
            redis.stop()
        if pg is not None:
            print("stack: stopping PostgreSQL (data kept in .data/pg)", flush=True)
            pg.stop("fast")


if __name__ == "__main__":
    sys.exit(main())
