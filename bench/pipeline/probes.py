"""What the benchmark watches while the pipeline runs.

* heartbeats (``sd:hb:*``) and the consumer group's backlog per tick stream (``lag`` = entries
  not yet delivered, ``pending`` = delivered, not yet acknowledged = not yet committed);
* a WebSocket client of the gateway's ``/ws`` (the browser's feed), recording the receipt time
  of every committed message with its ``committed_at`` and row counts;
* after a window: the tick streams' entries (event times of every tick) and the commit log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import msgpack
import orjson
import redis.asyncio as aioredis
from websockets.asyncio.client import connect

from streamdesk.constants import HEARTBEAT_PATTERN, INDICATORS_GROUP, TICK_FIELD, tick_stream

from .stats import StreamTicks, id_key


async def heartbeats(r: aioredis.Redis, service: str) -> list[dict[str, Any]]:
    """Every live heartbeat of ``service``: counters plus ``_ts`` and ``_pid``."""
    out = []
    async for key in r.scan_iter(match=HEARTBEAT_PATTERN, count=200):
        raw = await r.get(key)
        if not raw:
            continue
        value = json.loads(raw)
        if value.get("service") == service:
            out.append(
                {
                    **value.get("counters", {}),
                    "_ts": value["ts"],
                    "_pid": value["pid"],
                    "_status": value.get("status"),
                }
            )
    return out


async def streamer_beat_after(
    r: aioredis.Redis, after: float, timeout: float = 10
) -> dict[str, Any]:
    """The first streamer heartbeat written after ``after`` (epoch s)."""
    deadline = time.monotonic() + timeout
    while True:
        beats = [b for b in await heartbeats(r, "streamer") if b["_ts"] > after]
        if beats:
            return beats[0]
        if time.monotonic() > deadline:
            raise RuntimeError("no streamer heartbeat")
        await asyncio.sleep(0.05)


async def backlog_entries(r: aioredis.Redis, partitions: int) -> int:
    """Entries not yet committed by the indicators group: lag + pending over the streams."""
    total = 0
    for p in range(partitions):
        stream = tick_stream(p)
        try:
            groups = await r.xinfo_groups(stream)
        except aioredis.ResponseError:
            continue
        for g in groups:
            name = g["name"].decode() if isinstance(g["name"], bytes) else g["name"]
            if name == INDICATORS_GROUP:
                total += int(g.get("pending") or 0) + int(g.get("lag") or 0)
    return total


async def stream_tail_ids(r: aioredis.Redis, partitions: int) -> dict[str, int]:
    """The newest entry key per tick stream (0 if empty)."""
    out = {}
    for p in range(partitions):
        last = await r.xrevrange(tick_stream(p), count=1)
        out[tick_stream(p)] = id_key(last[0][0]) if last else 0
    return out


@dataclass
class WsRecord:
    recv_ms: list[float] = field(default_factory=list)
    committed_at: list[float] = field(default_factory=list)
    rows: list[tuple[int, int, int]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class WsClient:
    """The gateway's ``/ws`` as the dashboard uses it, in this process."""

    def __init__(self, port: int, token: str) -> None:
        self.url = f"ws://127.0.0.1:{port}/ws"
        self.token = token
        self.rec = WsRecord()
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    async def _run(self) -> None:
        while True:
            try:
                async with connect(
                    self.url,
                    max_size=2**26,
                    open_timeout=10,
                    additional_headers={"Authorization": f"Bearer {self.token}"},
                ) as ws:
                    self.connected.set()
                    async for raw in ws:
                        now = time.time() * 1000
                        msg = orjson.loads(raw)
                        if "committed_at" not in msg:
                            continue
                        rows = msg.get("rows") or {}
                        self.rec.recv_ms.append(now)
                        self.rec.committed_at.append(float(msg["committed_at"]))
                        self.rec.rows.append(
                            (
                                int(rows.get("equity", 0)),
                                int(rows.get("options", 0)),
                                int(rows.get("bars", 0)),
                            )
                        )
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the gateway restarting: reconnect, and say so
                self.rec.errors.append(repr(exc)[:200])
                self.connected.clear()
                await asyncio.sleep(0.3)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())
        self._task.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def between(self, t0_ms: float, t1_ms: float) -> list[int]:
        return [i for i, c in enumerate(self.rec.committed_at) if t0_ms <= c <= t1_ms]


async def commit_log(conn: asyncpg.Connection, since_ms: float) -> list[tuple[str, int, float]]:
    """(stream, last id key, commit time ms) of every logged commit at or after ``since_ms``."""
    rows = await conn.fetch(
        "SELECT stream, last_id, extract(epoch FROM at) * 1000 AS at_ms FROM bench_commit_log "
        "WHERE at >= to_timestamp($1::float8 / 1000) ORDER BY at",
        since_ms,
    )
    return [(r["stream"], id_key(r["last_id"]), float(r["at_ms"])) for r in rows]


