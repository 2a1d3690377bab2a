"""Gateway security on a real Postgres and Redis: refused requests (no token, wrong token,
wrong Host, wrong Origin, over the failed-attempt limit), the session cookie, the token file.
"""

from __future__ import annotations

import logging
import re
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketDenialResponse
from starlette.websockets import WebSocketDisconnect

from streamdesk_gateway.auth import Sessions
from streamdesk_gateway.config import Settings

pytestmark = pytest.mark.integration

WS = "ws://127.0.0.1:8080/ws"


class FakeMonotonic:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path).replace(":path", "")


def test_every_api_route_needs_auth(
    gateway_settings: Callable[..., Settings], make_gateway_client: Callable[..., TestClient]
) -> None:
    with make_gateway_client(gateway_settings(), authenticated=False) as c:
        paths = c.get("/openapi.json").json()["paths"]
        checked = 0
        for path, operations in paths.items():
            if not path.startswith("/api/") or path in ("/api/login", "/api/logout"):
                continue
            for method in operations:
                r = c.request(method, _concrete(path))
                assert r.status_code == 401, (method, path, r.text)
                assert r.headers["www-authenticate"].startswith("Bearer")
                assert "401" in operations[method]["responses"], (method, path)
                checked += 1
        assert checked >= 5
        # Unknown paths under /api are refused too (no probing for routes).
        assert c.get("/api/nope").status_code == 401
        assert c.get("/livez").status_code == 200
        assert c.get("/").status_code == 200


def test_bearer_token(
    gateway_settings: Callable[..., Settings],
    make_gateway_client: Callable[..., TestClient],
    gateway_token: str,
) -> None:
    with make_gateway_client(gateway_settings(), authenticated=False) as c:
        wrong = c.get("/api/trades", headers={"Authorization": "Bearer " + "x" * 30})
        assert wrong.status_code == 401 and wrong.json() == {"detail": "invalid token"}
        basic = c.get("/api/trades", headers={"Authorization": f"Basic {gateway_token}"})
        assert basic.status_code == 401
        ok = c.get("/api/trades", headers={"Authorization": f"Bearer {gateway_token}"})
        assert ok.status_code == 200 and ok.json() == []
        prefix = c.get("/api/trades", headers={"Authorization": f"Bearer {gateway_token[:-1]}"})
        assert prefix.status_code == 401


def test_login_session_cookie_and_logout(
    gateway_settings: Callable[..., Settings],
    make_gateway_client: Callable[..., TestClient],
    gateway_token: str,
) -> None:
    with make_gateway_client(gateway_settings(), authenticated=False) as c:
        assert c.get("/api/session").status_code == 401
        assert c.post("/api/login", json={"token": "nope-nope-nope"}).status_code == 401
        assert "sd_session" not in c.cookies
        assert c.post("/api/login", json={}).status_code == 422
        r = c.post("/api/login", json={"token": gateway_token})
        assert r.status_code == 204
        set_cookie = r.headers["set-cookie"]
        flags = {f.strip().lower() for f in set_cookie.split(";")}
        assert {"httponly", "samesite=strict", "path=/"} <= flags, set_cookie
        assert "secure" not in flags  # plain http on loopback; GATEWAY_COOKIE_SECURE for TLS
        sid = c.cookies["sd_session"]
        assert gateway_token not in set_cookie and len(sid) >= 40
        assert c.get("/api/session").json() == {"authenticated": True, "user_id": None}
        assert c.get("/api/trades").status_code == 200
        with c.websocket_connect(WS):
            pass  # the cookie authenticates the live feed
        out = c.post("/api/logout")
        assert out.status_code == 204 and "max-age=0" in out.headers["set-cookie"].lower()
        c.cookies.set("sd_session", sid)  # a stolen, logged-out id is dead
        assert c.get("/api/session").status_code == 401
        c.cookies.set("sd_session", "forged" * 8)
        assert c.get("/api/session").status_code == 401
        assert c.post("/api/logout").status_code == 204  # idempotent, without a session


