"""Operations routes: status, token age, pause/resume, universe, kill switch (real PG + Redis)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import redis as syncredis
from fastapi.testclient import TestClient
from market_clock import MARKET_CLOSED_AT, MARKET_OPEN_AT, NEW_YORK

from streamdesk.clock import ManualClock
from streamdesk.config import MarketHoursMode
from streamdesk.constants import HEALTH_SUMMARY_KEY
from streamdesk.heartbeat import Heartbeat
from streamdesk.redisutil import create_redis
from streamdesk_gateway.config import Settings
from streamdesk_gateway.ops_status import market_status

pytestmark = pytest.mark.integration

Factory = Callable[..., TestClient]


@pytest.mark.unit
@pytest.mark.parametrize(
    ("at", "session", "next_ny"),
    [
        (MARKET_OPEN_AT, "regular", datetime(2026, 3, 11, 16, 0)),
        (datetime(2026, 3, 11, 6, 59, tzinfo=NEW_YORK), "closed", datetime(2026, 3, 11, 7, 0)),
        (datetime(2026, 3, 11, 7, 0, tzinfo=NEW_YORK), "pre", datetime(2026, 3, 11, 9, 30)),
        (datetime(2026, 3, 11, 17, 0, tzinfo=NEW_YORK), "post", datetime(2026, 3, 11, 20, 0)),
        (datetime(2026, 3, 11, 21, 0, tzinfo=NEW_YORK), "closed", datetime(2026, 3, 12, 7, 0)),
        (MARKET_CLOSED_AT, "closed", datetime(2026, 3, 16, 7, 0)),  # Saturday -> Monday
    ],
)
def test_market_session_and_next_change(at: datetime, session: str, next_ny: datetime) -> None:
    m = market_status(at)
    assert m.session == session and m.open == (session == "regular")
    want = next_ny.replace(tzinfo=NEW_YORK).astimezone(UTC).isoformat()
    assert m.next_change_at == want


@pytest.mark.parametrize(
    ("mode", "open_now"),
    [
        (MarketHoursMode.REGULAR, {"pre": False, "regular": True, "post": False, "closed": False}),
        (MarketHoursMode.EXTENDED, {"pre": True, "regular": True, "post": True, "closed": False}),
        (MarketHoursMode.ALWAYS, {"pre": True, "regular": True, "post": True, "closed": True}),
    ],
)
def test_market_open_follows_the_services_market_hours(
    mode: MarketHoursMode, open_now: dict[str, bool]
) -> None:
    moments = {
        "pre": datetime(2026, 3, 11, 7, 0, tzinfo=NEW_YORK),
        "regular": MARKET_OPEN_AT,
        "post": datetime(2026, 3, 11, 17, 0, tzinfo=NEW_YORK),
        "closed": MARKET_CLOSED_AT,
    }
    for session, at in moments.items():
        m = market_status(at, mode)
        assert m.session == session and m.open is open_now[session], (mode, session)


def test_status_services_health_and_flags(
    gateway_settings: Callable[..., Settings], make_gateway_client: Factory, redis_url: str
) -> None:
    clock = ManualClock(MARKET_OPEN_AT)
    r = syncredis.Redis.from_url(redis_url)

    async def beat() -> None:
        aredis = create_redis(redis_url)
        hb = Heartbeat(aredis, "streamer", instance="s1", clock=clock, counters=lambda: {"x": 1})
        await hb.beat()
        await aredis.aclose()

    asyncio.run(beat())
    clock.advance(2.5)
    with make_gateway_client(gateway_settings(), clock=clock) as client:
        body = client.get("/api/status").json()
        assert body["market"]["open"] is True and body["market"]["session"] == "regular"
        assert body["now"] == clock.now().isoformat()
        assert body["kill_switch"] is False and body["health"] is None
        by_name = {s["name"]: s for s in body["services"]}
        st = by_name["streamer"]
        assert st["alive"] and st["instance"] == "s1" and st["age_s"] == 2.5
        assert st["counters"] == {"x": 1} and st["paused"] is False
        assert by_name["indicators"]["alive"] is False  # expected, no heartbeat
        assert by_name["trade-executor"]["paused"] is False

        health = {"components": {"overall": "degraded", "streamer": "ok"}, "at": 5.0}
        r.set(HEALTH_SUMMARY_KEY, json.dumps(health))
        assert client.post("/api/ops/services/streamer/pause").json() == {
            "name": "streamer",
            "paused": True,
        }
        assert client.post("/api/ops/kill-switch", json={"engaged": True}).status_code == 200
        body = client.get("/api/status").json()
        assert body["health"] == {"status": "degraded", "components": {"streamer": "ok"}, "at": 5.0}
        assert body["kill_switch"] is True
        assert {s["name"]: s for s in body["services"]}["streamer"]["paused"] is True
        r.set(HEALTH_SUMMARY_KEY, b"not json")
        assert client.get("/api/status").json()["health"] is None
    r.close()


def test_token_age_never_its_contents(
    gateway_settings: Callable[..., Settings], make_gateway_client: Factory, tmp_path: Any
) -> None:
    clock = ManualClock(MARKET_CLOSED_AT)
    settings = gateway_settings()
    with make_gateway_client(settings, clock=clock) as client:
        assert client.get("/api/ops/token").json() == {
            "exists": False,
            "created_at": None,
            "age_s": None,
            "refresh_expires_in_s": None,
            "access_expires_in_s": None,
        }
        now = clock.time()
        secret: dict[str, Any] = {"access_token": "AT-SECRET", "refresh_token": "RT-SECRET"}
        secret["expires_at"] = now + 1800
        settings.schwab_token_path.write_text(
            json.dumps({"creation_timestamp": now - 2 * 86400, "token": secret})
        )
        resp = client.get("/api/ops/token")
        body = resp.json()
        assert body["exists"] is True and body["age_s"] == 2 * 86400
        assert body["refresh_expires_in_s"] == 5 * 86400
        assert body["access_expires_in_s"] == 1800
        assert "SECRET" not in resp.text


def test_pause_resume_and_unknown_service(gateway_client: TestClient) -> None:
    for name in ("streamer", "trade-executor"):
        assert gateway_client.post(f"/api/ops/services/{name}/pause").json()["paused"] is True
        assert gateway_client.post(f"/api/ops/services/{name}/resume").json() == {
            "name": name,
            "paused": False,
        }
    resp = gateway_client.post("/api/ops/services/indicators/pause")
    assert resp.status_code == 404 and "pausable: streamer" in resp.json()["error"]
    assert gateway_client.post("/api/ops/services/" + "x" * 100 + "/pause").status_code == 422


def test_universe_crud_and_bad_input(gateway_client: TestClient) -> None:
    assert gateway_client.get("/api/ops/universe").json() == {
        "equities": ["AAPL", "SPY"],  # seeded from the settings
        "option_underlyings": ["SPY"],
    }
    resp = gateway_client.post("/api/ops/universe", json={"kind": "equity", "symbol": "msft"})
    assert resp.status_code == 200 and resp.json()["equities"] == ["AAPL", "MSFT", "SPY"]
    resp = gateway_client.post("/api/ops/universe", json={"kind": "option", "symbol": "$spx"})
    assert resp.json()["option_underlyings"] == ["$SPX", "SPY"]
    for bad in (
        {"kind": "equity", "symbol": "NOT VALID"},
        {"kind": "equity", "symbol": "$SPX"},
        {"kind": "future", "symbol": "ES"},
        {"kind": "equity", "symbol": 123},
        {"kind": "equity"},
        {"kind": "equity", "symbol": "IBM", "extra": 1},
    ):
        resp = gateway_client.post("/api/ops/universe", json=bad)
        assert resp.status_code == 422, (bad, resp.text)
    resp = gateway_client.post("/api/ops/universe", json={"kind": "equity", "symbol": "A B"})
    assert "invalid equity ticker" in resp.json()["error"]

    resp = gateway_client.delete("/api/ops/universe/equity/NVDA")
    assert resp.status_code == 404 and "NVDA is not in the equity universe" in resp.json()["error"]
    assert gateway_client.delete("/api/ops/universe/equity/BAD%20SYM").status_code == 422
    assert gateway_client.delete("/api/ops/universe/stock/AAPL").status_code == 422
    resp = gateway_client.delete("/api/ops/universe/equity/aapl")
    assert resp.status_code == 200 and resp.json()["equities"] == ["MSFT", "SPY"]
    assert gateway_client.get("/api/ops/universe").json()["equities"] == ["MSFT", "SPY"]


def test_kill_switch_routes(
    gateway_settings: Callable[..., Settings], make_gateway_client: Factory
) -> None:
    clock = ManualClock(MARKET_OPEN_AT)
    with make_gateway_client(gateway_settings(), clock=clock) as client:
        assert client.get("/api/ops/kill-switch").json()["engaged"] is False
        resp = client.post("/api/ops/kill-switch", json={"engaged": True, "reason": "halt"})
        assert resp.json() == {
            "engaged": True,
            "reason": "halt",
            "changed_at": MARKET_OPEN_AT.astimezone(UTC).isoformat(),
        }
        assert client.get("/api/ops/kill-switch").json()["reason"] == "halt"
        for bad in ({"engaged": "yes"}, {"engaged": 1}, {}, {"engaged": True, "reason": "x" * 501}):
            assert client.post("/api/ops/kill-switch", json=bad).status_code == 422, bad
        clock.advance(10)
        resp = client.post("/api/ops/kill-switch", json={"engaged": False})
        assert resp.json()["engaged"] is False and resp.json()["reason"] is None


def test_openapi_describes_the_ops_routes(gateway_client: TestClient) -> None:
    doc = gateway_client.get("/openapi.json").json()
    paths = doc["paths"]
    add = paths["/api/ops/universe"]["post"]
    assert {"200", "409", "422"} <= set(add["responses"])
    assert add["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "UniverseIn"
    )
    remove = paths["/api/ops/universe/{kind}/{symbol}"]["delete"]
    assert {"200", "404", "422"} <= set(remove["responses"])
    assert "404" in paths["/api/ops/services/{name}/pause"]["post"]["responses"]
    assert {"200", "422", "502"} <= set(paths["/api/ops/auth/complete"]["post"]["responses"])
    ok = paths["/api/status"]["get"]["responses"]["200"]["content"]["application/json"]
    assert ok["schema"]["$ref"].endswith("StatusOut")
    assert "KillSwitchIn" in doc["components"]["schemas"]
