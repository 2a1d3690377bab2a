"""The component checks. Each takes a :class:`CheckContext` and returns a ComponentResult.

Checks only read: heartbeat keys, stream metadata, a handful of index-friendly queries and
the token file. Ages are computed against the injected ``ctx.now`` so tests can freeze time.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from streamdesk import constants
from streamdesk.market_calendar import is_market_open

from .config import Settings
from .status import ComponentResult, Problems, Status

log = logging.getLogger(__name__)

#: Streamer connection states that mean data can flow (see the streamer's state writer).
STREAMER_OK_STATES = frozenset({"connected", "streaming", "subscribed", "live", "ok"})
#: States that mean no data can flow until an operator acts.
STREAMER_DOWN_STATES = frozenset({"auth_expired"})
#: Keys of the executor's reconciliation summary that may hold its time.
_RECONCILE_TIME_KEYS = (
    "ts",
    "at",
    "time",
    "finished_at",
    "completed_at",
    "reconciled_at",
    "last_reconciled_at",
    "last_run",
    "last_run_at",
)

PoolGetter = Callable[[], Awaitable[asyncpg.Pool]]


@dataclass
class CheckContext:
    """What every check needs: clients, settings and the frozen "now" of this round."""

    settings: Settings
    redis: aioredis.Redis
    get_pool: PoolGetter
    now: datetime
    heartbeats: list[dict[str, Any]]
    #: Shared work of this round, run once whichever check asks first (see :meth:`once`).
    _once: dict[str, asyncio.Task[Any]] = field(default_factory=dict)

    async def once(self, key: str, fn: Callable[[], Awaitable[Any]]) -> Any:
        """``fn()``'s result, computed once per round for every check that asks for ``key``.

        Shielded: a check that times out stops waiting, without cancelling the others' wait.
        """
        task = self._once.get(key)
        if task is None:
            task = self._once[key] = asyncio.ensure_future(fn())
            task.add_done_callback(_retrieve)
        return await asyncio.shield(task)

    @property
    def now_s(self) -> float:
        """``now`` as epoch seconds."""
        return self.now.timestamp()

    @property
    def market_open(self) -> bool:
        """Whether the market is open now under MARKET_HOURS."""
        return is_market_open(self.now, self.settings.market_hours)


def _retrieve(task: asyncio.Task[Any]) -> None:
    # Every asker may have timed out: the outcome is read here, never logged as unretrieved.
    if not task.cancelled():
        task.exception()


def fmt_duration(seconds: float) -> str:
    """A short human duration: ``45s``, ``12m``, ``3h 05m``, ``1d 04h``."""
    s = abs(seconds)
    if s < 120:
        return f"{s:.0f}s"
    if s < 3600:
        return f"{s / 60:.0f}m"
    if s < 86400:
        return f"{int(s // 3600)}h {int(s % 3600 // 60):02d}m"
    return f"{int(s // 86400)}d {int(s % 86400 // 3600):02d}h"


def _epoch(value: Any) -> float | None:
    """Epoch seconds from a number (s or ms) or an ISO-8601 string; None if unparsable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        v = float(value)
        return v / 1000.0 if v > 1e12 else v
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            try:
                return _epoch(float(value))
            except ValueError:
                return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.timestamp()
    return None


async def _get_json(redis: aioredis.Redis, key: str) -> dict[str, Any] | None:
    raw = await redis.get(key)
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return {"_unparsable": True}
    return value if isinstance(value, dict) else {"_unparsable": True}


# --------------------------------------------------------------------------- Postgres round