def test_sessions_are_signed_expire_and_logouts_are_bounded() -> None:
    now = FakeMonotonic()  # as a wall clock here: the expiry travels in the cookie
    sessions = Sessions(b"k" * 32, ttl=60, limit=3, wall=now)
    first = sessions.create()
    assert sessions.valid(first)
    # The same key (same token) after a restart: the browser stays logged in.
    assert Sessions(b"k" * 32, ttl=60, limit=3, wall=now).valid(first)
    assert not Sessions(b"other-token-key!" * 2, ttl=60, limit=3, wall=now).valid(first)
    expiry, nonce, mac = first.split(".")
    for forged in (
        f"{int(expiry) + 3600}.{nonce}.{mac}",  # a longer life
        f"{expiry}.{nonce}x.{mac}",
        f"{expiry}.{nonce}.{mac[:-1]}0" if mac[-1] != "0" else f"{expiry}.{nonce}.{mac[:-1]}1",
        f"{expiry}.{nonce}",
        "",
        "1.2.3.4",
        f"-{expiry}.{nonce}.{mac}",
    ):
        assert not sessions.valid(forged), forged
    now.t += 61
    assert not sessions.valid(first)
    ids = [sessions.create() for _ in range(5)]
    for sid in ids:
        sessions.drop(sid)
    assert len(sessions) == 3  # revocations are bounded, the oldest forgotten first
    assert not any(sessions.valid(s) for s in ids[2:])


def test_a_login_survives_a_gateway_restart(
    gateway_settings: Callable[..., Settings],
    make_gateway_client: Callable[..., TestClient],
    gateway_token: str,
) -> None:
    settings = gateway_settings()
    with make_gateway_client(settings, authenticated=False) as c:
        assert c.post("/api/login", json={"token": gateway_token}).status_code == 204
        sid = c.cookies.get("sd_session")
    assert sid
    with make_gateway_client(settings, authenticated=False) as c:  # a new process's state
        c.cookies.set("sd_session", sid)
        assert c.get("/api/session").status_code == 200
    rotated = gateway_settings(gateway_token="a-rotated-gateway-token-987654")
    with make_gateway_client(rotated, authenticated=False) as c:
        c.cookies.set("sd_session", sid)
        assert c.get("/api/session").status_code == 401  # a new token ends every session


def test_failed_attempts_rate_limited(
    gateway_settings: Callable[..., Settings],
    make_gateway_client: Callable[..., TestClient],
    gateway_token: str,
) -> None:
    now = FakeMonotonic()
    settings = gateway_settings(gateway_login_max_failures=3, gateway_login_window=60)
    with make_gateway_client(settings, authenticated=False, monotonic=now) as c:
        for _ in range(2):
            assert c.post("/api/login", json={"token": "wrong-token-x"}).status_code == 401
        bad_bearer = c.get("/api/trades", headers={"Authorization": "Bearer guess-guess"})
        assert bad_bearer.status_code == 401  # a Bearer guess counts as a failed attempt
        for attempt in ({"token": "wrong-token-x"}, {"token": gateway_token}):
            limited = c.post("/api/login", json=attempt)
            assert limited.status_code == 429, limited.text
            assert limited.headers["retry-after"] == "60"
        bearer = c.get("/api/trades", headers={"Authorization": f"Bearer {gateway_token}"})
        assert bearer.status_code == 429
        now.t += 30
        assert c.post("/api/login", json={"token": "x" * 20}).headers["retry-after"] == "30"
        now.t += 31
        assert c.post("/api/login", json={"token": gateway_token}).status_code == 204
        # A logged-in browser is not locked out by someone else's guesses.
        for _ in range(4):
            c.get("/api/trades", headers={"Authorization": "Bearer guess-guess"})
        assert c.get("/api/session").status_code == 200
    # Another client address is counted apart.
    with make_gateway_client(
        settings, authenticated=False, monotonic=now, client=("10.1.2.3", 4000)
    ) as other:
        for _ in range(3):
            other.post("/api/login", json={"token": "wrong-token-x"})
        assert other.post("/api/login", json={"token": gateway_token}).status_code == 429


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8080", "127.0.0.2", ""])
def test_wrong_host_refused(
    host: str,
    gateway_settings: Callable[..., Settings],
    make_gateway_client: Callable[..., TestClient],
) -> None:
    with make_gateway_client(gateway_settings()) as c:
        for path in ("/api/trades", "/livez", "/", "/openapi.json"):
            r = c.get(path, headers={"Host": host})
            assert r.status_code == 400, (path, r.text)
            assert r.json() == {"detail": "host not allowed"}
        with (
            pytest.raises(WebSocketDenialResponse) as denied,
            c.websocket_connect(WS, headers={"Host": host}),
        ):
            pass
        assert denied.value.status_code == 400


