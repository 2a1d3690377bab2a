"""Exact checkers of a chaos run: what went in (market-sim's sent log, the tick streams, the
trades) against what came out (the tables, the broker's order book).

1. **Ticks** (sent log -> ``equity_data`` / ``option_prices``). The simulator's partial
   level-one updates are merged per symbol exactly as the protocol defines (independently of
   the streamer's decoder) into complete ticks. The writer conflates per second, so "a tick is
   in the table" means: for every (ticker, second) in which ticks were sent, the row exists and
   equals the *last* tick of that second (price, bid, ask, cumulative volume); and ``volume``
   of each row equals the increase of the cumulative volume since the ticker's previous row
   (the telescoped volume rule: a tick counted twice, e.g. an old entry replayed, breaks it).
   Options: a row for each (contract, second) in which some tick changed a field, equal to the
   last tick of that second. Rows at seconds without sent ticks are duplicates/phantoms.
   A missing row, or one that stops short of the second's last tick, is *explained* only if
   every tick it lacks was sent inside a gap recorded in ``stream_gaps`` that an injected
   outage explains; anything else is *lost*.
2. **Indicators** (tick streams -> tables). Every entry of the Redis tick streams is replayed
   through a fresh, uninterrupted indicator engine (``streamdesk_indicators.engine``, the same
   code, the same decoder); ``equity_data``, ``indicators``, ``option_prices`` and ``bars_1m``
   must equal its output value for value.
3. **Orders** (``trades`` <-> ``GET /admin/broker/orders``): each broker order is linked to
   exactly one trade; each trade that reached ``working`` (or beyond) has its order; trades
   rejected before submission have none; nothing is left unsettled; every trade a client was
   told was created exists.
4. **Gaps**: every ``stream_gaps`` row overlaps an injected stream-affecting fault (or the
   few seconds of recovery after it).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from streamdesk import constants
from streamdesk.codec import CodecError, decode_entry
from streamdesk_indicators.engine import Engine
from streamdesk_indicators.indicators import columns
from streamdesk_indicators.sessions import SessionCalendar

EQ = "LEVELONE_EQUITIES"
OPT = "LEVELONE_OPTIONS"
#: A lost tick counts as inside a gap if sent at most this long before it opened / after it
#: closed (the simulator logs a frame after its write returns, the streamer stamps a gap with
#: its own clock; both are this host's wall clock).
GAP_SLACK_MS = 500
#: A gap is explained by a stream-affecting fault whose window, from BEFORE s before its start
#: to AFTER s after its end (reconnect back-off, login, resubscription), overlaps the gap. (A
#: crashed streamer's gap starts at its last sign of life, which can be well before the kill
#: when Redis was slow; the kill is then inside the gap.)
EXPLAIN_BEFORE_S = 1.0
EXPLAIN_AFTER_S = 8.0
_EQ_KEYS = ("3", "1", "2", "8", "9", "34", "35")
#: option vals in the engine's order: last, bid, ask, delta, gamma, theta, vega, rho, iv,
#: volume, open interest, underlying price
_OPT_VALS = ("4", "2", "3", "28", "29", "30", "31", "32", "10", "8", "9", "35")
_OPT_KEYS = (*_OPT_VALS, "18", "38", "39")
_OPT_INT = {"8", "9"}
_OPT_NAN_DEFAULT = {"4", "28", "29", "30", "31", "32", "10", "35"}


@dataclass
class Report:
    """Counts of a check (and a few examples of each problem)."""

    updates_sent: int = 0
    ticks_sent: int = 0
    seconds_expected: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    explained_missing: int = 0
    lost: int = 0
    duplicated: int = 0
    indicator_mismatch: int = 0
    stream_entries: int = 0
    gaps: int = 0
    unexplained_gaps: int = 0
    trades: int = 0
    orders: int = 0
    rejected_trades: int = 0
    double_ordered: int = 0
    missing_orders: int = 0
    unsettled: int = 0
    status_mismatch: int = 0
    acked_trades_lost: int = 0
    sentlog_incomplete: int = 0
    examples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def note(self, kind: str, text: str) -> None:
        if len(self.examples[kind]) < 8:
            self.examples[kind].append(text)

    @property
    def failures(self) -> dict[str, int]:
        """Every nonzero problem count (empty = the run is clean)."""
        names = (
            "lost",
            "duplicated",
            "indicator_mismatch",
            "unexplained_gaps",
            "double_ordered",
            "missing_orders",
            "unsettled",
            "status_mismatch",
            "acked_trades_lost",
            "sentlog_incomplete",
        )
        return {n: getattr(self, n) for n in names if getattr(self, n)}

    def as_json(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "examples"}
        out["examples"] = dict(self.examples)
        return out


# --------------------------------------------------------------------------- gaps
@dataclass(frozen=True)
class Window:
    start: float  # epoch seconds
    end: float


def explain_gaps(
    gaps: Sequence[asyncpg.Record | dict[str, Any]],
    faults: Iterable[Window],
    report: Report,
) -> list[tuple[int, int]]:
    """Check each gap against the stream faults; return explained gaps as ms intervals."""
    windows = list(faults)
    explained: list[tuple[int, int]] = []
    report.gaps = len(gaps)
    for g in gaps:
        start = g["started_at"].timestamp()
        end = g["ended_at"].timestamp() if g["ended_at"] is not None else math.inf
        ok = any(
            start <= w.end + EXPLAIN_AFTER_S and w.start - EXPLAIN_BEFORE_S <= end for w in windows
        )
        if not ok:
            report.unexplained_gaps += 1
            report.note("unexplained_gaps", f"{g['started_at']}..{g['ended_at']} {g['reason']}")
            continue
        explained.append((int(start * 1000), int(min(end, 4e9) * 1000)))
    return explained


def _in_gaps(ms: int, gaps: Sequence[tuple[int, int]]) -> bool:
    return any(s - GAP_SLACK_MS <= ms <= e + GAP_SLACK_MS for s, e in gaps)


# --------------------------------------------------------------------------- reference ticks
@dataclass(frozen=True, slots=True)
class SentTick:
    seq: int
    sent_ms: int
    ts: int
    vals: tuple[Any, ...]  # equities: (last, bid, ask, cum); options: _OPT_VALS order
    #: no event time in the fields yet (a snapshot before the first trade/quote): the
    #: streamer then uses the data frame's timestamp, which the sent log does not keep; it
    #: is at most the queueing delay before ``sent_ms``
    fallback: bool = False


def equity_ticks(updates: Sequence[dict[str, Any]]) -> list[SentTick]:
    """Complete equity ticks from the simulator's partial updates, in send order."""
    st: dict[str, Any] = {}
    out: list[SentTick] = []
    last_ts = -1
    for u in updates:
        f = u["fields"]
        if not any(k in f for k in _EQ_KEYS):
            continue
        for k in _EQ_KEYS:
            if k in f:
                st[k] = f[k]
        if any(st.get(k) is None for k in ("3", "1", "2", "8")):
            continue
        event = max(int(st.get("34", 0)), int(st.get("35", 0)))
        last_ts = max(last_ts, event or int(u["sent_ms"]))  # late ticks fold forward
        vals = (float(st["3"]), float(st["1"]), float(st["2"]), int(st["8"]))
        out.append(SentTick(u["seq"], int(u["sent_ms"]), last_ts, vals, not event))
    return out


