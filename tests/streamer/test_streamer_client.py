"""FastStreamClient.pump on scripted frames: malformed and unexpected input is counted, not fatal.

The frames are fed through a tiny in-memory object with schwab-py's socket interface
(``recv``); the protocol itself is exercised against market-sim in test_streamer_sim.py.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from streamdesk_streamer.client import FastStreamClient, StreamProtocolError, StreamTimeoutError
from streamdesk_streamer.decode import Decoder
from streamdesk_streamer.session import pump_frames

pytestmark = pytest.mark.unit

T0 = 1_764_000_000_000


class Frames:
    def __init__(self, frames: list[Any]) -> None:
        self.frames = list(frames)

    async def recv(self) -> Any:
        if not self.frames:
            await asyncio.sleep(3600)
        return self.frames.pop(0)


def eq_frame(*items: dict[str, Any]) -> str:
    return json.dumps(
        {"data": [{"service": "LEVELONE_EQUITIES", "timestamp": T0, "content": list(items)}]}
    )


def client(frames: list[Any]) -> tuple[FastStreamClient, list[tuple[Any, ...]]]:
    rows: list[tuple[Any, ...]] = []
    c = FastStreamClient(object(), Decoder(), rows.extend)
    c._socket = Frames(frames)
    return c, rows


GOOD = {"key": "AAPL", "1": 1.0, "2": 1.1, "3": 1.05, "8": 10, "9": 1, "34": T0}


async def test_malformed_and_unexpected_frames_are_counted() -> None:
    frames = [
        eq_frame(GOOD),
        "{not json",
        b"\xff\xfe",
        "[1, 2]",
        json.dumps({"what": "ever"}),
        json.dumps({"data": [{"service": "SCREENER_EQUITY", "content": []}]}),
        json.dumps({"data": "nope"}),
        json.dumps({"notify": [{"heartbeat": str(T0)}]}),
        json.dumps({"notify": [{"service": "ACCT_ACTIVITY", "content": {}}]}),
        json.dumps({"response": [{"service": "LEVELONE_EQUITIES", "content": {"code": 21}}]}),
        eq_frame({"key": "AAPL", "1": "x"}, {"key": "AAPL", "1": 1.01, "34": T0 + 1}),
    ]
    c, rows = client(frames)
    for _ in frames:
        await c.pump(1.0)
    assert [r[1] for r in rows] == [T0, T0 + 1]
    assert c.malformed_frames == 2
    assert c.decoder.counters.malformed == 3  # two frames + one item
    assert c.unexpected == 6
    assert c.heartbeats == 1


@pytest.mark.parametrize(
    "frame",
    [
        {"response": [{"service": "ADMIN", "command": "LOGIN", "content": {"code": 3}}]},
        {"notify": [{"service": "ADMIN", "content": {"code": 30, "msg": "another login"}}]},
    ],
)
async def test_fatal_admin_responses_end_the_session(frame: dict[str, Any]) -> None:
    c, _ = client([json.dumps(frame)])
    with pytest.raises(StreamProtocolError, match="code"):
        await c.pump(1.0)


async def test_silence_is_a_timeout() -> None:
    c, _ = client([])
    with pytest.raises(StreamTimeoutError):
        await c.pump(0.05)


async def test_deferred_messages_come_first_and_in_order() -> None:
    c, rows = client([eq_frame({**GOOD, "34": T0 + 5})])
    # What schwab-py read while awaiting a subscription response (it pops from the right).
    c._overflow_items.extendleft(
        [json.loads(eq_frame(GOOD)), json.loads(eq_frame({"key": "AAPL", "34": T0 + 1}))]
    )
    for _ in range(3):
        await c.pump(1.0)
    assert [r[1] for r in rows] == [T0, T0 + 1, T0 + 5]


async def test_a_backlog_of_frames_does_not_starve_the_publisher() -> None:
    """Buffered frames are received without suspending; the pump must still let others run."""
    frames = [eq_frame({**GOOD, "8": 10 + i, "34": T0 + i}) for i in range(200)]
    c, rows = client(frames)
    seen: list[int] = []

    async def other() -> None:  # stands in for the publisher's turn on the loop
        while True:
            seen.append(len(rows))
            await asyncio.sleep(0)

    watcher = asyncio.create_task(other())
    with pytest.raises(StreamTimeoutError):  # the backlog is done, then silence
        await pump_frames(c, 1.0)
    watcher.cancel()
    await asyncio.gather(watcher, return_exceptions=True)
    assert len(rows) == 200
    # The other task ran between frames, not only before the first and after the last.
    assert len({n for n in seen if 0 < n < 200}) >= 190


def _frames_mix() -> list[str]:
    """Partial updates, integer prices, a snapshot before any trade, an unknown symbol."""
    return [
        eq_frame({"key": "MSFT", "1": 400, "2": 400.1, "3": 399.9, "8": 0}),  # ts: the message's
        eq_frame(GOOD, {"key": "MSFT", "3": 400.05, "9": 100, "8": 100, "35": T0 + 2}),
        eq_frame(
            {"key": "AAPL", "2": 1.2},
            {"key": "ZZZZ", "1": 5.0, "2": 5.1, "3": 5.0, "8": 1, "34": T0},
            {"key": "AAPL", "delayed": False},
        ),
        eq_frame({"key": "AAPL", "8": 25.0, "9": 15, "3": 1.1, "35": T0 + 9}),
    ]


async def test_typed_fast_path_equals_the_per_item_path() -> None:
    known = {"AAPL", "MSFT"}.__contains__
    fast_rows: list[tuple[Any, ...]] = []
    fast = FastStreamClient(object(), Decoder(known_symbols=known), fast_rows.extend)
    fast._socket = Frames(_frames_mix())
    slow_rows: list[tuple[Any, ...]] = []
    slow = FastStreamClient(object(), Decoder(known_symbols=known), slow_rows.extend)
    # Messages schwab-py already parsed take the dict path, item by item.
    slow._overflow_items.extendleft(json.loads(f) for f in _frames_mix())
    for _ in range(4):
        await fast.pump(1.0)
        await slow.pump(1.0)
    assert fast_rows == slow_rows
    assert [r[:2] for r in fast_rows] == [
        ("MSFT", T0), ("AAPL", T0), ("MSFT", T0 + 2), ("AAPL", T0), ("AAPL", T0 + 9)
    ]  # fmt: skip
    assert fast_rows[-1][5:] == (25, 15)  # sizes as integers
    assert fast.decoder.counters == slow.decoder.counters
    assert fast.decoder.counters.unknown_symbol == 1 and fast.decoder.counters.unchanged == 1


async def test_well_formed_frames_skip_the_per_item_path() -> None:
    calls: list[int] = []

    class Spy(Decoder):
        def equities(self, content: Any, out: list[tuple[Any, ...]], msg_ts: Any = 0) -> None:
            calls.append(len(content))
            super().equities(content, out, msg_ts)

    rows: list[tuple[Any, ...]] = []
    c = FastStreamClient(object(), Spy(), rows.extend)
    c._socket = Frames([*_frames_mix(), eq_frame({"key": "AAPL", "1": True}, GOOD)])
    for _ in range(5):
        await c.pump(1.0)
    assert calls == [2]  # only the frame with a boolean price went item by item
    assert c.decoder.counters.malformed == 1 and rows[-1][:2] == ("AAPL", T0 + 9)
