"""Subscriptions against a recording stand-in for the stream: what is sent, what is forgotten.

The requests themselves (and schwab-py's handling of them) are exercised against market-sim in
test_streamer_control.py and test_streamer_sim.py; this checks the bookkeeping around them.
"""

from __future__ import annotations

from typing import Any

import pytest

from streamdesk.config import load_settings
from streamdesk.control import UniverseSpec
from streamdesk_streamer.config import Settings
from streamdesk_streamer.decode import Decoder
from streamdesk_streamer.subscriptions import SUBSCRIBE_CHUNK, Subscriptions
from streamdesk_streamer.universe import Chain

pytestmark = pytest.mark.unit

T0 = 1_764_000_000_000
CALL = "SPY   251219C00600000"
PUT = "SPY   251219P00600000"


class Recorder:
    """Records the subscription requests made on it, as (method, symbols)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[str]]] = []

    def __getattr__(self, name: str) -> Any:
        async def request(symbols: list[str], **_: Any) -> None:
            self.calls.append((name, list(symbols)))

        return request


def make(tickers: str, **kw: Any) -> tuple[Subscriptions, Decoder, list[int]]:
    settings = load_settings(Settings, tickers=tickers, option_underlyings="", **kw)
    changes: list[int] = []
    holder: list[Subscriptions] = []
    decoder = Decoder(known_symbols=lambda sym: holder[0].is_subscribed(sym))
    subs = Subscriptions(settings, decoder, lambda: changes.append(1))
    holder.append(subs)
    return subs, decoder, changes


def equity_update(decoder: Decoder, symbol: str) -> None:
    item = {"key": symbol, "1": 1.0, "2": 1.1, "3": 1.05, "8": 10, "34": T0}
    decoder.equities([item], [])


async def test_subscribe_chunks_equities_subs_then_add() -> None:
    tickers = [f"T{i:03d}" for i in range(SUBSCRIBE_CHUNK + 5)]
    subs, _, _ = make(",".join(tickers))
    stream: Any = Recorder()
    await subs.subscribe(stream)
    assert stream.calls == [
        ("level_one_equity_subs", tickers[:SUBSCRIBE_CHUNK]),
        ("level_one_equity_add", tickers[SUBSCRIBE_CHUNK:]),
    ]
    assert subs.is_subscribed("T000") and not subs.is_subscribed("ZZZ")


async def test_apply_adds_and_removes_on_the_open_stream_and_forgets_state() -> None:
    subs, decoder, changes = make("AAPL,MSFT")
    equity_update(decoder, "AAPL")
    assert decoder.has_state("AAPL")
    stream: Any = Recorder()
    await subs.apply(UniverseSpec(("MSFT", "NVDA"), ()), object(), stream)
    assert stream.calls == [
        ("level_one_equity_add", ["NVDA"]),
        ("level_one_equity_unsubs", ["AAPL"]),
    ]
    assert subs.tickers == ["MSFT", "NVDA"] and not subs.is_subscribed("AAPL")
    assert not decoder.has_state("AAPL")  # a re-added AAPL starts from a fresh snapshot
    assert subs.universe_changes == 1 and changes == [1]
    await subs.apply(UniverseSpec(("MSFT", "NVDA"), ()), object(), stream)
    assert subs.universe_changes == 1 and len(stream.calls) == 2  # nothing changed: nothing sent


async def test_apply_to_an_empty_universe_subscribes_with_subs() -> None:
    subs, _, _ = make("")
    stream: Any = Recorder()
    await subs.apply(UniverseSpec(("SPY",), ()), object(), stream)
    assert stream.calls == [("level_one_equity_subs", ["SPY"])]


async def test_sync_options_follows_the_universe() -> None:
    subs, _, changes = make("SPY")
    stream: Any = Recorder()
    subs.universe.chains["SPY"] = Chain("SPY", [CALL], [600.0], ["2025-12-19"])
    assert await subs.sync_options(stream) == ([CALL], [])
    subs.universe.chains["SPY"] = Chain("SPY", [PUT], [600.0], ["2025-12-19"])
    assert await subs.sync_options(stream) == ([PUT], [CALL])
    assert stream.calls == [
        ("level_one_option_subs", [CALL]),  # none subscribed yet: SUBS
        ("level_one_option_add", [PUT]),
        ("level_one_option_unsubs", [CALL]),
    ]
    assert subs.options == {PUT} and subs.all_symbols() == ["SPY", PUT] and len(changes) == 2


def test_check_silent_counts_symbols_that_sent_nothing() -> None:
    subs, decoder, _ = make("AAPL,MSFT")
    equity_update(decoder, "AAPL")
    subs.check_silent(30.0)
    assert subs.silent_symbols == 1
