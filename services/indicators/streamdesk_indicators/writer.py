"""The database side: checkpoints, and one transaction per flush.

A flush is: ensure the day partitions exist (cached), then in ONE transaction

1. fence: advance each partition's committed stream id, but only if our ownership epoch is
   still current (another owner bumps it; then nothing is written and we rebuild);
2. binary COPY of the rows into temporary staging tables (``ON COMMIT DELETE ROWS``);
3. ``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` into the real tables, except for the
   few rows that overwrite a provisional row of a still-open second (flag ``upd``), which use
   ``ON CONFLICT DO UPDATE``; 1-minute bars are always upserted;
4. upsert the engine state of every touched symbol;

then COMMIT. asyncpg needs a session-level connection (Supabase direct or session pooler);
the transaction pooler breaks its prepared statements and temporary tables.

Storage (migration 0060): the rows go to the hot tables behind the ``equity_data`` /
``indicators`` / ``option_prices`` views. Each commit holds the storage lock shared (compaction
takes it exclusively per batch) and skips rows of chunks that are already compacted (only a
replay of identical rows can target one), so a row is never both hot and packed. Option rows
pass through the load shedder (``shedding.py``) first.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg

from streamdesk.db import close_connection
from streamdesk.partitions import ensure_partition
from streamdesk.storage_compact import STORAGE_LOCK_KEY

from .engine import DAY_MS, BarRow, OptRow, SecRow
from .indicators import columns
from .shedding import DEFAULT_THRESHOLDS, Shedder

log = logging.getLogger(__name__)

PARTITIONED = ("equity_data", "indicators", "option_prices")


class FencedError(RuntimeError):
    """Another process took over a partition: our in-memory state must be rebuilt."""


@dataclass
class PartitionOffset:
    """Commit position of one stream in a batch."""

    stream: str
    last_id: str
    epoch: int


@dataclass
class Batch:
    """Everything one flush commits."""

    seconds: list[SecRow] = field(default_factory=list)
    options: list[OptRow] = field(default_factory=list)
    bars: list[BarRow] = field(default_factory=list)
    states: list[tuple[str, str, str, bytes]] = field(default_factory=list)  # sym,stream,kind
    offsets: list[PartitionOffset] = field(default_factory=list)
    acks: dict[str, list[bytes]] = field(default_factory=dict)
    days: set[int] = field(default_factory=set)

    @property
    def rows(self) -> int:
        return len(self.seconds) + len(self.options) + len(self.bars)


@dataclass
class Checkpoint:
    """What a new owner of a partition loads."""

    last_id: str
    epoch: int
    states: list[tuple[str, str, bytes]]  # symbol, kind, blob


def _stg_sec_cols() -> list[str]:
    return ["ticker", "ms", "price", "volume", "bid", "ask", "cum_volume", *columns(), "upd"]


_STG_OPT_COLS = [
    "ticker",
    "ms",
    "underlying",
    "option_type",
    "strike_price",
    "expiration_date",
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
    "upd",
]
_STG_BAR_COLS = ["ticker", "ms", "open", "high", "low", "close", "volume", "vwap"]
_STG_STATE_COLS = ["symbol", "stream", "kind", "state"]
_TS = "(timestamptz 'epoch' + s.ms * interval '1 millisecond')"


def _not_packed(packed: str) -> str:
    return (
        f"NOT EXISTS (SELECT 1 FROM {packed} p WHERE p.ticker = s.ticker "
        f"AND p.t0 = storage_chunk_start({_TS}))"
    )


def _setup_sql() -> str:
    ind_cols = ", ".join(f"{c} double precision" for c in columns())
    return f"""
    CREATE TEMP TABLE IF NOT EXISTS stg_sec (
        ticker text, ms bigint, price double precision, volume bigint,
        bid double precision, ask double precision, cum_volume bigint, {ind_cols}, upd boolean
    ) ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE IF NOT EXISTS stg_opt (
        ticker text, ms bigint, underlying text, option_type text,
        strike_price double precision, expiration_date date, last_price double precision,
        bid double precision, ask double precision, delta double precision,
        gamma double precision, theta double precision, vega double precision,
        rho double precision, implied_volatility double precision, volume bigint,
        open_interest bigint, underlying_price double precision, upd boolean
    ) ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE IF NOT EXISTS stg_bar (
        ticker text, ms bigint, open double precision, high double precision,
        low double precision, close double precision, volume bigint, vwap double precision
    ) ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE IF NOT EXISTS stg_state (
        symbol text, stream text, kind text, state bytea
    ) ON COMMIT DELETE ROWS;
    """


def _merge_sql() -> list[str]:
    ind = columns()
    ind_list = ", ".join(ind)
    ind_sel = ", ".join(f"s.{c}" for c in ind)
    ind_set = ", ".join(f"{c} = EXCLUDED.{c}" for c in ind)
    opt_cols = _STG_OPT_COLS[2:-1]
    opt_list = ", ".join(opt_cols)
    opt_sel = ", ".join(f"s.{c}" for c in opt_cols)
    opt_set = ", ".join(f"{c} = EXCLUDED.{c}" for c in opt_cols)
    key = '(ticker, "timestamp")'
    stmts = []
    for upd, conflict_eq, conflict_ind, conflict_opt in (
        ("NOT s.upd", "DO NOTHING", "DO NOTHING", "DO NOTHING"),
        (
            "s.upd",
            "DO UPDATE SET price = EXCLUDED.price, volume = EXCLUDED.volume, "
            "bid = EXCLUDED.bid, ask = EXCLUDED.ask, cum_volume = EXCLUDED.cum_volume",
            f"DO UPDATE SET {ind_set}",
            f"DO UPDATE SET {opt_set}",
        ),
    ):
        stmts.append(
            'INSERT INTO equity_data_hot (ticker, "timestamp", price, volume, bid, ask, '
            f"cum_volume) SELECT s.ticker, {_TS}, s.price, s.volume, s.bid, s.ask, s.cum_volume "
            f"FROM stg_sec s WHERE {upd} AND {_not_packed('equity_data_packed')} "
            f"ON CONFLICT {key} {conflict_eq}"
        )
        stmts.append(
            f'INSERT INTO indicators_hot (ticker, "timestamp", {ind_list}) '
            f"SELECT s.ticker, {_TS}, {ind_sel} FROM stg_sec s "
            f"WHERE {upd} AND {_not_packed('indicators_packed')} "
            f"ON CONFLICT {key} {conflict_ind}"
        )
        stmts.append(
            f'INSERT INTO option_prices_hot (ticker, "timestamp", {opt_list}) '
            f"SELECT s.ticker, {_TS}, {opt_sel} FROM stg_opt s "
            f"WHERE {upd} AND {_not_packed('option_prices_packed')} "
            f"ON CONFLICT {key} {conflict_opt}"
        )
    # the views' time axis: every second written (shared by all instruments, tiny)
    stmts.append(
        "INSERT INTO storage_grid (ts, t0, pos) "
        "SELECT t, storage_chunk_start(t), storage_grid_pos(t) FROM ("
        f"SELECT {_TS} AS t FROM stg_sec s UNION SELECT {_TS} FROM stg_opt s) x "
        "ON CONFLICT DO NOTHING"
    )
    stmts.append(
        "INSERT INTO bars_1m_hot (ticker, bucket, open, high, low, close, volume, vwap) "
        f"SELECT s.ticker, {_TS}, s.open, s.high, s.low, s.close, s.volume, s.vwap "
        "FROM stg_bar s ON CONFLICT (ticker, bucket) DO UPDATE SET open = EXCLUDED.open, "
        "high = EXCLUDED.high, low = EXCLUDED.low, close = EXCLUDED.close, "
        "volume = EXCLUDED.volume, vwap = EXCLUDED.vwap"
    )
    stmts.append(
        "INSERT INTO indicator_state (symbol, stream, kind, state, updated_at) "
        "SELECT s.symbol, s.stream, s.kind, s.state, now() FROM stg_state s "
        "ON CONFLICT (symbol) DO UPDATE SET stream = EXCLUDED.stream, kind = EXCLUDED.kind, "
        "state = EXCLUDED.state, updated_at = EXCLUDED.updated_at"
    )
    return stmts


_FENCE_SQL = """
UPDATE indicator_offsets o SET last_id = u.last_id, updated_at = now()
FROM unnest($1::text[], $2::text[], $3::bigint[]) AS u(stream, last_id, epoch)
WHERE o.stream = u.stream AND o.epoch = u.epoch
RETURNING o.stream
"""


class Writer:
    """Owns one database connection (temporary staging tables live in its session)."""

    def __init__(
        self,
        dsn: str,
        *,
        connect_timeout: float = 10.0,
        command_timeout: float = 30.0,
        budget_mb: float = 0.0,
        shed_thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS,
        size_check_interval: float = 30.0,
    ) -> None:
        self.dsn = dsn
        self.connect_timeout = connect_timeout
        self.command_timeout = command_timeout
        self.conn: asyncpg.Connection | None = None
        self._days_done: set[int] = set()
        self._merge = _merge_sql()
        #: storage budget (0 = no shedding) and the shedder applied to option rows
        self.budget_bytes = int(budget_mb * 2**20)
        self.shed_thresholds = shed_thresholds
        self.size_check_interval = size_check_interval
        self.shedder = Shedder()
        self._size_checked = -float("inf")

    async def _connection(self) -> asyncpg.Connection:
        if self.conn is not None and not self.conn.is_closed():
            return self.conn
        self.conn = None
        conn = await asyncpg.connect(
            self.dsn,
            timeout=self.connect_timeout,
            command_timeout=self.command_timeout,
            # XACK follows COMMIT, so a COMMIT must be durable when it returns, whatever the
            # server default (synchronous_commit=off could lose acknowledged ticks in a crash)
            server_settings={
                "application_name": "streamdesk-indicators",
                "synchronous_commit": "on",
            },
        )
        try:
            await conn.execute(_setup_sql())
        except BaseException:
            conn.terminate()
            raise
        self.conn = conn
        return conn

    async def reset(self) -> None:
        """Drop the connection (after an error); the next call reconnects."""
        conn, self.conn = self.conn, None
        if conn is not None:
            await close_connection(conn, timeout=2.0)

    async def close(self) -> None:
        """Close the connection within a bounded time."""
        await self.reset()

    async def ping(self) -> None:
        """One round trip (reconnecting if needed): is the database reachable?"""
        conn = await self._connection()
        await conn.fetchval("SELECT 1")

    async def load_checkpoint(self, stream: str, owner: str) -> Checkpoint:
        """Take ownership of ``stream`` (bump its epoch) and load its committed state."""
        conn = await self._connection()
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO indicator_offsets (stream) VALUES ($1) ON CONFLICT DO NOTHING",
                stream,
            )
            row = await conn.fetchrow(
                "UPDATE indicator_offsets SET epoch = epoch + 1, owner = $2, updated_at = now() "
                "WHERE stream = $1 RETURNING last_id, epoch",
                stream,
                owner,
            )
            assert row is not None
            states = await conn.fetch(
                "SELECT symbol, kind, state FROM indicator_state WHERE stream = $1", stream
            )
        return Checkpoint(row["last_id"], row["epoch"], [(r[0], r[1], bytes(r[2])) for r in states])

    async def _ensure_days(self, conn: asyncpg.Connection, days: set[int]) -> None:
        for day in sorted(days - self._days_done):
            d = datetime.fromtimestamp(day * DAY_MS / 1000, UTC).date()
            for table in PARTITIONED:
                await ensure_partition(conn, table, d)
            self._days_done.add(day)
            if len(self._days_done) > 400:  # bounded; re-checking a day is harmless
                self._days_done = {day}

    async def check_size(self, conn: asyncpg.Connection) -> None:
        """Measure the database against the budget (at most every ``size_check_interval``)."""
        now = time.monotonic()
        if not self.budget_bytes or now - self._size_checked < self.size_check_interval:
            return
        self._size_checked = now
        size = int(await conn.fetchval("SELECT pg_database_size(current_database())"))
        self.shedder.set_size(size, self.budget_bytes, self.shed_thresholds)

    async def commit(self, batch: Batch) -> None:
        """Write ``batch`` in one transaction; raise :class:`FencedError` if we lost a partition."""
        conn = await self._connection()
        if batch.days:
            await self._ensure_days(conn, batch.days)
        await self.check_size(conn)
        options = self.shedder.apply(batch.options)
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock_shared($1)", STORAGE_LOCK_KEY)
            if batch.offsets:
                fenced = await conn.fetch(
                    _FENCE_SQL,
                    [o.stream for o in batch.offsets],
                    [o.last_id for o in batch.offsets],
                    [o.epoch for o in batch.offsets],
                )
                if len(fenced) != len(batch.offsets):
                    lost = {o.stream for o in batch.offsets} - {r[0] for r in fenced}
                    raise FencedError(f"partition(s) taken over by another owner: {sorted(lost)}")
            if batch.seconds:
                await conn.copy_records_to_table(
                    "stg_sec", records=batch.seconds, columns=_stg_sec_cols()
                )
            if options:
                await conn.copy_records_to_table("stg_opt", records=options, columns=_STG_OPT_COLS)
            if batch.bars:
                await conn.copy_records_to_table(
                    "stg_bar", records=batch.bars, columns=_STG_BAR_COLS
                )
            if batch.states:
                await conn.copy_records_to_table(
                    "stg_state", records=batch.states, columns=_STG_STATE_COLS
                )
            for i, stmt in enumerate(self._merge):
                if self._needed(i, batch, bool(options)):
                    await conn.execute(stmt)

    @staticmethod
    def _needed(i: int, batch: Batch, options: bool) -> bool:
        # statement order: (eq, ind, opt) x (insert, update), grid, bars, state
        if i < 6:
            return options if i % 3 == 2 else bool(batch.seconds)
        if i == 6:
            return options or bool(batch.seconds)
        return bool(batch.bars) if i == 7 else bool(batch.states)
