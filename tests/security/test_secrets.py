"""No secret in logs, health output or the shipped frontend; token files are 0600.

Known fake secrets - the Schwab app key and secret, the access and refresh tokens market-sim
issues, a database password in the DSN, a Redis password, a webhook URL token - are given to
the real services and functions, which run with DEBUG logging configured by the services' own
``setup_logging``; every log record (formatted as JSON and as text, with its exception) and
every ``/health`` and ``/metrics`` body is then scanned for them.

The gateway's API token (``GATEWAY_TOKEN``, and the one it generates into the data directory
when unset) is in the list too: the gateway is driven through login (right and wrong), Bearer
calls (right and wrong), the rate limit and refused WebSockets, all logged at DEBUG.

Frontend: :func:`scan_bundle` scans ``frontend/dist`` when it exists (a built dashboard; this
test never builds one) for the values above and for secret-shaped strings (service-role JWTs,
private keys, DSNs with a password, webhook URLs).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import re
import stat
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest

from streamdesk.config import ConfigError, load_settings
from streamdesk.log import JsonFormatter, TextFormatter, setup_logging
from streamdesk.redisutil import create_redis
from streamdesk.schwab import TokenStore, ensure_paper_token

ROOT = Path(__file__).resolve().parents[2]
APP_KEY = "fake-app-key-K3yQ9v"
APP_SECRET = "fake-app-secret-Zq81xR"
DB_PASSWORD = "fake-db-pw-Hh27Lm"
REDIS_PASSWORD = "fake-redis-pw-Pp55Ts"
WEBHOOK_TOKEN = "fake-webhook-token-Ww90Bn"
GATEWAY_TOKEN = "fake-gateway-token-Gg61Kd"
SECRETS = [APP_KEY, APP_SECRET, DB_PASSWORD, REDIS_PASSWORD, WEBHOOK_TOKEN, GATEWAY_TOKEN]


# --------------------------------------------------------------------------- capture


class Capture(logging.Handler):
    """Every record, formatted both ways the services format them."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.json = JsonFormatter("security-test")
        self.text = TextFormatter()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.json.format(record))
        self.lines.append(self.text.format(record))
        if record.exc_info:
            self.lines.append(self.text.formatException(record.exc_info))


