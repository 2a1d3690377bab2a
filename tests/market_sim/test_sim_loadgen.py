"""Load mode's vectorized book and pre-encoded frames (no processes)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from streamdesk.config import load_settings
from streamdesk_sim.config import Settings
from streamdesk_sim.connection import Connection
from streamdesk_sim.loadgen import LOAD_FIELDS, LoadBook, load_fields
from streamdesk_sim.market import Market
from streamdesk_sim.protocol import EQUITIES
from streamdesk_sim.sim import Sim

pytestmark = pytest.mark.unit

NOW = 1_764_600_000_123
SYMBOLS = [f"LD{i:05d}" for i in range(50)]


def _book(seed: int = 7) -> tuple[Market, LoadBook]:
    market = Market(seed, 0.35)
    book = LoadBook(market, SYMBOLS, seed, 0.35)
    market.on_read = book.sync
    return market, book


def _expected(book: LoadBook, i: int, fields: tuple[int, ...]) -> dict[str, Any]:
    sim = book.sims[i]
    out: dict[str, Any] = {
        "key": sim.symbol,
        "delayed": False,
        "assetMainType": "EQUITY",
        "assetSubType": "COE",
        "cusip": sim.cusip,
    }
    values = {
        1: float(book.bid[i]),
        2: float(book.ask[i]),
        3: float(book.last[i]),
        4: int(book.bid_size[i]),
        5: int(book.ask_size[i]),
        8: int(book.volume[i]),
        9: int(book.last_size[i]),
        33: float(book.mark[i]),
        34: NOW,
        35: NOW,
    }
    for f in fields:
        out[str(f)] = values[f]
    return out


@pytest.mark.parametrize(
    "wanted",
    [None, frozenset({0, 1, 2, 3, 8, 9, 34, 35}), frozenset({35, 8}), frozenset({1, 10, 33})],
)
def test_encoded_items_are_exactly_the_json_of_the_update(wanted: frozenset[int] | None) -> None:
    _, book = _book()
    idx = book.step(45, 20, NOW, 1e-7)  # wraps: 45..49, 0..14
    assert idx.tolist() == [*range(45, 50), *range(0, 15)]
    fields = load_fields(wanted)
    sel = idx[::3]
    items = json.loads(b"[" + book.encode(sel, fields, NOW) + b"]")
    assert items == [_expected(book, i, fields) for i in sel.tolist()]
    # Same text a dict-based encoder would write (types included: sizes are JSON integers).
    assert all(type(item["8"]) is int for item in items if "8" in item)


def test_empty_selection_or_no_fields_encode_nothing() -> None:
    _, book = _book()
    idx = book.step(0, 5, NOW, 1e-7)
    assert book.encode(idx[:0], LOAD_FIELDS, NOW) == b""
    assert load_fields(frozenset({0, 10, 52})) == ()
    assert book.encode(idx, (), NOW) == b""


def test_steps_trade_every_symbol_once_and_volume_accumulates() -> None:
    _, book = _book()
    before = book.volume.copy()
    idx = book.step(10, 500, NOW, 1e-7)  # capped at one update per symbol
    assert sorted(idx.tolist()) == list(range(50))
    assert (book.volume - before >= 100).all()
    assert (book.ask > book.bid).all()
    assert np.isin(book.last, np.concatenate([book.bid, book.ask])).all()
    assert (book.time_ms == NOW).all() and (book.trades == 1).all()


def test_book_is_deterministic_per_seed() -> None:
    def run(seed: int) -> list[float]:
        _, book = _book(seed)
        for k in range(20):
            book.step(k * 7, 13, NOW + k, 1e-6)
        return book.last.tolist()

    assert run(1) == run(1)
    assert run(1) != run(2)


def test_reads_through_the_market_see_the_book() -> None:
    market, book = _book()
    book.step(0, 50, NOW, 1e-7)
    eq = market.equity("LD00003")
    assert eq.values[3] == book.last[3] and eq.values[8] == book.volume[3]
    assert eq.values[34] == eq.values[35] == NOW and eq.trades == 1
    assert eq.mid == book.mid[3]
    other = market.equity("AAPL")  # not a load symbol: untouched
    assert other.values[8] == 0


def _sim(**overrides: Any) -> Sim:
    return Sim(load_settings(Settings, load_symbols=len(SYMBOLS), **overrides))


def _subscribe(sim: Sim, conn: Connection, command: str, keys: list[str], fields: str) -> None:
    req = {"keys": ",".join(keys), "fields": fields}
    sim.streamer.handle(
        conn, {"service": EQUITIES, "command": command, "requestid": 1, "parameters": req}
    )


def _frames(conn: Connection) -> list[tuple[dict[str, Any], Any]]:
    out = []
    while not conn.queue.empty():
        item = conn.queue.get_nowait()
        assert item is not None
        out.append((json.loads(item[0]), item[1]))
    return out


def test_load_frames_follow_each_sessions_subscriptions() -> None:
    sim = _sim()
    conn = Connection(sim.streamer, ws=None)  # type: ignore[arg-type]
    sim.streamer.connections[conn.id] = conn
    conn.logged_in = True
    _subscribe(sim, conn, "SUBS", SYMBOLS[:10], "0,1,2,3,8")
    _subscribe(sim, conn, "ADD", [*SYMBOLS[10:15], "AAPL"], "3,8,35")
    snapshots = _frames(conn)
    assert [len(f["response"]) for f, _ in snapshots if "response" in f] == [1, 1]
    for _frame, records in snapshots:  # as the sender does after each write
        for service, content in records:
            sim.sent.record(service, content, NOW)

    cursor = sim.ticker.load_step(30, 0)
    assert cursor == 30
    [(frame, records)] = _frames(conn)
    content = frame["data"][0]["content"]
    assert frame["data"][0]["service"] == EQUITIES
    assert [c["key"] for c in content] == SYMBOLS[:15]
    assert all(set(c) - {"key", "delayed", "assetMainType", "assetSubType", "cusip"}
               == {"1", "2", "3", "8"} for c in content[:10])  # fmt: skip
    assert all(set(c) >= {"3", "8", "35"} and "1" not in c for c in content[10:])
    assert sorted(records.tolist()) == list(range(15))
    assert sim.ticker.stats["load_updates"] == 30 and sim.ticker.stats["equity_updates"] == 15

    sim.sent.record_load(records)
    summary = sim.sent.summary(EQUITIES)[EQUITIES]
    assert summary["LD00000"] == {"count": 2, "trades": 1}  # snapshot + one trade
    assert "LD00020" not in summary
    one = sim.sent.entries(EQUITIES, "LD00000")
    assert one["count"] == 2 and one["updates"] == [] and one["complete"] is False
    assert sim.sent.entries(EQUITIES, "LD00000", since=2)["complete"] is True

    _subscribe(sim, conn, "UNSUBS", SYMBOLS[:12], "")
    _frames(conn)
    sim.ticker.load_step(50, cursor)
    [(frame, records)] = _frames(conn)
    assert [c["key"] for c in frame["data"][0]["content"]] == SYMBOLS[12:15]

    sim.sent.reset()
    assert sim.sent.summary() == {}


def test_paused_stream_sends_no_load_frames() -> None:
    sim = _sim()
    conn = Connection(sim.streamer, ws=None)  # type: ignore[arg-type]
    sim.streamer.connections[conn.id] = conn
    conn.logged_in = True
    _subscribe(sim, conn, "SUBS", SYMBOLS, "1,2,3")
    _frames(conn)
    sim.faults.ws_paused_until = float("inf")
    sim.ticker.load_step(50, 0)
    assert _frames(conn) == []
    assert sim.ticker.stats["load_updates"] == 50 and sim.ticker.stats["equity_updates"] == 0
