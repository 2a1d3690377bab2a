"""The conflating queue: FIFO below the bound, newest-per-symbol above it, order kept."""

from __future__ import annotations

import asyncio

import pytest

from streamdesk_streamer.tickqueue import ConflatingQueue

pytestmark = pytest.mark.unit


def rows(sym: str, start: int, n: int) -> list[tuple[object, ...]]:
    return [(sym, start + i) for i in range(n)]


def test_fifo_below_bound() -> None:
    q = ConflatingQueue(10)
    q.put_many(rows("A", 0, 3))
    q.put_many(rows("B", 0, 2))
    assert len(q) == 5
    assert q.drain() == [("A", 0), ("A", 1), ("A", 2), ("B", 0), ("B", 1)]
    assert q.conflated == 0 and len(q) == 0


def test_full_queue_keeps_newest_per_symbol_and_counts() -> None:
    q = ConflatingQueue(4)
    q.put_many(rows("A", 0, 3))  # 3 in FIFO
    q.put_many([("B", 0), ("A", 3), ("B", 1), ("A", 4), ("C", 0), ("A", 5)])
    # B0 fills the FIFO; then A3,B1,A4,C0,A5 conflate to newest of each: B1, C0, A5.
    assert q.conflated == 2  # A3 and A4 replaced
    out = q.drain()
    assert out == [("A", 0), ("A", 1), ("A", 2), ("B", 0), ("B", 1), ("C", 0), ("A", 5)]
    # Everything accepted is either delivered or counted as conflated.
    assert q.accepted == len(out) + q.conflated


def test_order_per_symbol_survives_partial_drains() -> None:
    q = ConflatingQueue(5)
    delivered: list[tuple[object, ...]] = []
    seq = {"A": 0, "B": 0, "C": 0}
    for burst in range(50):
        batch = []
        for sym in "ABCABCAAB"[burst % 3 :]:
            batch.append((sym, seq[sym]))
            seq[sym] += 1
        q.put_many(batch)
        delivered.extend(q.drain(limit=3))
    delivered.extend(q.drain())
    for sym in "ABC":
        got = [r[1] for r in delivered if r[0] == sym]
        assert got == sorted(got)
        assert got[-1] == seq[sym] - 1  # the newest tick always arrives
    assert q.accepted == len(delivered) + q.conflated
    assert q.high_water <= 5 + 3


async def test_wait_wakes_on_put_and_times_out() -> None:
    q = ConflatingQueue(3)
    assert await q.wait(0.01) is False

    async def later() -> None:
        await asyncio.sleep(0.01)
        q.put_many([("A", 1)])

    task = asyncio.create_task(later())
    assert await q.wait(1.0) is True
    await task


def test_bound_must_be_positive() -> None:
    with pytest.raises(ValueError):
        ConflatingQueue(0)