def commits_by_stream(
    log: Sequence[tuple[str, int, float]],
) -> dict[str, tuple[list[int], list[float]]]:
    out: dict[str, tuple[list[int], list[float]]] = {}
    for stream, key, at in log:
        keys, times = out.setdefault(stream, ([], []))
        keys.append(key)
        times.append(at)
    return out


async def scan_streams(
    r: aioredis.Redis, partitions: int, start_ms: int, end_ms: int
) -> dict[str, StreamTicks]:
    """Every entry of the tick streams that Redis accepted in ``[start_ms, end_ms]``, with
    the event time of each tick (equities and options)."""
    out: dict[str, StreamTicks] = {}
    for p in range(partitions):
        name = tick_stream(p)
        st = out[name] = StreamTicks()
        lo = f"{start_ms}-0"
        while True:
            batch = await r.xrange(name, min=lo, max=f"{end_ms}-18446744073709551615", count=500)
            if not batch:
                break
            for entry_id, fields in batch:
                _, eq, opt = msgpack.unpackb(fields[TICK_FIELD])
                st.add(id_key(entry_id), [row[1] for row in eq] + [row[1] for row in opt])
            lo = "(" + batch[-1][0].decode()
    return out


async def equity_ticks(
    r: aioredis.Redis, partitions: int, start_ms: int, end_ms: int
) -> list[tuple[str, int, float, int]]:
    """(symbol, event ms, price, cumulative volume) of every equity tick accepted in the window,
    in stream order per partition (the order the indicators engine folds them)."""
    out: list[tuple[str, int, float, int]] = []
    for p in range(partitions):
        name = tick_stream(p)
        lo = f"{start_ms}-0"
        while True:
            batch = await r.xrange(name, min=lo, max=f"{end_ms}-18446744073709551615", count=500)
            if not batch:
                break
            for _id, fields in batch:
                _, eq, _opt = msgpack.unpackb(fields[TICK_FIELD])
                out += [(row[0], int(row[1]), float(row[2]), int(row[5])) for row in eq]
            lo = "(" + batch[-1][0].decode()
    return out


class TradeFlow:
    """Market orders INSERTed into ``trades`` at ``rate`` per second (the executor places
    them at market-sim); latency INSERT commit -> broker accepted from ``trade_events``."""

    def __init__(self, dsn: str, symbols: Sequence[str], rate: float) -> None:
        self.dsn, self.symbols, self.rate = dsn, list(symbols), rate
        self.inserted: dict[int, float] = {}
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    async def _run(self) -> None:
        conn = await asyncpg.connect(self.dsn)
        try:
            i = 0
            nxt = time.monotonic()
            while not self._stop.is_set():
                sym = self.symbols[i % len(self.symbols)]
                tid = await conn.fetchval(
                    "INSERT INTO trades (symbol, asset_type, instruction, quantity, order_type) "
                    "VALUES ($1, 'EQUITY', 'BUY', 1, 'MARKET') RETURNING id",
                    sym,
                )
                self.inserted[int(tid)] = time.time()
                i += 1
                nxt += 1 / self.rate
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), max(0.0, nxt - time.monotonic()))
        finally:
            await conn.close()

    def start(self) -> None:
        self._stop.clear()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await asyncio.wait_for(self._task, 10)

    async def report(self, since: float, settle_s: float = 5.0) -> dict[str, Any]:
        """Trades inserted since ``since`` (epoch s): how many the broker accepted, and the
        INSERT -> accepted latency (waits up to ``settle_s`` for the last ones)."""
        from .stats import percentiles

        ids = [t for t, at in self.inserted.items() if at >= since]
        conn = await asyncpg.connect(self.dsn)
        try:
            deadline = time.monotonic() + settle_s
            while time.monotonic() < deadline:
                left = await conn.fetchval(
                    "SELECT count(*) FROM trades WHERE id = ANY($1::bigint[]) "
                    "AND status IN ('pending', 'submitting')",
                    ids,
                )
                if not left:
                    break
                await asyncio.sleep(0.2)
            rows = await conn.fetch(
                "SELECT trade_id, detail FROM trade_events WHERE trade_id = ANY($1::bigint[]) "
                "AND from_status = 'submitting' ORDER BY id",
                ids,
            )
            statuses = dict(
                await conn.fetch(
                    "SELECT status, count(*) FROM trades WHERE id = ANY($1::bigint[]) GROUP BY 1",
                    ids,
                )
            )
        finally:
            await conn.close()
        accepted: dict[int, float] = {}
        for r in rows:
            detail = json.loads(r["detail"]) if isinstance(r["detail"], str) else r["detail"]
            if detail and detail.get("accepted_at") and r["trade_id"] not in accepted:
                accepted[r["trade_id"]] = float(detail["accepted_at"])
        lat = [(at - self.inserted[t]) * 1000 for t, at in accepted.items()]
        return {
            "inserted": len(ids),
            "accepted": len(lat),
            "statuses": statuses,
            "insert_to_accepted_ms": percentiles(lat),
        }
