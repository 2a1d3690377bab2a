"""The real schwab-py StreamClient against a running market-sim."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from streamdesk.config import CommonSettings, load_settings
from streamdesk.schwab import ensure_paper_token, make_client, make_stream_client

pytestmark = pytest.mark.integration


def _settings(market_sim: Any, tmp_path: Path) -> CommonSettings:
    settings = load_settings(CommonSettings, **market_sim.settings_overrides(tmp_path))
    ensure_paper_token(settings)
    return settings


async def _collect(stream: Any, until: Any, timeout: float = 10.0) -> None:
    async def loop() -> None:
        while not until():
            await stream.handle_message()

    await asyncio.wait_for(loop(), timeout)


async def test_level_one_equities_relabelled(market_sim: Any, tmp_path: Path) -> None:
    client = make_client(_settings(market_sim, tmp_path), asyncio=True)
    stream = make_stream_client(client)
    got: list[dict[str, Any]] = []
    stream.add_level_one_equity_handler(got.append)
    try:
        await stream.login()
        await stream.level_one_equity_subs(["AAPL", "MSFT"])
        await _collect(stream, lambda: sum(len(m["content"]) for m in got) >= 20)
    finally:
        await stream.logout()
        await asyncio.wait_for(stream._socket.close(), 3)
        await client.close_async_session()
    first = {c["key"]: c for c in got[0]["content"]}
    assert set(first) == {"AAPL", "MSFT"}
    snap = first["AAPL"]
    assert 0 < snap["BID_PRICE"] < snap["ASK_PRICE"]
    assert snap["key"] == "AAPL" and snap["DESCRIPTION"]
    trades = [c for m in got[1:] for c in m["content"] if "LAST_SIZE" in c]
    assert trades, "no trades streamed"
    for t in trades:
        assert t["LAST_PRICE"] > 0 and t["LAST_SIZE"] > 0 and t["TRADE_TIME_MILLIS"] > 0
    # Deltas carry only changed fields: never the static description.
    assert all("DESCRIPTION" not in c for m in got[1:] for c in m["content"])
    vols = [
        c["TOTAL_VOLUME"]
        for m in got
        for c in m["content"]
        if c["key"] == "AAPL" and "TOTAL_VOLUME" in c
    ]
    assert vols == sorted(vols)
