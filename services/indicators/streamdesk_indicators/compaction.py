"""The indicators service's periodic compaction task (see streamdesk.storage_compact).

Every ``STORAGE_COMPACT_INTERVAL`` seconds (0 = off; then run ``streamdesk storage compact``
from cron instead) it opens its own connection and moves every finished chunk into packed
rows, batch by batch, each batch one transaction. Failures are counted and retried
(compaction is idempotent): temporary ones (``streamdesk.errors.POSTGRES_TEMPORARY``) after a
``streamdesk.backoff.Backoff`` delay capped at the interval, logged at WARNING; other database
errors at the next round, logged at ERROR. Memory: one batch (``STORAGE_COMPACT_BATCH_ROWS``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import asyncpg

from streamdesk.backoff import Backoff
from streamdesk.db import close_connection, connect
from streamdesk.errors import POSTGRES_TEMPORARY
from streamdesk.shutdown import GracefulShutdown, log_task_exception
from streamdesk.storage_compact import compact

log = logging.getLogger(__name__)


class CompactionTask:
    """Owns the compaction loop; ``start``/``stop`` from the service, counters for beats."""

    def __init__(
        self, dsn: str, interval: float, shutdown: GracefulShutdown, batch_rows: int = 20_000
    ) -> None:
        self.dsn = dsn
        self.interval = interval
        self.shutdown = shutdown
        self.batch_rows = batch_rows
        self.task: asyncio.Task[None] | None = None
        self.runs = 0
        self.rows = 0
        self.chunks = 0
        self.errors = 0
        self.last_seconds = 0.0

    def counters(self) -> dict[str, Any]:
        """Heartbeat counters."""
        return {
            "compactions": self.runs,
            "compacted_rows": self.rows,
            "compacted_chunks": self.chunks,
            "compact_errors": self.errors,
            "compact_last_s": round(self.last_seconds, 3),
        }

    async def run_once(self) -> None:
        """One compaction round on a fresh connection."""
        conn = await connect(self.dsn)
        try:
            stats = await compact(conn, batch_rows=self.batch_rows)
        finally:
            await close_connection(conn)
        self.runs += 1
        self.rows += stats.rows
        self.chunks += stats.chunks
        self.last_seconds = stats.seconds

    async def _loop(self) -> None:
        # a blip is retried sooner than a whole interval later, an outage at most every interval
        backoff = Backoff(min(5.0, self.interval), self.interval)
        wait = self.interval
        while not await self.shutdown.wait(wait):
            wait = self.interval
            try:
                await self.run_once()
            except POSTGRES_TEMPORARY as exc:
                self.errors += 1
                wait = backoff.next_delay()
                log.warning(
                    "compaction failed (retried in %.1fs): %s: %s", wait, type(exc).__name__, exc
                )
            except asyncpg.PostgresError as exc:  # not temporary (e.g. a missing migration)
                self.errors += 1
                log.error("compaction failed (retried next round): %s: %s", type(exc).__name__, exc)
            else:
                backoff.reset()

    def start(self) -> None:
        """Start the loop (no-op if the interval is 0)."""
        if self.interval <= 0 or self.task is not None:
            return
        self.task = asyncio.create_task(self._loop(), name="indicators-compaction")
        self.task.add_done_callback(log_task_exception)

    async def stop(self, timeout: float = 5.0) -> None:
        """Cancel the loop; a batch in flight rolls back (bounded wait)."""
        task, self.task = self.task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(task, timeout)