@pytest.fixture
def debug_logs() -> Iterator[Capture]:
    """Logging as a service configures it at LOG_LEVEL=DEBUG, plus a capturing handler."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    saved_levels = {name: logging.getLogger(name).level for name in logging.root.manager.loggerDict}
    setup_logging("security-test", "DEBUG", "json")
    cap = Capture()
    root.handlers.append(cap)
    try:
        yield cap
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        for name, level in saved_levels.items():
            logging.getLogger(name).setLevel(level)


def leaks(texts: list[str], secrets: list[str]) -> list[tuple[str, str]]:
    """(secret, line) for every secret found in any of ``texts``."""
    found = []
    for secret in secrets:
        for line in texts:
            if secret in line:
                found.append((secret, line[:300]))
                break
    return found


def token_secrets(path: Path) -> list[str]:
    """The access and refresh tokens in a schwab-py token file."""
    data = TokenStore(path).read()
    assert data is not None
    return [str(data["token"][k]) for k in ("access_token", "refresh_token")]


def with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    user = parts.username or ""
    host = parts.hostname or ""
    netloc = f"{user}:{password}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def closed_port() -> int:
    from streamdesk_dev.localservers import free_port

    return free_port()  # nothing listens there


# --------------------------------------------------------------------------- services


@contextlib.asynccontextmanager
async def running(make: Any, run: str = "run") -> AsyncIterator[Any]:
    service = make()
    task = asyncio.create_task(getattr(service, run)(), name="security-service")
    try:
        yield service, task
    finally:
        stop = getattr(service, "stop", None)
        if hasattr(service, "shutdown"):
            service.shutdown.request("test end")
        elif stop is not None:
            stop()
        done, _ = await asyncio.wait({task}, timeout=20)
        if not done:
            task.cancel()
            await asyncio.wait({task}, timeout=5)


async def wait_until(cond: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


@pytest.mark.integration
async def test_no_secret_in_any_log_line_or_health_output(
    debug_logs: Capture, db_url: str, redis_url: str, market_sim: Any, tmp_path: Path
) -> None:
    from streamdesk_executor.config import Settings as ExecutorSettings
    from streamdesk_executor.connections import open_executor
    from streamdesk_health.app import create_app as health_app
    from streamdesk_health.config import Settings as HealthSettings
    from streamdesk_health.monitor import HealthMonitor
    from streamdesk_streamer.config import Settings as StreamerSettings
    from streamdesk_streamer.streamer import Streamer

    dsn = with_password(db_url, DB_PASSWORD)  # the test server trusts; the DSN still has it
    common: dict[str, Any] = {
        **market_sim.settings_overrides(tmp_path),
        "schwab_api_key": APP_KEY,
        "schwab_app_secret": APP_SECRET,
        "database_url": dsn,
        "redis_url": redis_url,
        "market_hours": "always",
        "heartbeat_interval": 0.3,
        "log_level": "DEBUG",
    }
    token_path = common["schwab_token_path"]
    secrets = list(SECRETS)

    # 1. paper login (OAuth code exchange) writes the token file
    ex_settings = load_settings(
        ExecutorSettings,
        _env_file=None,
        **common,
        executor_quote_source="broker",
        executor_poll_interval=0.2,
        executor_sync_interval=0.3,
        risk_allow_market_orders=True,
        risk_duplicate_window=0.0,
        risk_quote_max_age=60.0,
    )
    assert await asyncio.to_thread(ensure_paper_token, ex_settings)
    secrets += token_secrets(token_path)

    # 2. the executor places an order (schwab-py logs every response body at DEBUG)
    async with open_executor(ex_settings) as ex:
        task = asyncio.create_task(ex.run())
        try:
            await asyncio.wait_for(ex.ready.wait(), 20)
            conn = await asyncpg.connect(dsn)
            try:
                trade = await conn.fetchval(
                    "INSERT INTO trades (symbol, asset_type, instruction, quantity, order_type) "
                    "VALUES ('AAPL', 'EQUITY', 'BUY', 1, 'MARKET') RETURNING id"
                )

                async def filled() -> bool:
                    s = await conn.fetchval("SELECT status FROM trades WHERE id = $1", trade)
                    return s in ("filled", "rejected")

                await wait_until(filled, 20, "the order")
                # an expired access token: the client refreshes it and writes the file again
                market_sim.expire_tokens(access=True)
                await ex.broker.account()
            finally:
                await conn.close()
        finally:
            ex.stop()
            await asyncio.wait_for(task, 15)
    secrets += token_secrets(token_path)

    # 3. the streamer logs in on the websocket (the LOGIN request carries the access token)
    st_settings = load_settings(
        StreamerSettings,
        _env_file=None,
        **common,
        tickers="AAPL",
        option_underlyings="",
        stream_partitions=1,
        backoff_initial=0.1,
    )
    redis = create_redis(redis_url)
    try:
        async with running(lambda: Streamer(st_settings, redis)) as (streamer, task):

            async def streaming() -> bool:
                assert not task.done(), task
                return streamer.publisher.ticks > 0

            await wait_until(streaming, 30, "streamed ticks")
    finally:
        await redis.aclose()
    secrets += token_secrets(token_path)

    # 4. health, with its database and Redis unreachable (errors are reported) and a webhook
    hook = f"http://127.0.0.1:{closed_port()}/hooks/T000/B000/{WEBHOOK_TOKEN}"
    h_settings = load_settings(
        HealthSettings,
        _env_file=None,
        **{
            **common,
            "database_url": f"postgresql://streamdesk:{DB_PASSWORD}@127.0.0.1:{closed_port()}/x",
            "redis_url": f"redis://:{REDIS_PASSWORD}@127.0.0.1:{closed_port()}/0",
        },
        health_webhook_url=hook,
        health_alert_grace_s=0.0,
        health_webhook_min_interval_s=0.0,
        health_check_timeout=2.0,
    )
    mon = HealthMonitor(h_settings)
    app = health_app(h_settings, monitor=mon)
    bodies: list[str] = []
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://h") as http,
    ):
        for _ in range(2):
            await mon.run_once()
            for path in ("/health", "/metrics", "/livez", "/readyz"):
                resp = await http.get(path)
                bodies.append(f"{path} {resp.status_code} {resp.text}")
        assert json.loads(bodies[-4].split(" ", 2)[2])["status"] == "down"
        await asyncio.sleep(0.5)  # the alert sender tries the webhook

    # 5. the gateway: configured token, then one it generates; logins and Bearer calls, right
    # and wrong, the rate limit, refused and accepted WebSockets
    secrets += await _drive_gateway(common, tmp_path, bodies)

    # 6. configuration errors name the variable, never the secret value
    for bad in (
        {"health_webhook_url": f"ftp://x/{WEBHOOK_TOKEN}"},
        {"database_url": 7, "schwab_app_secret": ["x", APP_SECRET]},
        {"redis_url": f"nonsense-{REDIS_PASSWORD}", "risk_collar_pct": APP_SECRET},
    ):
        with pytest.raises(ConfigError) as info:
            load_settings(HealthSettings, _env_file=None, **bad)
        bodies.append(str(info.value))
    from streamdesk_gateway.config import Settings as GatewaySettings

    with pytest.raises(ConfigError) as info:
        load_settings(GatewaySettings, _env_file=None, gateway_token=GATEWAY_TOKEN[:12])
    bodies.append(str(info.value))
    secrets.append(GATEWAY_TOKEN[:12])

    secrets = sorted(set(secrets))
    # the first access token, the refreshed one and the refresh token at least
    assert len(secrets) >= len(SECRETS) + 3, "tokens not captured"
    assert debug_logs.lines, "nothing was logged: the capture does not work"
    assert any("DEBUG" in line for line in debug_logs.lines), "DEBUG was not enabled"
    assert not leaks(debug_logs.lines, secrets), leaks(debug_logs.lines, secrets)
    assert not leaks(bodies, secrets), leaks(bodies, secrets)


async def _drive_gateway(common: dict[str, Any], tmp_path: Path, bodies: list[str]) -> list[str]:
    """Exercise the gateway's auth paths; return the generated token (a secret too)."""
    from starlette.testclient import TestClient

    from streamdesk_gateway.app import create_app as gateway_app
    from streamdesk_gateway.config import Settings as GatewaySettings

    generated: list[str] = []
    for token in (GATEWAY_TOKEN, None):
        settings = load_settings(
            GatewaySettings,
            _env_file=None,
            **{**common, "schwab_token_path": tmp_path / "gw" / "schwab-token.json"},
            gateway_token=token,
            gateway_login_max_failures=2,
        )
        app = gateway_app(settings)
        expected = app.state.sd.auth.token
        if token is None:
            generated.append(expected)
            assert (tmp_path / "gw" / "gateway-token").read_text().strip() == expected

        def drive(app: Any = app, expected: str = expected) -> None:
            with TestClient(app, base_url="http://127.0.0.1:8080") as c:
                good = {"Authorization": f"Bearer {expected}"}
                for headers in ({}, good, {"Authorization": f"Bearer {expected[:-2]}"}):
                    r = c.get("/api/trades", headers=headers)
                    bodies.append(f"{r.status_code} {r.headers} {r.text}")
                for body in ({"token": expected}, {"token": expected + "x"}, {"token": "x"}):
                    r = c.post("/api/login", json=body)
                    bodies.append(f"{r.status_code} {r.text}")
                r = c.post("/api/login", json={"token": expected})  # rate-limited now
                bodies.append(f"{r.status_code} {r.headers} {r.text}")
                with (
                    contextlib.suppress(Exception),
                    c.websocket_connect(
                        "ws://127.0.0.1:8080/ws", headers={"Origin": "http://evil.example"}
                    ),
                ):
                    pass
                with c.websocket_connect("ws://127.0.0.1:8080/ws", headers=good):
                    pass
                bodies.append(c.get("/openapi.json").text)

        await asyncio.to_thread(drive)
    return generated


