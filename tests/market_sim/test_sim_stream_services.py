"""Streamer services and protocol rules, driven by the real schwab-py StreamClient."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
import websockets
from schwab.orders.equities import equity_buy_market
from schwab.streaming import UnexpectedResponseCode

from streamdesk.config import CommonSettings, load_settings
from streamdesk.schwab import ensure_paper_token, make_client, make_stream_client

pytestmark = pytest.mark.integration


def _client(sim: Any, tmp_path: Path, name: str = "t") -> Any:
    d = tmp_path / name
    d.mkdir(exist_ok=True)
    settings = load_settings(CommonSettings, **sim.settings_overrides(d))
    ensure_paper_token(settings)
    return make_client(settings, asyncio=True)


async def _finish(stream: Any, client: Any) -> None:
    """Log out (the server closes the socket) so the loop does not wait for a close."""
    with contextlib.suppress(websockets.exceptions.ConnectionClosed, ValueError):
        await asyncio.wait_for(stream.logout(), 5)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stream._socket.close(), 3)
    await client.close_async_session()


async def _pump(stream: Any, until: Any, timeout: float = 10.0) -> None:
    async def loop() -> None:
        while not until():
            await stream.handle_message()

    await asyncio.wait_for(loop(), timeout)


async def test_level_one_options_greeks(market_sim: Any, tmp_path: Path) -> None:
    client = _client(market_sim, tmp_path)
    chain = (await client.get_option_chain("QQQ", strike_count=2)).json()
    exp = sorted(chain["callExpDateMap"])[0]
    symbols = [c[0]["symbol"] for c in chain["callExpDateMap"][exp].values()]
    symbols += [c[0]["symbol"] for c in chain["putExpDateMap"][exp].values()]
    stream = make_stream_client(client)
    got: list[dict[str, Any]] = []
    stream.add_level_one_option_handler(got.append)
    await stream.login()
    await stream.level_one_option_subs(symbols)
    await _pump(stream, lambda: len(got) >= 3)
    await _finish(stream, client)
    snap = {c["key"]: c for c in got[0]["content"]}
    assert set(snap) == set(symbols)
    for sym, c in snap.items():
        assert c["UNDERLYING"] == "QQQ"
        assert c["STRIKE_TYPE"] == int(sym[-8:]) / 1000  # field 20: the strike price
        if c["CONTRACT_TYPE"] == "C":
            assert 0 < c["DELTA"] < 1
        else:
            assert -1 < c["DELTA"] < 0
        assert c["GAMMA"] > 0 and c["VEGA"] > 0
        assert 0 <= c["BID_PRICE"] <= c["ASK_PRICE"]
        assert sym.startswith("QQQ   ")
    assert any(len(m["content"]) for m in got[1:])


async def test_chart_equity_bars(market_sim_factory: Any, tmp_path: Path) -> None:
    sim = market_sim_factory(seed=5, chart_interval=0.3, tick_interval=0.02)
    client = _client(sim, tmp_path)
    stream = make_stream_client(client)
    bars: list[dict[str, Any]] = []
    stream.add_chart_equity_handler(lambda m: bars.extend(m["content"]))
    await stream.login()
    await stream.chart_equity_subs(["AAPL"])
    await _pump(stream, lambda: len(bars) >= 2)
    await _finish(stream, client)
    for b in bars:
        assert b["key"] == "AAPL"
        assert b["LOW_PRICE"] <= min(b["OPEN_PRICE"], b["CLOSE_PRICE"])
        assert b["HIGH_PRICE"] >= max(b["OPEN_PRICE"], b["CLOSE_PRICE"])
        assert b["VOLUME"] > 0
    assert bars[1]["CHART_TIME_MILLIS"] > bars[0]["CHART_TIME_MILLIS"]
    assert bars[1]["SEQUENCE"] == bars[0]["SEQUENCE"] + 1


async def test_account_activity_on_fill(market_sim: Any, tmp_path: Path) -> None:
    client = _client(market_sim, tmp_path)
    account_hash = (await client.get_account_numbers()).json()[0]["hashValue"]
    stream = make_stream_client(client)
    events: list[dict[str, Any]] = []
    stream.add_account_activity_handler(lambda m: events.extend(m["content"]))
    await stream.login()
    await stream.account_activity_sub()
    r = await client.place_order(account_hash, equity_buy_market("SPY", 1))
    assert r.status_code == 201
    await _pump(stream, lambda: any(e["MESSAGE_TYPE"] == "OrderFillCompleted" for e in events))
    await _finish(stream, client)
    types = [e["MESSAGE_TYPE"] for e in events]
    assert types[0] == "OrderCreated" and "OrderAccepted" in types
    fill = next(e for e in events if e["MESSAGE_TYPE"] == "OrderFillCompleted")
    data = json.loads(fill["MESSAGE_DATA"])
    assert data["Symbol"] == "SPY" and data["ExecutionQuantity"] == 1
    assert fill["ACCOUNT"] == "12345678"


async def test_same_seed_same_ticks(
    market_sim: Any, market_sim_module: Any, tmp_path: Path
) -> None:
    async def record(sim: Any, name: str) -> list[dict[str, Any]]:
        client = _client(sim, tmp_path, name)
        stream = make_stream_client(client)
        got: list[dict[str, Any]] = []
        stream.add_level_one_equity_handler(lambda m: got.extend(m["content"]))
        await stream.login()
        await stream.level_one_equity_subs(["DETERM"])  # first use: path starts at step 0
        await _pump(stream, lambda: len(got) >= 25)
        await _finish(stream, client)
        volatile = {
            "QUOTE_TIME_MILLIS",
            "TRADE_TIME_MILLIS",
            "REGULAR_MARKET_TRADE_MILLIS",
            "BID_TIME_MILLIS",
            "ASK_TIME_MILLIS",
        }
        return [{k: v for k, v in c.items() if k not in volatile} for c in got[:25]]

    # Two independent simulators with the same seed (both fixtures use seed 1).
    a = await record(market_sim, "a")
    b = await record(market_sim_module, "b")
    assert a == b
    assert any("LAST_PRICE" in entry for entry in a)


async def test_second_login_closes_the_first(market_sim: Any, tmp_path: Path) -> None:
    c1 = _client(market_sim, tmp_path, "one")
    s1 = make_stream_client(c1)
    await s1.login()
    await s1.level_one_equity_subs(["AAPL"])
    c2 = _client(market_sim, tmp_path, "two")
    s2 = make_stream_client(c2)
    await s2.login()
    with pytest.raises(websockets.exceptions.ConnectionClosed):
        await _pump(s1, lambda: False, timeout=5)
    await s2.level_one_equity_subs(["MSFT"])
    got: list[Any] = []
    s2.add_level_one_equity_handler(got.append)
    await _pump(s2, lambda: bool(got))
    await _finish(s1, c1)
    await _finish(s2, c2)


async def test_login_with_a_bad_token_is_denied(market_sim: Any, tmp_path: Path) -> None:
    client = _client(market_sim, tmp_path)
    client.token_metadata.token["access_token"] = "forged"
    stream = make_stream_client(client)
    with pytest.raises(UnexpectedResponseCode) as err:
        await stream.login()
    assert err.value.response["response"][0]["content"]["code"] == 3
    await stream._socket.close()
    await client.close_async_session()


async def test_protocol_errors_raw(market_sim_factory: Any, tmp_path: Path) -> None:
    sim = market_sim_factory(max_symbols=3)
    client = _client(sim, tmp_path)
    token = client.token_metadata.token["access_token"]
    await client.close_async_session()

    async def ask(ws: Any, req: dict[str, Any]) -> dict[str, Any]:
        await ws.send(json.dumps({"requests": [req]}))
        while True:
            msg = json.loads(await asyncio.wait_for(ws.recv(), 5))
            if "response" in msg:
                return msg["response"][0]  # type: ignore[no-any-return]

    async with websockets.connect(sim.ws_url) as ws:
        sub = {
            "service": "LEVELONE_EQUITIES",
            "command": "SUBS",
            "requestid": "1",
            "parameters": {"keys": "AAPL", "fields": "0,1,2"},
        }
        assert (await ask(ws, sub))["content"]["code"] == 3  # not logged in
        login = {
            "service": "ADMIN",
            "command": "LOGIN",
            "requestid": "2",
            "parameters": {"Authorization": token},
        }
        assert (await ask(ws, login))["content"]["code"] == 0
        bad = {
            "service": "LEVELONE_EQUITIES",
            "command": "FROB",
            "requestid": "3",
            "parameters": {"keys": "AAPL"},
        }
        assert (await ask(ws, bad))["content"]["code"] == 21
        many = dict(sub, requestid="4", parameters={"keys": "A,B,C,D", "fields": "0,1"})
        assert (await ask(ws, many))["content"]["code"] == 19
        unknown = dict(sub, service="NEWS_HEADLINE", requestid="5")
        assert (await ask(ws, unknown))["content"]["code"] == 11
        ok = dict(sub, requestid="6", parameters={"keys": "AAPL,MSFT", "fields": "0,1,2"})
        assert (await ask(ws, ok))["content"]["code"] == 0
        # Only the requested fields are sent.
        while True:
            msg = json.loads(await asyncio.wait_for(ws.recv(), 5))
            if "data" in msg:
                for entry in msg["data"][0]["content"]:
                    numeric = {k for k in entry if k.isdigit()}
                    assert numeric <= {"1", "2"}
                break
        # Heartbeats arrive on an idle subscription.
        view = dict(sub, command="UNSUBS", requestid="7", parameters={"keys": "AAPL,MSFT"})
        assert (await ask(ws, view))["content"]["code"] == 0