#: Newest row per configured ticker, one index probe each in the hot rows (PK is (ticker,
#: timestamp)) and in the compacted chunks (PK (ticker, t0); t1 = the chunk's last row): the
#: same rows as the view ``{table}``, without walking its whole time grid for a ticker that
#: has no compacted data (migration 0060).
#:
#: Each probe is the greatest key at or below ``(ticker, infinity)`` in key order, then checked
#: to be the ticker's: a row comparison ordered by both key columns, which only the primary key
#: serves. ``max(timestamp) WHERE ticker = ...`` let the planner pick the ``(timestamp)`` index
#: instead, walking back through every other ticker's newest rows: with statistics from a
#: 5-ticker universe and 3,001 tickers streaming, that was 0.6-0.9 s per round (38 ms with
#: fresh statistics; tests/health/test_queries.py).
LAST_PER_TICKER = """
SELECT t.ticker, GREATEST(
    (SELECT x.ts FROM (SELECT h.ticker, h."timestamp" AS ts FROM {table}_hot h
                       WHERE (h.ticker, h."timestamp") <= (t.ticker, 'infinity'::timestamptz)
                       ORDER BY h.ticker DESC, h."timestamp" DESC LIMIT 1) x
     WHERE x.ticker = t.ticker),
    (SELECT y.t1 FROM (SELECT p.ticker, p.t1 FROM {table}_packed p
                       WHERE (p.ticker, p.t0) <= (t.ticker, 'infinity'::timestamptz)
                       ORDER BY p.ticker DESC, p.t0 DESC LIMIT 1) y
     WHERE y.ticker = t.ticker)
) AS last
FROM unnest($1::text[]) AS t(ticker)
"""
#: Newest option row (any contract): the (timestamp) index of migration 0050 on the hot rows,
#: the chunk with the latest start among the compacted ones.
LAST_OPTION = """
SELECT GREATEST(
    (SELECT max("timestamp") FROM option_prices_hot),
    (SELECT t1 FROM option_prices_packed ORDER BY t0 DESC LIMIT 1)
)
"""
#: Everything the round asks Postgres (postgres, freshness, streamer gaps, executor), in one
#: round trip: the same index probes as separate queries, one client/server exchange.
ROUND_QUERY = f"""
WITH eq AS ({LAST_PER_TICKER.format(table="equity_data")}),
     ind AS ({LAST_PER_TICKER.format(table="indicators")})
SELECT pg_database_size(current_database()) AS size,
       (SELECT array_agg(ticker ORDER BY ticker) FROM eq) AS eq_tickers,
       (SELECT array_agg(last ORDER BY ticker) FROM eq) AS eq_last,
       (SELECT max(last) FROM ind) AS ind_last,
       ({LAST_OPTION}) AS opt_last,
       gaps.n AS open_gaps, gaps.oldest AS oldest_gap,
       unknown.n AS unknown, unknown.oldest AS oldest_unknown
FROM (SELECT count(*) AS n, min(started_at) AS oldest FROM stream_gaps
      WHERE ended_at IS NULL) AS gaps,
     (SELECT count(*) AS n, min(updated_at) AS oldest FROM trades
      WHERE status = 'unknown') AS unknown
"""


async def db_round(ctx: CheckContext) -> asyncpg.Record:
    """This round's :data:`ROUND_QUERY` row, fetched once for every check that needs it."""

    async def fetch() -> asyncpg.Record:
        pool = await ctx.get_pool()
        row = await pool.fetchrow(ROUND_QUERY, ctx.settings.tickers)
        assert row is not None
        return row

    row: asyncpg.Record = await ctx.once("db", fetch)
    return row


def last_equity_rows(row: asyncpg.Record) -> dict[str, datetime | None]:
    """Newest ``equity_data`` row per configured ticker, from a :func:`db_round` row."""
    return dict(zip(row["eq_tickers"] or [], row["eq_last"] or [], strict=True))


# --------------------------------------------------------------------------- heartbeats


def heartbeat_result(ctx: CheckContext, service: str) -> ComponentResult:
    """A service's heartbeat: down when absent or stale, degraded when it says so."""
    stale_after = ctx.settings.heartbeat_stale_s
    instances: list[dict[str, Any]] = []
    for hb in ctx.heartbeats:
        if hb.get("service") != service:
            continue
        ts = _epoch(hb.get("ts")) or 0.0
        instances.append(
            {
                "instance": str(hb.get("instance", "?")),
                "version": str(hb.get("version", "")),
                "uptime_s": hb.get("uptime_s"),
                "age_s": round(max(0.0, ctx.now_s - ts), 3),
                "status": str(hb.get("status", "ok")),
                "reason": str(hb.get("reason", "")),
                "counters": hb.get("counters") or {},
            }
        )
    instances.sort(key=lambda i: float(i["age_s"]))
    live = [i for i in instances if i["age_s"] <= stale_after]
    figures: dict[str, Any] = {"instances": instances, "live_instances": len(live)}
    problems = Problems()
    if not instances:
        problems.add(Status.DOWN, "no heartbeat (not running?)")
    elif not live:
        problems.add(Status.DOWN, f"heartbeat stale for {fmt_duration(instances[0]['age_s'])}")
    else:
        for inst in live:
            if inst["status"] != "ok":
                reason = inst["reason"] or inst["status"]
                problems.add(Status.DEGRADED, f"{inst['instance']}: {reason}")
    return problems.result(service, figures, ok_reason=f"{len(live)} instance(s) alive")


