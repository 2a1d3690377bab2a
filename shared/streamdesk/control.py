"""The runtime control plane: kill switch, streamed universe and per-service pause flags.

All three live in Postgres (migration 0070: ``control_state``, ``universe``,
``service_pauses``), so they survive restarts of every service and of Redis. Each change bumps
``control_state.version`` in the same transaction and, when a Redis client is given, is
announced on :data:`~streamdesk.constants.CONTROL_CHANNEL` after the commit; a
:class:`~streamdesk.control_watch.ControlWatcher` in each service re-reads on that message and
polls the version as a fallback, so a change reaches every service within about a second (and
within the poll interval if the message is lost).

The universe is seeded once from the configuration (``TICKERS``, ``OPTION_UNDERLYINGS``) by
the first reader that passes ``defaults`` while it was never seeded; from then on the table
is the truth — changing ``TICKERS`` later has no effect, and removing every symbol leaves it
empty (it is not re-seeded).

``db`` arguments take an ``asyncpg`` pool or connection; the writers use their own
transaction (a nested one, a savepoint, inside a caller's transaction).
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import asyncpg
import redis.asyncio as aioredis

from .clock import SYSTEM_CLOCK, Clock
from .constants import CONTROL_CHANNEL

log = logging.getLogger(__name__)

#: A connection, or a pool's proxy of one.
Conn = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy
#: What the readers and writers take: a pool or a connection.
Db = asyncpg.Pool | Conn
Kind = Literal["equity", "option"]
KINDS: tuple[Kind, ...] = ("equity", "option")

#: Services that honour a pause flag, and what pausing them does.
PAUSABLE_SERVICES: dict[str, str] = {
    "streamer": "unsubscribes and stops publishing ticks (a gap is recorded)",
    "trade-executor": "stops claiming pending trades (working orders are still synced)",
}
#: Bounds of the universe (one streamer connection subscribes them all).
MAX_EQUITIES = 300
MAX_OPTION_UNDERLYINGS = 20
MAX_REASON = 500

_EQUITY_RE = re.compile(r"^[A-Z0-9][A-Z0-9./]{0,11}$")
# Index options' underlyings are spelled with a leading "$" by Schwab ($SPX).
_UNDERLYING_RE = re.compile(r"^\$?[A-Z0-9][A-Z0-9./]{0,10}$")


class ControlError(ValueError):
    """A control change refused for a reason the caller can show as is."""


class InvalidSymbolError(ControlError):
    """The symbol is not a valid equity ticker / option underlying."""


class UniverseFullError(ControlError):
    """The universe already holds the maximum number of symbols of that kind."""


class UnknownServiceError(ControlError):
    """The service has no pause flag (see :data:`PAUSABLE_SERVICES`)."""


class SymbolNotFoundError(LookupError):
    """The symbol is not in the universe."""


@dataclass(frozen=True, slots=True)
class KillSwitch:
    """State of the kill switch: while ``engaged`` the executor places no order."""

    engaged: bool
    reason: str | None
    changed_at: datetime


@dataclass(frozen=True, slots=True)
class UniverseSpec:
    """What is streamed: equity tickers and option underlyings (sorted, upper case)."""

    equities: tuple[str, ...]
    option_underlyings: tuple[str, ...]

    @classmethod
    def of(cls, equities: Iterable[str], option_underlyings: Iterable[str]) -> UniverseSpec:
        """A spec from any iterables (deduplicated, normalized, sorted)."""
        return cls(
            tuple(sorted({normalize_symbol("equity", s) for s in equities})),
            tuple(sorted({normalize_symbol("option", s) for s in option_underlyings})),
        )


@dataclass(frozen=True, slots=True)
class ControlSnapshot:
    """Everything a service needs from the control plane, read at one ``version``."""

    version: int
    kill_switch: KillSwitch
    universe: UniverseSpec
    paused: frozenset[str]


def normalize_symbol(kind: str, symbol: str) -> str:
    """``symbol`` upper-cased and stripped, or :class:`InvalidSymbolError` saying why.

    Equities: 1-12 of ``A-Z 0-9 . /`` starting with a letter or digit (``BRK.B``, ``BF/B``);
    option underlyings: the same, or an index with a leading ``$`` (``$SPX``).
    """
    if kind not in KINDS:
        raise ControlError(f"kind must be one of {', '.join(KINDS)} (got {kind!r})")
    if not isinstance(symbol, str):
        raise InvalidSymbolError("symbol must be a string")
    sym = symbol.strip().upper()
    pattern = _EQUITY_RE if kind == "equity" else _UNDERLYING_RE
    if not pattern.fullmatch(sym):
        what = "equity ticker" if kind == "equity" else "option underlying"
        raise InvalidSymbolError(
            f"invalid {what} {symbol[:40]!r}: 1-12 characters of A-Z, 0-9, '.' or '/'"
            + (" (or '$' first, for an index)" if kind == "option" else "")
        )
    return sym


async def _bump(conn: Conn) -> int:
    version = await conn.fetchval(
        "UPDATE control_state SET version = version + 1 WHERE id RETURNING version"
    )
    if version is None:  # the migration inserts the row; recreate it if someone deleted it
        version = await conn.fetchval(
            "INSERT INTO control_state (id) VALUES (true) "
            "ON CONFLICT (id) DO UPDATE SET version = control_state.version + 1 "
            "RETURNING version"
        )
    return int(version)


async def notify(redis: aioredis.Redis | None, version: int) -> None:
    """Announce ``version`` on the control channel (best effort: watchers also poll)."""
    if redis is None:
        return
    try:
        await redis.publish(CONTROL_CHANNEL, str(version))
    except Exception as exc:  # the change is committed; watchers pick it up by polling
        log.warning("could not announce control change %d: %s", version, exc)


async def read_version(db: Db) -> int:
    """The control plane's current version (0 if the state row is missing)."""
    v = await db.fetchval("SELECT version FROM control_state WHERE id")
    return int(v) if v is not None else 0