def _opt_val(k: str, v: Any) -> Any:
    if v is None:
        return None
    if k in _OPT_INT:
        return int(v)
    x = float(v)
    return x if math.isfinite(x) else None


def option_ticks(updates: Sequence[dict[str, Any]]) -> list[SentTick]:
    """Complete option ticks (values as the engine stores them, NaN as None)."""
    st: dict[str, Any] = {k: math.nan for k in _OPT_NAN_DEFAULT}
    st.update({"9": 0})
    out: list[SentTick] = []
    last_ts = -1
    for u in updates:
        f = u["fields"]
        if not any(k in f for k in _OPT_KEYS):
            continue
        for k in _OPT_KEYS:
            if k in f:
                st[k] = f[k]
        if any(st.get(k) is None for k in ("2", "3", "8")):
            continue
        event = max(int(st.get("38", 0)), int(st.get("39", 0)))
        last_ts = max(last_ts, event or int(u["sent_ms"]))
        vals = tuple(_opt_val(k, st.get(k)) for k in _OPT_VALS)
        out.append(SentTick(u["seq"], int(u["sent_ms"]), last_ts, vals, not event))
    return out


def _place_fallbacks(
    ticks: Sequence[SentTick], table: dict[int, tuple[Any, ...]], width: int
) -> list[SentTick]:
    """Date ticks without an event time by the row that holds them: the second of their
    send time or one of the 5 before it (the frame's timestamp precedes its send)."""
    out = []
    for t in ticks:
        if t.fallback:
            sec = t.ts - t.ts % 1000
            row = table.get(sec)
            if row is None or row[:width] != t.vals:
                for back in range(1000, 6000, 1000):
                    row = table.get(sec - back)
                    if row is not None and row[:width] == t.vals:
                        t = replace(t, ts=sec - back)
                        break
        out.append(t)
    return out


