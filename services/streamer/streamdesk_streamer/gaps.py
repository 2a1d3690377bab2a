"""Gap recording in ``stream_gaps``: one row per period without data.

A gap is opened (``ended_at`` NULL) as soon as the stream is lost, so health and the dashboard
see it while it lasts, and closed when data flows again. If the database is unreachable the
gap is kept in memory (bounded) and written on a later :meth:`GapRecorder.flush`. A gap left
open by a previous process (crash, restart) is adopted and closed when data flows, so the
outage across the restart is recorded as one gap.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

log = logging.getLogger(__name__)

SOURCE = "streamer"
_MAX_PENDING = 1000


@dataclass
class Gap:
    """One gap, as known in memory (``id`` None until inserted)."""

    started_at: datetime
    symbols: list[str]
    reason: str
    ended_at: datetime | None = None
    id: int | None = None


class GapRecorder:
    """Opens and closes rows of ``stream_gaps``; tolerant of database outages."""

    def __init__(self, pool: asyncpg.Pool | None, *, db_timeout: float = 5.0) -> None:
        self.pool = pool
        self.db_timeout = db_timeout
        self.current: Gap | None = None
        self._unwritten: deque[Gap] = deque(maxlen=_MAX_PENDING)
        self.recorded = 0
        self.db_errors = 0

    @property
    def is_open(self) -> bool:
        """Whether a gap is currently open."""
        return self.current is not None

    async def adopt_open(self) -> None:
        """Adopt the newest gap a previous streamer left open (closing older strays)."""
        if self.pool is None:
            return
        try:
            rows = await asyncio.wait_for(
                self.pool.fetch(
                    "SELECT id, started_at, symbols, reason FROM stream_gaps "
                    "WHERE source = $1 AND ended_at IS NULL ORDER BY started_at DESC",
                    SOURCE,
                ),
                self.db_timeout,
            )
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            self.db_errors += 1
            log.warning("could not look for open gaps: %s", exc)
            return
        if not rows:
            return
        newest = rows[0]
        self.current = Gap(
            newest["started_at"], list(newest["symbols"]), newest["reason"], id=newest["id"]
        )
        log.info("adopted open gap %s since %s", newest["id"], newest["started_at"])

    async def open(self, reason: str, symbols: list[str], at: datetime | None = None) -> None:
        """Open a gap now (no-op if one is open already)."""
        if self.current is not None:
            return
        self.current = Gap(at or datetime.now(UTC), list(symbols), reason)
        log.warning("stream gap opened: %s", reason)
        await self._write(self.current)

    async def close(self, at: datetime | None = None) -> Gap | None:
        """Close the open gap (if any) and return it."""
        gap = self.current
        if gap is None:
            return None
        gap.ended_at = at or datetime.now(UTC)
        self.current = None
        secs = (gap.ended_at - gap.started_at).total_seconds()
        log.info("stream gap closed after %.1fs (%s)", secs, gap.reason)
        if not await self._write(gap):
            self._unwritten.append(gap)
        return gap

    async def flush(self) -> None:
        """Retry writes that failed while the database was unreachable."""
        if self.current is not None and self.current.id is None:
            await self._write(self.current)
        while self._unwritten:
            gap = self._unwritten[0]
            if not await self._write(gap):
                return
            self._unwritten.popleft()

    async def _write(self, gap: Gap) -> bool:
        if self.pool is None:
            return False
        try:
            if gap.id is None:
                gap.id = await asyncio.wait_for(
                    self.pool.fetchval(
                        "INSERT INTO stream_gaps (source, started_at, ended_at, symbols, reason) "
                        "VALUES ($1, $2, $3, $4, $5) RETURNING id",
                        SOURCE,
                        gap.started_at,
                        gap.ended_at,
                        gap.symbols,
                        gap.reason[:500],
                    ),
                    self.db_timeout,
                )
                if gap.ended_at is not None:
                    self.recorded += 1
            elif gap.ended_at is not None:
                await asyncio.wait_for(
                    self.pool.execute(
                        "UPDATE stream_gaps SET ended_at = $2 WHERE id = $1",
                        gap.id,
                        gap.ended_at,
                    ),
                    self.db_timeout,
                )
                self.recorded += 1
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            self.db_errors += 1
            log.warning("could not write stream gap: %s", exc)
            return False
        return True

    @property
    def unwritten(self) -> int:
        """Gaps waiting for the database."""
        return len(self._unwritten) + (
            1 if self.current is not None and self.current.id is None else 0
        )