# ------------------------------------------------------------------ kill switch


async def read_kill_switch(db: Db) -> KillSwitch:
    """The kill switch as stored (disengaged if the state row is missing)."""
    r = await db.fetchrow("SELECT kill_switch, kill_reason, kill_changed_at FROM control_state")
    if r is None:
        return KillSwitch(False, None, datetime.fromtimestamp(0).astimezone())
    return KillSwitch(bool(r["kill_switch"]), r["kill_reason"], r["kill_changed_at"])


async def set_kill_switch(
    db: Db,
    engaged: bool,
    reason: str | None = None,
    *,
    redis: aioredis.Redis | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> KillSwitch:
    """Engage or release the kill switch; ``changed_at`` moves only when the state changes.

    ``reason`` (at most :data:`MAX_REASON` characters) is kept with the state; releasing
    without a reason clears it.
    """
    if reason is not None:
        reason = reason.strip()[:MAX_REASON] or None
    async with _tx(db) as conn:
        await _bump(conn)
        r = await conn.fetchrow(
            """
            UPDATE control_state SET
              kill_changed_at = CASE WHEN kill_switch IS DISTINCT FROM $1 THEN $3
                                     ELSE kill_changed_at END,
              kill_switch = $1, kill_reason = $2
            WHERE id RETURNING kill_switch, kill_reason, kill_changed_at, version
            """,
            engaged,
            reason,
            clock.now(),
        )
    assert r is not None
    log.warning(
        "kill switch %s%s", "ENGAGED" if engaged else "released", f": {reason}" if reason else ""
    )
    await notify(redis, int(r["version"]))
    return KillSwitch(bool(r["kill_switch"]), r["kill_reason"], r["kill_changed_at"])


# ------------------------------------------------------------------ universe


async def seed_universe(
    db: Db, defaults: UniverseSpec, *, redis: aioredis.Redis | None = None
) -> bool:
    """Insert ``defaults`` unless the universe was ever seeded; True if this call seeded it."""
    async with _tx(db) as conn:
        seeded = await conn.fetchval(
            "UPDATE control_state SET universe_seeded_at = now() "
            "WHERE id AND universe_seeded_at IS NULL RETURNING true"
        )
        if not seeded:
            return False
        rows = [("equity", s) for s in defaults.equities[:MAX_EQUITIES]]
        rows += [("option", s) for s in defaults.option_underlyings[:MAX_OPTION_UNDERLYINGS]]
        await conn.executemany(
            "INSERT INTO universe (kind, symbol) VALUES ($1, $2) ON CONFLICT DO NOTHING", rows
        )
        version = await _bump(conn)
    log.info(
        "universe seeded from the configuration: %d equities, %d option underlyings",
        len(defaults.equities),
        len(defaults.option_underlyings),
    )
    await notify(redis, version)
    return True


async def read_universe(db: Db, *, defaults: UniverseSpec | None = None) -> UniverseSpec:
    """The streamed universe; seeded from ``defaults`` first if it never was."""
    if defaults is not None:
        await seed_universe(db, defaults)
    rows = await db.fetch("SELECT kind, symbol FROM universe ORDER BY kind, symbol")
    return UniverseSpec(
        tuple(r["symbol"] for r in rows if r["kind"] == "equity"),
        tuple(r["symbol"] for r in rows if r["kind"] == "option"),
    )


async def add_symbol(
    db: Db,
    kind: str,
    symbol: str,
    *,
    defaults: UniverseSpec | None = None,
    redis: aioredis.Redis | None = None,
) -> UniverseSpec:
    """Add ``symbol`` to the equities (``kind="equity"``) or option underlyings (``"option"``).

    Idempotent (adding a present symbol changes nothing). Raises :class:`InvalidSymbolError`
    or :class:`UniverseFullError`. Returns the new universe.
    """
    sym = normalize_symbol(kind, symbol)
    limit = MAX_EQUITIES if kind == "equity" else MAX_OPTION_UNDERLYINGS
    if defaults is not None:
        await seed_universe(db, defaults, redis=redis)
    async with _tx(db) as conn:
        # The state row lock serializes concurrent adds, so the bound holds.
        await conn.execute("SELECT 1 FROM control_state WHERE id FOR UPDATE")
        count = await conn.fetchval(
            "SELECT count(*) FILTER (WHERE symbol <> $2) FROM universe WHERE kind = $1", kind, sym
        )
        if int(count) >= limit:
            raise UniverseFullError(f"the universe already holds {limit} {kind} symbols")
        added = await conn.fetchval(
            "INSERT INTO universe (kind, symbol) VALUES ($1, $2) ON CONFLICT DO NOTHING "
            "RETURNING true",
            kind,
            sym,
        )
        version = await _bump(conn) if added else None
    if version is not None:
        log.info("universe: added %s %s", kind, sym)
        await notify(redis, version)
    return await read_universe(db)


async def remove_symbol(
    db: Db,
    kind: str,
    symbol: str,
    *,
    defaults: UniverseSpec | None = None,
    redis: aioredis.Redis | None = None,
) -> UniverseSpec:
    """Remove ``symbol``; :class:`SymbolNotFoundError` if it is not in the universe."""
    sym = normalize_symbol(kind, symbol)
    if defaults is not None:
        await seed_universe(db, defaults, redis=redis)
    async with _tx(db) as conn:
        gone = await conn.fetchval(
            "DELETE FROM universe WHERE kind = $1 AND symbol = $2 RETURNING true", kind, sym
        )
        if not gone:
            raise SymbolNotFoundError(f"{sym} is not in the {kind} universe")
        version = await _bump(conn)
    log.info("universe: removed %s %s", kind, sym)
    await notify(redis, version)
    return await read_universe(db)


# ------------------------------------------------------------------ pause flags


def check_service(service: str) -> str:
    """``service`` if it has a pause flag, else :class:`UnknownServiceError`."""
    if service not in PAUSABLE_SERVICES:
        raise UnknownServiceError(
            f"unknown service {service[:40]!r}; pausable: {', '.join(PAUSABLE_SERVICES)}"
        )
    return service


async def set_paused(
    db: Db,
    service: str,
    paused: bool,
    *,
    redis: aioredis.Redis | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> bool:
    """Pause or resume ``service`` (every instance of it); returns the new flag."""
    check_service(service)
    async with _tx(db) as conn:
        await conn.execute(
            "INSERT INTO service_pauses (service, paused, changed_at) VALUES ($1, $2, $3) "
            "ON CONFLICT (service) DO UPDATE SET paused = $2, changed_at = CASE "
            "WHEN service_pauses.paused IS DISTINCT FROM $2 THEN $3 "
            "ELSE service_pauses.changed_at END",
            service,
            paused,
            clock.now(),
        )
        version = await _bump(conn)
    log.warning("service %s %s", service, "PAUSED" if paused else "resumed")
    await notify(redis, version)
    return paused


async def is_paused(db: Db, service: str) -> bool:
    """True if ``service`` is paused (False for a service never paused)."""
    v = await db.fetchval("SELECT paused FROM service_pauses WHERE service = $1", service)
    return bool(v)


async def read_paused(db: Db) -> dict[str, bool]:
    """The pause flag of every pausable service."""
    rows = await db.fetch("SELECT service, paused FROM service_pauses")
    found = {r["service"]: bool(r["paused"]) for r in rows}
    return {name: found.get(name, False) for name in PAUSABLE_SERVICES}


async def read_snapshot(db: Db, *, defaults: UniverseSpec | None = None) -> ControlSnapshot:
    """Kill switch, universe and pause flags read in one repeatable-read transaction."""
    if defaults is not None:
        await seed_universe(db, defaults)
    async with _tx(db, isolation="repeatable_read", readonly=True) as conn:
        version = await read_version(conn)
        kill = await read_kill_switch(conn)
        universe = await read_universe(conn)
        paused = await read_paused(conn)
    return ControlSnapshot(version, kill, universe, frozenset(k for k, v in paused.items() if v))


@contextlib.asynccontextmanager
async def _tx(db: Db, **opts: Any) -> AsyncIterator[Conn]:
    """A transaction on a pool connection, or on ``db`` itself (a savepoint if in one)."""
    if isinstance(db, asyncpg.Pool):
        async with db.acquire() as conn, conn.transaction(**opts):
            yield conn
    else:
        async with db.transaction(**opts):
            yield db