def _by_second(ticks: Sequence[SentTick]) -> dict[int, list[SentTick]]:
    out: dict[int, list[SentTick]] = {}
    for t in ticks:
        out.setdefault(t.ts - t.ts % 1000, []).append(t)
    return out


def _ms(ts: datetime) -> int:
    return round(ts.timestamp() * 1000)


# --------------------------------------------------------------------------- 1. ticks
def check_ticks(
    sent: dict[tuple[str, str], list[dict[str, Any]]],
    equity_rows: Sequence[asyncpg.Record],
    option_rows: Sequence[asyncpg.Record],
    gaps: Sequence[tuple[int, int]],
    report: Report,
    *,
    load_symbols: frozenset[str] = frozenset(),
) -> None:
    """Sent log against the per-second tables (see the module docstring)."""
    eq_table: dict[str, dict[int, tuple[Any, ...]]] = defaultdict(dict)
    for r in equity_rows:
        eq_table[r["ticker"]][_ms(r["timestamp"])] = (
            r["price"],
            r["bid"],
            r["ask"],
            r["cum_volume"],
            r["volume"],
        )
    opt_table: dict[str, dict[int, tuple[Any, ...]]] = defaultdict(dict)
    for r in option_rows:
        opt_table[r["ticker"]][_ms(r["timestamp"])] = tuple(r[c] for c in _OPT_COLUMNS)
    report.rows["equity_data"] = len(equity_rows)
    report.rows["option_prices"] = len(option_rows)
    seen_eq: set[str] = set()
    seen_opt: set[str] = set()
    for (service, symbol), updates in sent.items():
        report.updates_sent += len(updates)
        if service == EQ and symbol not in load_symbols:
            seen_eq.add(symbol)
            _check_equity(symbol, equity_ticks(updates), eq_table.get(symbol, {}), gaps, report)
        elif service == OPT:
            seen_opt.add(symbol)
            _check_option(symbol, option_ticks(updates), opt_table.get(symbol, {}), gaps, report)
    for table, seen in ((eq_table, seen_eq), (opt_table, seen_opt)):
        for symbol in set(table) - seen:
            report.duplicated += len(table[symbol])
            report.note("duplicated", f"{symbol}: {len(table[symbol])} rows, nothing sent")


def _missing(
    symbol: str, sec: int, lacking: Sequence[SentTick], gaps: Sequence[tuple[int, int]], r: Report
) -> None:
    if all(_in_gaps(t.sent_ms, gaps) for t in lacking):
        r.explained_missing += 1
    else:
        r.lost += 1
        r.note(
            "lost",
            f"{symbol} second {sec}: {len(lacking)} sent tick(s) missing, sent at "
            f"{[t.sent_ms for t in lacking][:3]}",
        )


def _check_equity(
    symbol: str,
    ticks: Sequence[SentTick],
    table: dict[int, tuple[Any, ...]],
    gaps: Sequence[tuple[int, int]],
    r: Report,
) -> None:
    r.ticks_sent += len(ticks)
    ticks = _place_fallbacks(ticks, table, 4)
    secs = _by_second(ticks)
    r.seconds_expected += len(secs)
    for sec, group in secs.items():
        row = table.get(sec)
        if row is None:
            _missing(symbol, sec, group, gaps, r)
            continue
        if row[:4] == group[-1].vals:
            continue
        done = [i for i, t in enumerate(group) if t.vals == row[:4]]
        if not done:
            r.lost += 1
            r.note("lost", f"{symbol} second {sec}: row {row} equals no tick sent in it")
        else:
            _missing(symbol, sec, group[done[-1] + 1 :], gaps, r)
    for sec in set(table) - set(secs):
        r.duplicated += 1
        r.note("duplicated", f"{symbol} second {sec}: row {table[sec]} but nothing sent")
    # Volume rule, telescoped: each row's volume is the cumulative volume's increase since
    # the ticker's previous row. If seconds between the two are missing, or the previous row
    # stops short of its second (both already counted as lost or explained), the engine may
    # have seen the missing ticks (a row lost after processing) or not (ticks lost before
    # it): the increase since the last tick of any of those seconds counts.
    # The first row has no baseline in the table: its volume is the increase since the first
    # tick of its second, if that tick was the first one sent.
    prev: int | None = None
    for sec in sorted(table):
        cum, volume = table[sec][3], table[sec][4]
        if prev is None:
            first = ticks[0] if ticks else None
            wants = set()
            if first is not None and first.ts - first.ts % 1000 == sec:
                wants.add(cum - first.vals[3])
        else:
            bases = [table[prev][3]]
            bases += [g[-1].vals[3] for s_, g in secs.items() if prev <= s_ < sec]
            wants = {cum - b if cum >= b else cum for b in bases}
        if wants and volume not in wants:
            r.duplicated += 1
            r.note("duplicated", f"{symbol} second {sec}: volume {volume}, expected {wants}")
        prev = sec