async def streamer_result(ctx: CheckContext) -> ComponentResult:
    """Heartbeat of the streamer plus its connection state and open gaps."""
    base = heartbeat_result(ctx, "streamer")
    problems = Problems()
    if base.status is not Status.OK:
        problems.add(base.status, base.reason)
    figures = dict(base.figures)
    market_open = ctx.market_open
    state = await _get_json(ctx.redis, constants.STREAMER_STATE_KEY)
    if state is not None:
        figures["connection"] = state
        name = str(state.get("state", "unknown")).lower()
        since = _epoch(state.get("since"))
        for_how_long = f" for {fmt_duration(ctx.now_s - since)}" if since else ""
        detail = f" ({state['reason']})" if state.get("reason") else ""
        if name in STREAMER_DOWN_STATES:
            problems.add(Status.DOWN, f"connection {name}{for_how_long}{detail}")
        elif market_open and name not in STREAMER_OK_STATES:
            problems.add(Status.DEGRADED, f"connection {name}{for_how_long}{detail}")
        if market_open and state.get("gap_open"):
            problems.add(Status.DEGRADED, "data gap open")
    try:
        row = await db_round(ctx)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        # Postgres trouble is the postgres component's finding; the streamer may be fine.
        figures["open_gaps"] = None
        figures["open_gaps_error"] = type(exc).__name__
        row = None
    if row is not None:
        gaps = int(row["open_gaps"])
        figures["open_gaps"] = gaps
        if gaps:
            oldest: datetime = row["oldest_gap"]
            figures["oldest_gap_started_at"] = oldest.isoformat()
            if market_open:
                age = fmt_duration(ctx.now_s - oldest.timestamp())
                problems.add(Status.DEGRADED, f"{gaps} open gap(s), oldest {age} old")
    return problems.result("streamer", figures, ok_reason=base.reason)


# --------------------------------------------------------------------------- redis


async def redis_result(ctx: CheckContext) -> ComponentResult:
    """Ping, memory, stream lengths and the indicators group's lag and pending count."""
    names = constants.tick_streams(ctx.settings.stream_partitions)
    # One pipelined round trip; a missing stream's XINFO error comes back in its place.
    pipe = ctx.redis.pipeline(transaction=False)
    pipe.ping()
    pipe.info("memory")
    for name in names:
        pipe.xlen(name)
        pipe.xinfo_groups(name)
    pipe.xlen(constants.COMMITTED_STREAM)
    replies: list[Any] = await pipe.execute(raise_on_error=False)
    for reply in replies[:2]:
        if isinstance(reply, Exception):
            raise reply
    info = replies[1]
    used = int(info.get("used_memory", 0))
    maxmem = int(info.get("maxmemory", 0))
    figures: dict[str, Any] = {"used_memory_bytes": used, "maxmemory_bytes": maxmem}
    problems = Problems()
    if maxmem and used > 0.9 * maxmem:
        problems.add(Status.DEGRADED, f"memory at {100 * used / maxmem:.0f}% of maxmemory")
    streams: dict[str, Any] = {}
    group = constants.INDICATORS_GROUP
    for i, name in enumerate(names):
        length_reply, groups = replies[2 + 2 * i], replies[3 + 2 * i]
        if isinstance(length_reply, Exception):
            raise length_reply
        length = int(length_reply)
        entry: dict[str, Any] = {"length": length}
        if isinstance(groups, ResponseError):  # the stream does not exist yet
            groups = []
        elif isinstance(groups, Exception):
            raise groups
        for g in groups:
            gname = g.get("name")
            gname = gname.decode() if isinstance(gname, bytes) else gname
            if gname != group:
                continue
            lag = g.get("lag")
            entry["lag"] = int(lag) if lag is not None else None
            entry["pending"] = int(g.get("pending", 0))
        if "pending" not in entry and length:
            problems.add(Status.DEGRADED, f"{name}: consumer group {group!r} missing")
        lag_v = entry.get("lag")
        if lag_v is not None and lag_v > ctx.settings.health_stream_lag_max:
            problems.add(Status.DEGRADED, f"{name}: lag {lag_v} entries")
        pending = entry.get("pending", 0)
        if pending > ctx.settings.health_stream_pending_max:
            problems.add(Status.DEGRADED, f"{name}: {pending} pending (unacked)")
        streams[name] = entry
    if isinstance(replies[-1], Exception):
        raise replies[-1]
    streams[constants.COMMITTED_STREAM] = {"length": int(replies[-1])}
    figures["streams"] = streams
    return problems.result("redis", figures, ok_reason=f"{used / 2**20:.1f} MB used")