# --------------------------------------------------------------------------- token files


@pytest.mark.unit
@pytest.mark.parametrize("umask", [0o022, 0o000])
def test_token_file_is_written_0600(tmp_path: Path, umask: int) -> None:
    path = tmp_path / "tokens" / "schwab-token.json"
    path.parent.mkdir()
    path.write_text("{}")
    path.chmod(0o644)  # an older, too open file is replaced, not reused
    old = os.umask(umask)
    try:
        store = TokenStore(path)
        store.write({"creation_timestamp": 1, "token": {"access_token": "a", "refresh_token": "r"}})
        store.write({"creation_timestamp": 2, "token": {"access_token": "b", "refresh_token": "s"}})
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lock = path.with_name(path.name + ".lock")
    assert stat.S_IMODE(lock.stat().st_mode) & 0o077 == 0
    leftovers = [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    assert not leftovers
    assert TokenStore(path).read() == {
        "creation_timestamp": 2,
        "token": {"access_token": "b", "refresh_token": "s"},
    }


@pytest.mark.integration
def test_paper_login_writes_the_token_file_0600(market_sim: Any, tmp_path: Path) -> None:
    from streamdesk.config import CommonSettings

    settings = load_settings(
        CommonSettings, _env_file=None, **market_sim.settings_overrides(tmp_path)
    )
    old = os.umask(0o000)
    try:
        assert ensure_paper_token(settings)
    finally:
        os.umask(old)
    assert stat.S_IMODE(Path(settings.schwab_token_path).stat().st_mode) == 0o600


# --------------------------------------------------------------------------- frontend bundle

#: Secret-shaped strings that must never be in a built frontend.
SECRET_PATTERNS = {
    "private key": re.compile(r"-----BEGIN (?:RSA |EC |OPENSSH )?PRIVATE KEY-----"),
    "DSN with a password": re.compile(r"\b(?:postgres(?:ql)?|redis)://[^\s:/@\"']+:[^\s@\"']+@"),
    "webhook URL": re.compile(
        r"https://(?:hooks\.slack\.com/services|discord(?:app)?\.com/api/webhooks)/\S+"
    ),
    "Schwab client secret": re.compile(r"client_secret\s*[=:]\s*[\"'][^\"']{6,}"),
}
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.(eyJ[A-Za-z0-9_-]{8,})\.[A-Za-z0-9_-]{8,}")
TEXT_SUFFIXES = {
    ".js",
    ".mjs",
    ".cjs",
    ".css",
    ".html",
    ".json",
    ".map",
    ".txt",
    ".svg",
    ".webmanifest",
}


def _service_role_jwts(text: str) -> list[str]:
    """JWTs whose payload says ``service_role`` (Supabase's key that bypasses RLS)."""
    out = []
    for m in _JWT.finditer(text):
        payload = m.group(1) + "=" * (-len(m.group(1)) % 4)
        with contextlib.suppress(ValueError):
            claims = json.loads(base64.urlsafe_b64decode(payload))
            if isinstance(claims, dict) and claims.get("role") == "service_role":
                out.append(m.group(0)[:20] + "...")
    return out


def scan_bundle(directory: Path, known: list[str]) -> list[str]:
    """Findings (``file: what``) in the text files under ``directory``."""
    findings = []
    for path in sorted(directory.rglob("*")):
        if not path.is_file() or path.suffix.lower() not in TEXT_SUFFIXES:
            continue
        text = path.read_text("utf-8", errors="replace")
        rel = path.relative_to(directory)
        findings += [f"{rel}: known secret {s[:6]}..." for s in known if s and s in text]
        findings += [f"{rel}: {name}" for name, rx in SECRET_PATTERNS.items() if rx.search(text)]
        findings += [f"{rel}: service-role JWT {j}" for j in _service_role_jwts(text)]
    return findings


def _env_secrets() -> list[str]:
    """Values of secret-looking variables in this environment (what a build could inline)."""
    names = ("SECRET", "PASSWORD", "SERVICE_ROLE", "TOKEN", "PRIVATE")
    return [v for k, v in os.environ.items() if any(n in k.upper() for n in names) and len(v) >= 8]


def _fake_jwt(role: str) -> str:
    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    header, claims = part({"alg": "HS256", "typ": "JWT"}), part({"role": role, "iss": "supabase"})
    return f"{header}.{claims}.c2lnbmF0dXJlLXNpZw"


@pytest.mark.unit
def test_scanner_finds_what_it_must(tmp_path: Path) -> None:
    dist = tmp_path / "dist" / "assets"
    dist.mkdir(parents=True)
    (dist / "index-abc.js").write_text(
        f'const a="{_fake_jwt("anon")}";const k="{APP_SECRET}";'
        f'fetch("postgresql://postgres:{DB_PASSWORD}@db:5432/postgres");'
        f'const s="{_fake_jwt("service_role")}";'
    )
    (dist / "ok.css").write_text("body{color:red}")
    found = scan_bundle(tmp_path / "dist", [APP_SECRET])
    assert any("known secret" in f for f in found)
    assert any("DSN with a password" in f for f in found)
    assert sum("service-role JWT" in f for f in found) == 1  # the anon key is public: fine


@pytest.mark.unit
@pytest.mark.parametrize(
    "directory",
    [ROOT / "frontend" / "dist"],
    ids=["frontend-dist"],
)
def test_shipped_frontend_holds_no_secret(directory: Path) -> None:
    if not directory.is_dir():
        pytest.skip(f"{directory.relative_to(ROOT)} not built (scanned when present)")
    assert not scan_bundle(directory, [*SECRETS, *_env_secrets()])


@pytest.mark.unit
def test_regression_frame_dumping_loggers_are_off_at_debug(debug_logs: Capture) -> None:
    """Found by the log scan: at LOG_LEVEL=DEBUG schwab-py's stream client logged the LOGIN
    request, access token included; the loggers that dump whole frames stay at WARNING."""
    assert logging.getLogger("streamdesk").isEnabledFor(logging.DEBUG)
    for name in ("schwab.streaming", "websockets.client"):
        assert not logging.getLogger(name).isEnabledFor(logging.INFO), name