_OPT_COLUMNS = (
    "last_price",
    "bid",
    "ask",
    "delta",
    "gamma",
    "theta",
    "vega",
    "rho",
    "implied_volatility",
    "volume",
    "open_interest",
    "underlying_price",
)


def _check_option(
    symbol: str,
    ticks: Sequence[SentTick],
    table: dict[int, tuple[Any, ...]],
    gaps: Sequence[tuple[int, int]],
    r: Report,
) -> None:
    r.ticks_sent += len(ticks)
    ticks = _place_fallbacks(ticks, table, len(_OPT_VALS))
    expected: dict[int, list[SentTick]] = {}
    any_tick: dict[int, list[SentTick]] = {}
    prev: tuple[Any, ...] | None = None
    for t in ticks:
        sec = t.ts - t.ts % 1000
        any_tick.setdefault(sec, []).append(t)
        if t.vals != prev:
            expected.setdefault(sec, [])
        prev = t.vals
    r.seconds_expected += len(expected)
    for sec in expected:
        group = any_tick[sec]
        row = table.get(sec)
        if row is None:
            _missing(symbol, sec, group, gaps, r)
        elif row != group[-1].vals:
            done = [i for i, t in enumerate(group) if t.vals == row]
            if not done:
                r.lost += 1
                r.note("lost", f"{symbol} second {sec}: row equals no tick sent in it")
            else:
                _missing(symbol, sec, group[done[-1] + 1 :], gaps, r)
    secs_in_table = sorted(table)
    for i, sec in enumerate(secs_in_table):
        if sec in expected:
            continue
        # A row where the sent ticks changed nothing is possible only if ticks since the
        # contract's previous row were lost in a gap (the engine then saw a change).
        before = secs_in_table[i - 1] if i else -1
        if any(before <= t.ts < sec + 1000 and _in_gaps(t.sent_ms, gaps) for t in ticks):
            r.explained_missing += 1
            continue
        r.duplicated += 1
        r.note("duplicated", f"{symbol} second {sec}: row but no change was sent")


# --------------------------------------------------------------------------- 2. replay
async def replay_streams(redis_url: str, partitions: int) -> tuple[dict[str, Any], int]:
    """Every tick-stream entry through a fresh engine per partition; its rows by table."""
    r = aioredis.Redis.from_url(redis_url)
    engines: list[Engine] = []
    entries = 0
    try:
        for p in range(partitions):
            engine = Engine(SessionCalendar(), bar_seconds=60)
            engines.append(engine)
            stream = constants.tick_stream(p)
            start = "-"
            while True:
                chunk = await r.xrange(stream, min=start, count=2000)
                if not chunk:
                    break
                for _eid, fields in chunk:
                    entries += 1
                    payload = fields.get(constants.TICK_FIELD)
                    if payload is None:
                        continue
                    try:
                        eqs, opts, _dropped = decode_entry(payload)
                    except CodecError:
                        continue
                    engine.process_equities(eqs)
                    for o in opts:
                        engine.on_option(o)
                last = chunk[-1][0].decode()
                ms, seq = last.split("-")
                start = f"{ms}-{int(seq) + 1}"
    finally:
        await r.aclose()
    n_ind = len(columns())
    tables: dict[str, dict[tuple[str, int], tuple[Any, ...]]] = {
        "equity_data": {},
        "indicators": {},
        "option_prices": {},
        "bars_1m": {},
    }
    for engine in engines:
        out, _states = engine.take()
        for row in out.seconds:
            key = (row[0], row[1])
            tables["equity_data"][key] = tuple(row[2:7])
            tables["indicators"][key] = tuple(row[7 : 7 + n_ind])
        for row in out.options:
            tables["option_prices"][(row[0], row[1])] = tuple(row[6:18])
        for bar in out.bars:
            tables["bars_1m"][(bar[0], bar[1])] = tuple(bar[2:])
    return tables, entries