# --------------------------------------------------------------------------- token


def token_result(settings: Settings, now_s: float) -> ComponentResult:
    """Age of the Schwab token file: degraded from day 5 with the time left, down once expired.

    The refresh token lives ``HEALTH_TOKEN_LIFE_DAYS`` (7) from ``creation_timestamp``; the
    access token (30 min) is refreshed by schwab-py itself and only reported.
    """
    path = Path(settings.schwab_token_path)
    problems = Problems()
    figures: dict[str, Any] = {"path": str(path)}
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if settings.token_required:
            problems.add(Status.DOWN, "token file missing: run the Schwab login")
            return problems.result("token", figures)
        return problems.result("token", figures, ok_reason="no token file (paper mode)")
    try:
        data = json.loads(raw)
        created = _epoch(data["creation_timestamp"])
        if created is None:
            raise ValueError("creation_timestamp")
    except (ValueError, KeyError, TypeError):
        problems.add(Status.DOWN, "token file unreadable (not schwab-py's format)")
        return problems.result("token", figures)
    life = settings.health_token_life_days * 86400
    age = now_s - created
    left = life - age
    figures.update(
        {
            "created_at": datetime.fromtimestamp(created, UTC).isoformat(),
            "age_s": round(age, 1),
            "refresh_expires_in_s": round(left, 1),
        }
    )
    token = data.get("token")
    if isinstance(token, dict) and (exp := _epoch(token.get("expires_at"))) is not None:
        figures["access_expires_in_s"] = round(exp - now_s, 1)
    if left <= 0:
        problems.add(Status.DOWN, f"refresh token expired {fmt_duration(-left)} ago: log in again")
    elif age >= settings.health_token_warn_days * 86400:
        problems.add(
            Status.DEGRADED, f"refresh token expires in {fmt_duration(left)}: log in again soon"
        )
    return problems.result("token", figures, ok_reason=f"expires in {fmt_duration(left)}")


# --------------------------------------------------------------------------- executor


async def executor_result(ctx: CheckContext) -> ComponentResult:
    """Orders whose outcome is unknown, and the executor's last reconciliation."""
    s = ctx.settings
    row = await db_round(ctx)
    unknown = int(row["unknown"])
    figures: dict[str, Any] = {"unknown_orders": unknown}
    problems = Problems()
    if unknown:
        oldest_age = ctx.now_s - row["oldest_unknown"].timestamp()
        figures["oldest_unknown_age_s"] = round(oldest_age, 1)
        if oldest_age > s.health_unknown_grace_s:
            problems.add(
                Status.DEGRADED,
                f"{unknown} order(s) with unknown outcome, oldest {fmt_duration(oldest_age)}",
            )
    rec = await _get_json(ctx.redis, constants.EXECUTOR_RECONCILE_KEY)
    ok_reason = "no unknown orders"
    if rec is None:
        ok_reason += "; no reconciliation reported yet"
    else:
        figures["last_reconcile"] = rec
        at = next((t for k in _RECONCILE_TIME_KEYS if (t := _epoch(rec.get(k))) is not None), None)
        if at is None:
            problems.add(Status.DEGRADED, "reconciliation record has no time")
        else:
            age = ctx.now_s - at
            figures["last_reconcile_age_s"] = round(age, 1)
            if age > s.health_reconcile_max_age_s:
                problems.add(Status.DEGRADED, f"last reconciliation {fmt_duration(age)} ago")
            ok_reason += f"; reconciled {fmt_duration(age)} ago"
        errors = rec.get("errors") or rec.get("error")
        if errors or rec.get("ok") is False:
            problems.add(Status.DEGRADED, f"reconciliation reported errors: {errors}"[:200])
    return problems.result("executor", figures, ok_reason=ok_reason)
