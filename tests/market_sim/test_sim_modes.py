"""Load mode, session-clock modes and the paper/live login rules."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import websockets
from uvicorn.server import ServerState

from streamdesk.config import CommonSettings, load_settings
from streamdesk.schwab import (
    LiveLoginRequiredError,
    TokenMissingError,
    ensure_paper_token,
    make_client,
)
from streamdesk_sim.__main__ import ws_protocol
from streamdesk_sim.clock import NY, in_regular_session

pytestmark = pytest.mark.integration


def _token(sim: Any, tmp_path: Path) -> str:
    settings = load_settings(CommonSettings, **sim.settings_overrides(tmp_path))
    ensure_paper_token(settings)
    data = json.loads((tmp_path / "schwab-token.json").read_text())
    return str(data["token"]["access_token"])


async def test_load_mode_streams_the_configured_rate(
    market_sim_factory: Any, tmp_path: Path
) -> None:
    sim = market_sim_factory(load_symbols=200, load_rate=2000, tick_interval=5)
    token = _token(sim, tmp_path)
    symbols = [f"LD{i:05d}" for i in range(200)]
    async with websockets.connect(sim.ws_url, max_size=None) as ws:
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
                "parameters": {"keys": ",".join(symbols), "fields": "0,1,2,3,8,9,35"},
            },
        ]
        await ws.send(json.dumps({"requests": reqs}))
        seen: set[str] = set()
        n = 0
        start = end = 0.0
        last_volume: dict[str, int] = {}
        while not end or time.monotonic() < end:
            msg = json.loads(await asyncio.wait_for(ws.recv(), 5))
            if "data" not in msg:
                continue
            if not end:  # the snapshot
                start = time.monotonic()
                end = start + 2.0
                continue
            for entry in msg["data"][0]["content"]:
                n += 1
                seen.add(entry["key"])
                assert entry["9"] > 0 and entry["3"] > 0
                assert entry["8"] > last_volume.get(entry["key"], 0)
                last_volume[entry["key"]] = entry["8"]
        rate = n / (time.monotonic() - start)
    assert 1500 < rate < 2600, rate
    assert seen == set(symbols)  # round-robin over every load symbol
    r = httpx.post(sim.base_url + "/admin/load", json={"rate": 500})
    assert r.json() == {"symbols": 200, "rate": 500}


async def _first_frame(sim: Any, token: str) -> tuple[str | None, dict[str, Any]]:
    """The negotiated websocket extensions and the first response frame after a LOGIN."""
    async with websockets.connect(sim.ws_url, max_size=None) as ws:
        login = {"service": "ADMIN", "command": "LOGIN", "requestid": "0",
                 "parameters": {"Authorization": token}}  # fmt: skip
        await ws.send(json.dumps({"requests": [login]}))
        frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
        return ws.response.headers.get("Sec-WebSocket-Extensions"), frame


@pytest.mark.parametrize(
    ("settings", "deflate"),
    [({}, True), ({"ws_deflate_level": 1}, True), ({"ws_deflate": "false"}, False)],
)
async def test_websocket_compression_is_configurable(
    market_sim_factory: Any, tmp_path: Path, settings: dict[str, Any], deflate: bool
) -> None:
    sim = market_sim_factory(**settings)
    extensions, frame = await _first_frame(sim, _token(sim, tmp_path))
    assert frame["response"][0]["content"]["code"] == 0
    if deflate:  # what the websockets client (and so schwab-py) offers is accepted
        assert extensions is not None and extensions.startswith("permessage-deflate")
    else:
        assert extensions is None


async def test_ws_protocol_compresses_at_the_configured_level() -> None:
    config = uvicorn.Config(app=lambda *a: None, ws_per_message_deflate=True)
    proto = ws_protocol(1)(config=config, server_state=ServerState(), app_state={})
    [factory] = proto.conn.available_extensions
    assert factory.compress_settings == {"memLevel": 5, "level": 1}
    config = uvicorn.Config(app=lambda *a: None, ws_per_message_deflate=False)
    proto = ws_protocol(1)(config=config, server_state=ServerState(), app_state={})
    assert proto.conn.available_extensions == []


def test_accelerated_clock_runs_a_session(market_sim_factory: Any, tmp_path: Path) -> None:
    sim = market_sim_factory(
        clock="accelerated", clock_speed=600, clock_start="2025-03-14T15:59:30-04:00"
    )
    # 30 sim seconds before Friday's close is 50 ms of wall time at 600x. However fast start-up
    # was, every reading is either still Friday before the close or Monday's session: the clock
    # skips the closed weekend instead of running through it.
    friday_start = datetime(2025, 3, 14, 15, 59, 30, tzinfo=NY).timestamp() * 1000
    friday_close = datetime(2025, 3, 14, 16, 0, tzinfo=NY).timestamp() * 1000
    monday_open = datetime(2025, 3, 17, 9, 30, tzinfo=NY).timestamp() * 1000
    deadline = time.monotonic() + 10
    while True:
        s1 = sim.state()
        if s1["sim_time_ms"] >= monday_open:
            break
        assert friday_start <= s1["sim_time_ms"] <= friday_close, s1
        assert time.monotonic() < deadline, f"the clock never reached Monday's open: {s1}"
        time.sleep(0.01)
    t1 = time.monotonic()
    assert s1["sim_time_ms"] < monday_open + 3_600_000
    assert s1["market_open"] is True
    time.sleep(0.5)
    s2 = sim.state()
    wall = time.monotonic() - t1
    advanced = (s2["sim_time_ms"] - s1["sim_time_ms"]) / 1000
    assert 0.5 * 600 * 0.9 <= advanced <= wall * 600 * 1.1 + 60
    settings = load_settings(CommonSettings, **sim.settings_overrides(tmp_path))
    ensure_paper_token(settings)
    client = make_client(settings)
    equity = [client.MarketHours.Market.EQUITY]
    hours = client.get_market_hours(equity, date=date(2025, 3, 15)).json()
    assert hours["equity"]["EQ"]["isOpen"] is False  # a Saturday
    hours = client.get_market_hours(equity, date=date(2025, 3, 17)).json()
    regular = hours["equity"]["EQ"]["sessionHours"]["regularMarket"][0]
    assert regular["start"].startswith("2025-03-17T09:30:00")
    client.session.close()


def test_nyse_clock_follows_the_calendar(market_sim_factory: Any) -> None:
    sim = market_sim_factory(clock="nyse")
    state = sim.state()
    expected = in_regular_session(datetime.fromtimestamp(state["sim_time_ms"] / 1000, NY))
    assert state["market_open"] is expected


def test_paper_login_rules(market_sim: Any, tmp_path: Path) -> None:
    overrides = market_sim.settings_overrides(tmp_path)
    settings = load_settings(CommonSettings, **overrides)
    with pytest.raises(TokenMissingError):
        make_client(settings)
    assert ensure_paper_token(settings) is True
    assert ensure_paper_token(settings) is False  # usable token kept
    live = load_settings(
        CommonSettings,
        **{
            **overrides,
            "trading_mode": "live",
            "schwab_api_key": "real-key-123",
            "schwab_app_secret": "real-secret-456",
        },
    )
    with pytest.raises(LiveLoginRequiredError):
        ensure_paper_token(live)