async def read_tables(conn: asyncpg.Connection) -> dict[str, list[asyncpg.Record]]:
    """The output tables as records."""
    ind = ", ".join(columns())
    opt = ", ".join(_OPT_COLUMNS)
    return {
        "equity_data": await conn.fetch(
            'SELECT ticker, "timestamp", price, volume, bid, ask, cum_volume FROM equity_data'
        ),
        "indicators": await conn.fetch(f'SELECT ticker, "timestamp", {ind} FROM indicators'),
        "option_prices": await conn.fetch(f'SELECT ticker, "timestamp", {opt} FROM option_prices'),
        "bars_1m": await conn.fetch(
            "SELECT ticker, bucket AS timestamp, open, high, low, close, volume, vwap FROM bars_1m"
        ),
    }


def check_replay(
    expected: dict[str, dict[tuple[str, int], tuple[Any, ...]]],
    actual: dict[str, list[asyncpg.Record]],
    report: Report,
) -> None:
    """Tables against the uninterrupted replay, value for value."""
    for table, want in expected.items():
        got = {(r[0], _ms(r[1])): tuple(r)[2:] for r in actual[table]}
        report.rows[table] = len(got)
        for key in want.keys() | got.keys():
            a, b = want.get(key), got.get(key)
            if a != b:
                report.indicator_mismatch += 1
                report.note("indicator_mismatch", f"{table} {key}: replay {a} table {b}")


# --------------------------------------------------------------------------- 3. orders
_WORKING_OR_BEYOND = ("working", "filled", "cancelled", "expired")
_UNSETTLED = ("pending", "submitting", "unknown", "cancel_requested")
_BROKER_STATUS = {
    "FILLED": "filled",
    "CANCELED": "cancelled",
    "REJECTED": "rejected",
    "EXPIRED": "expired",
    "WORKING": "working",
    "QUEUED": "working",
    "ACCEPTED": "working",
    "PENDING_ACTIVATION": "working",
}


def check_orders(
    trades: Sequence[asyncpg.Record],
    orders: Sequence[dict[str, Any]],
    acked: Iterable[int],
    report: Report,
) -> None:
    """Broker order book against ``trades`` (see the module docstring)."""
    report.trades = len(trades)
    report.orders = len(orders)
    by_order = {int(o["order_id"]): o for o in orders}
    linked: dict[int, list[int]] = defaultdict(list)
    ids = {int(t["id"]) for t in trades}
    for t in trades:
        status, oid = t["status"], t["broker_order_id"]
        if status == "rejected":
            report.rejected_trades += 1
        if status in _UNSETTLED:
            report.unsettled += 1
            report.note("unsettled", f"trade {t['id']} still {status}")
        if oid is None:
            if status in _WORKING_OR_BEYOND:
                report.missing_orders += 1
                report.note("missing_orders", f"trade {t['id']} {status} without an order")
            continue
        oid = int(oid)
        linked[oid].append(int(t["id"]))
        o = by_order.get(oid)
        if o is None:
            report.missing_orders += 1
            report.note("missing_orders", f"trade {t['id']} linked to unknown order {oid}")
            continue
        if t["submitted_at"] is None:
            report.double_ordered += 1
            report.note("double_ordered", f"trade {t['id']} never submitted but has {oid}")
        want = _BROKER_STATUS.get(o["status"])
        if status not in _UNSETTLED and want != status:
            report.status_mismatch += 1
            report.note("status_mismatch", f"trade {t['id']} {status}, broker {o['status']}")
        if o["symbol"] != t["symbol"] or float(o["quantity"]) != float(t["quantity"]):
            report.status_mismatch += 1
            report.note("status_mismatch", f"trade {t['id']} differs from order {oid}")
    for oid, tids in linked.items():
        if len(tids) > 1:
            report.double_ordered += len(tids) - 1
            report.note("double_ordered", f"order {oid} linked to trades {tids}")
    for oid, o in by_order.items():
        if oid not in linked:
            report.double_ordered += 1
            report.note(
                "double_ordered",
                f"broker order {oid} {o['symbol']} x{o['quantity']} {o['status']} "
                "belongs to no trade",
            )
    for tid in acked:
        if tid not in ids:
            report.acked_trades_lost += 1
            report.note("acked_trades_lost", f"trade {tid} was acknowledged, is gone")
