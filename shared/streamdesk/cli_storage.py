"""``streamdesk storage``: the storage budget guard, and ``storage compact``.

``streamdesk storage`` prints the size of each table and part (hot rows, packed chunks), the
bytes per stored sample, the days retained and the days until ``STORAGE_BUDGET_MB`` is reached
at the current rate. ``streamdesk storage compact`` moves every finished chunk from the hot
tables into packed rows (the indicators service does the same every
``STORAGE_COMPACT_INTERVAL`` seconds); it is idempotent and safe to interrupt.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from pydantic import Field

from .config import CommonSettings, load_settings


class StorageSettings(CommonSettings):
    """Settings of ``streamdesk storage``."""

    storage_budget_mb: float = Field(
        default=500.0, gt=0, description="Database size budget (Supabase free plan: 500 MB)."
    )
    retention_days: int = Field(default=7, ge=1, le=3650)


async def _report(settings: StorageSettings, as_json: bool) -> int:
    from .db import close_connection, connect
    from .storage import format_report, report

    conn = await connect(settings.database_url)
    try:
        rep = await report(conn, settings.storage_budget_mb, settings.retention_days)
    finally:
        await close_connection(conn)
    print(json.dumps(rep.as_dict(), indent=2) if as_json else format_report(rep))
    return 1 if rep.database_bytes >= 0.8 * rep.budget_bytes else 0


async def _compact(settings: StorageSettings, max_batches: int | None, batch_rows: int) -> int:
    from .db import close_connection, connect
    from .storage_compact import compact

    conn = await connect(settings.database_url)
    try:
        stats = await compact(conn, max_batches=max_batches, batch_rows=batch_rows)
    finally:
        await close_connection(conn)
    print(
        f"compacted {stats.rows} rows into {stats.chunks} chunks in {stats.batches} batch(es), "
        f"{stats.seconds:.2f} s; {stats.skipped} chunk(s) left hot"
    )
    return 0


def run(args: argparse.Namespace) -> int:
    """Entry point of the subcommand."""
    settings = load_settings(StorageSettings)
    if args.action == "compact":
        return asyncio.run(_compact(settings, args.max_batches, args.batch_rows))
    return asyncio.run(_report(settings, args.json))


def register(subparsers: Any) -> None:
    """Add ``storage`` to the ``streamdesk`` CLI."""
    p = subparsers.add_parser(
        "storage",
        help="storage budget: size per table and part, bytes per sample, days left; compact",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("action", nargs="?", choices=["report", "compact"], default="report")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("--max-batches", type=int, default=None, help="compact: stop after N batches")
    p.add_argument("--batch-rows", type=int, default=20_000, help="compact: rows per transaction")
    p.set_defaults(func=run)
