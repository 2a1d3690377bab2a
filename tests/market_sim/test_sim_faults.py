"""Every fault control of market-sim, observed through the real schwab-py clients."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

import pytest
import websockets
from schwab.orders.equities import equity_buy_market
from schwab.utils import Utils

from streamdesk.config import CommonSettings, load_settings
from streamdesk.schwab import (
    TokenExpiredError,
    TokenStore,
    ensure_paper_token,
    force_token_refresh,
    make_client,
    make_stream_client,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def sim(market_sim_module: Any) -> Any:
    market_sim_module.clear_faults()
    market_sim_module.reset_broker()
    yield market_sim_module
    market_sim_module.clear_faults()


def _settings(sim: Any, tmp_path: Path) -> CommonSettings:
    settings = load_settings(CommonSettings, **sim.settings_overrides(tmp_path))
    ensure_paper_token(settings)
    return settings


@pytest.fixture
def client(sim: Any, tmp_path: Path) -> Any:
    c = make_client(_settings(sim, tmp_path), timeout=3.0)
    yield c
    c.session.close()


def _hash(client: Any) -> str:
    return str(client.get_account_numbers().json()[0]["hashValue"])


def _orders(client: Any, account_hash: str) -> list[dict[str, Any]]:
    return client.get_orders_for_account(account_hash).json()  # type: ignore[no-any-return]


def test_500_after_accepting_an_order(client: Any, sim: Any) -> None:
    h = _hash(client)
    sim.order_fault("500_after_accept")
    r = client.place_order(h, equity_buy_market("AAPL", 1))
    assert r.status_code == 500
    (order,) = _orders(client, h)  # ...but the order exists and proceeds
    assert order["orderLegCollection"][0]["instrument"]["symbol"] == "AAPL"
    # The fault was for one order only.
    r = client.place_order(h, equity_buy_market("AAPL", 1))
    assert r.status_code == 201 and Utils(client, h).extract_order_id(r)


def test_missing_location_header(client: Any, sim: Any) -> None:
    h = _hash(client)
    sim.order_fault("no_location")
    r = client.place_order(h, equity_buy_market("AAPL", 1))
    assert r.status_code == 201 and "Location" not in r.headers
    assert Utils(client, h).extract_order_id(r) is None
    assert len(_orders(client, h)) == 1


def test_connection_dropped_after_accepting(client: Any, sim: Any) -> None:
    h = _hash(client)
    sim.order_fault("drop_after_accept")
    with pytest.raises(Exception) as err:
        client.place_order(h, equity_buy_market("MSFT", 2))
    assert "Protocol" in type(err.value).__name__ or "Read" in type(err.value).__name__
    (order,) = _orders(client, h)
    assert order["quantity"] == 2


def test_order_response_hangs(client: Any, sim: Any) -> None:
    h = _hash(client)
    sim.order_fault("hang_after_accept")
    t0 = time.monotonic()
    with pytest.raises(Exception) as err:
        client.place_order(h, equity_buy_market("SPY", 1))
    assert "Timeout" in type(err.value).__name__
    assert time.monotonic() - t0 >= 2.5
    sim.clear_faults()  # releases the hung request
    assert len(_orders(client, h)) == 1


def test_http_delay_and_hang(client: Any, sim: Any) -> None:
    sim.http_fault(delay=0.6, path_prefix="/marketdata", count=1)
    t0 = time.monotonic()
    assert client.get_quote("AAPL").status_code == 200
    assert time.monotonic() - t0 >= 0.6
    t0 = time.monotonic()
    client.get_quote("AAPL")
    assert time.monotonic() - t0 < 0.5  # count=1: consumed
    sim.http_fault(hang=True, path_prefix="/trader")
    with pytest.raises(Exception) as err:
        client.get_account_numbers()
    assert "Timeout" in type(err.value).__name__
    assert client.get_quote("AAPL").status_code == 200  # other paths unaffected
    sim.clear_faults()
    assert client.get_account_numbers().status_code == 200


def test_expired_access_token_then_refresh(client: Any, sim: Any, tmp_path: Path) -> None:
    before = TokenStore(tmp_path / "schwab-token.json").read()
    assert client.get_account_numbers().status_code == 200
    sim.expire_tokens(access=True)
    assert client.get_account_numbers().status_code == 401
    force_token_refresh(client)
    assert client.get_account_numbers().status_code == 200
    after = TokenStore(tmp_path / "schwab-token.json").read()
    assert before and after
    assert after["token"]["access_token"] != before["token"]["access_token"]
    assert after["creation_timestamp"] == before["creation_timestamp"]
    assert (tmp_path / "schwab-token.json").stat().st_mode & 0o777 == 0o600


def test_expired_refresh_token_raises_token_expired(client: Any, sim: Any) -> None:
    sim.expire_tokens(access=True, refresh=True)
    force_token_refresh(client)
    with pytest.raises(TokenExpiredError):
        client.get_account_numbers()


def test_short_token_lifetimes_refresh_transparently(
    market_sim_factory: Any, tmp_path: Path
) -> None:
    sim = market_sim_factory(access_token_ttl=1, refresh_token_ttl=3)
    client = make_client(_settings(sim, tmp_path))
    for _ in range(3):  # each call refreshes (ttl < schwab-py's 300 s leeway)
        assert client.get_account_numbers().status_code == 200
    time.sleep(3.2)
    with pytest.raises(TokenExpiredError):
        client.get_account_numbers()
    client.session.close()


async def _stream(sim: Any, tmp_path: Path) -> tuple[Any, Any, list[Any]]:
    client = make_client(_settings(sim, tmp_path), asyncio=True)
    stream = make_stream_client(client)
    got: list[Any] = []
    stream.add_level_one_equity_handler(got.append)
    await stream.login()
    await stream.level_one_equity_subs(["AAPL"])
    return client, stream, got


async def _close(stream: Any, client: Any) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(stream._socket.close(), 3)
    await client.close_async_session()


async def test_drop_websocket(sim: Any, tmp_path: Path) -> None:
    client, stream, _ = await _stream(sim, tmp_path)
    await stream.handle_message()
    assert sim.drop_websockets() == 1
    with pytest.raises(websockets.exceptions.ConnectionClosed):
        for _ in range(1000):
            await asyncio.wait_for(stream.handle_message(), 5)
    await _close(stream, client)


async def test_stop_sending_then_resume(sim: Any, tmp_path: Path) -> None:
    client, stream, got = await _stream(sim, tmp_path)
    await asyncio.wait_for(stream.handle_message(), 5)
    sim.pause_stream()
    # Drain what was already in flight, then silence.
    with contextlib.suppress(TimeoutError):
        while True:
            await asyncio.wait_for(stream.handle_message(), 0.5)
    n = len(got)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(stream.handle_message(), 1.0)
    assert len(got) == n
    sim.resume_stream()
    await asyncio.wait_for(stream.handle_message(), 5)
    assert len(got) > n
    await _close(stream, client)


async def test_sent_log_matches_what_the_client_received(sim: Any, tmp_path: Path) -> None:
    sim.admin_post("sent/reset")
    client, stream, got = await _stream(sim, tmp_path)
    while sum(len(m["content"]) for m in got) < 30:
        await asyncio.wait_for(stream.handle_message(), 5)
    await stream.level_one_equity_unsubs(["AAPL"])
    # Drain anything sent before the UNSUBS took effect.
    with contextlib.suppress(TimeoutError):
        while True:
            await asyncio.wait_for(stream.handle_message(), 0.3)
    received = [c for m in got for c in m["content"] if c["key"] == "AAPL"]
    sent = sim.sent("AAPL")
    assert sent["complete"] and sent["count"] == len(received)
    assert [u["seq"] for u in sent["updates"]] == list(range(1, len(received) + 1))
    for u, r in zip(sent["updates"], received, strict=True):
        if "3" in u["fields"]:
            assert r["LAST_PRICE"] == u["fields"]["3"]
    assert sent["trades"] == sum(1 for r in received if "LAST_SIZE" in r)
    await _close(stream, client)