def test_allowed_hosts(
    gateway_settings: Callable[..., Settings], make_gateway_client: Callable[..., TestClient]
) -> None:
    with make_gateway_client(gateway_settings()) as c:
        for host in ("localhost:8080", "LOCALHOST", "127.0.0.1", "[::1]:8080", "[::1]"):
            assert c.get("/api/trades", headers={"Host": host}).status_code == 200, host
    settings = gateway_settings(gateway_allowed_hosts="desk.lan, 127.0.0.1")
    with make_gateway_client(settings) as c:
        assert c.get("/livez", headers={"Host": "desk.lan:8080"}).status_code == 200
        assert c.get("/livez", headers={"Host": "localhost"}).status_code == 400


def test_origin_checked(
    gateway_settings: Callable[..., Settings], make_gateway_client: Callable[..., TestClient]
) -> None:
    with make_gateway_client(gateway_settings()) as c:
        same = c.get("/api/trades", headers={"Origin": "http://127.0.0.1:8080"})
        assert same.status_code == 200
        assert "access-control-allow-origin" not in same.headers  # CORS off
        for origin in ("http://evil.example", "http://127.0.0.1:9999", "null"):
            r = c.post("/api/trades/1/cancel", headers={"Origin": origin})
            assert r.status_code == 403, origin
            assert r.json() == {"detail": "origin not allowed"}
            with (
                pytest.raises(WebSocketDisconnect) as closed,
                c.websocket_connect(WS, headers={"Origin": origin}),
            ):
                pass
            assert closed.value.code == 1008
        with c.websocket_connect(WS, headers={"Origin": "http://127.0.0.1:8080"}):
            pass
        preflight = c.options(
            "/api/trades",
            headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert "access-control-allow-origin" not in preflight.headers


def test_cors_when_configured(
    gateway_settings: Callable[..., Settings], make_gateway_client: Callable[..., TestClient]
) -> None:
    dev = "http://127.0.0.1:5173"
    with make_gateway_client(gateway_settings(gateway_cors_origins=dev)) as c:
        r = c.get("/api/trades", headers={"Origin": dev})
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == dev
        preflight = c.options(
            "/api/trades", headers={"Origin": dev, "Access-Control-Request-Method": "POST"}
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-credentials"] == "true"
        assert c.get("/api/trades", headers={"Origin": "http://evil.example"}).status_code == 403


def test_ws_needs_auth(
    gateway_settings: Callable[..., Settings],
    make_gateway_client: Callable[..., TestClient],
    gateway_token: str,
) -> None:
    with make_gateway_client(gateway_settings(), authenticated=False) as c:
        for headers in ({}, {"Authorization": "Bearer wrong-wrong-wrong"}):
            with (
                pytest.raises(WebSocketDisconnect) as closed,
                c.websocket_connect(WS, headers=headers),
            ):
                pass
            assert closed.value.code == 1008
        with c.websocket_connect(WS, headers={"Authorization": f"Bearer {gateway_token}"}):
            pass


def test_generated_token_file(
    tmp_path: Path,
    gateway_settings: Callable[..., Settings],
    make_gateway_client: Callable[..., TestClient],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = gateway_settings(gateway_token=None)
    path = tmp_path / "gateway-token"  # beside SCHWAB_TOKEN_PATH: the data directory
    assert settings.token_path() == path and not path.exists()
    with make_gateway_client(settings, authenticated=False) as c:
        token = path.read_text().strip()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert len(token) >= 40
        auth = {"Authorization": f"Bearer {token}"}
        assert c.get("/api/session", headers=auth).status_code == 200
        assert c.post("/api/login", json={"token": token}).status_code == 204
    path.chmod(0o644)
    with make_gateway_client(settings, authenticated=False) as again:  # a restart
        assert path.read_text().strip() == token
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert again.get("/api/session", headers=auth).status_code == 200
    assert token not in caplog.text
    assert list(tmp_path.glob("gateway-token.*")) == []  # no temp file left behind


def test_configured_token_wins_and_is_validated(
    tmp_path: Path, gateway_settings: Callable[..., Settings]
) -> None:
    from streamdesk.config import ConfigError

    settings = gateway_settings()
    assert settings.gateway_token is not None
    assert "test-gateway" not in repr(settings)  # SecretStr: not in a repr or a log line
    with pytest.raises(ConfigError, match="GATEWAY_TOKEN"):
        gateway_settings(gateway_token="short")
    with pytest.raises(ConfigError, match="GATEWAY_CORS_ORIGINS"):
        gateway_settings(gateway_cors_origins="*")
