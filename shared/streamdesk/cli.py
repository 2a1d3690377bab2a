"""``streamdesk``: the admin CLI (migrations, partitions, health check, Schwab login, storage,
operators).

Subcommands live in small modules that expose ``register(subparsers)``; each registered
``func(args) -> int`` returns the process exit code.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import sys
from collections.abc import Sequence

from pydantic import Field

from .config import CommonSettings, ConfigError, load_settings
from .log import setup_logging

log = logging.getLogger("streamdesk.cli")

#: Modules contributing subcommands besides the built-in ones (each has ``register``).
EXTRA_COMMAND_MODULES = (
    "streamdesk.cli_health",
    "streamdesk.cli_auth",
    "streamdesk.cli_storage",
    "streamdesk.cli_operators",
    "streamdesk.cli_budget",
    "streamdesk.cli_strategy",
    "streamdesk.cli_backfill",
    "streamdesk.cli_backtest",
    "streamdesk.cli_report",
)


class AdminSettings(CommonSettings):
    """Settings of the admin CLI."""

    retention_days: int = Field(default=7, ge=1, le=3650)
    bars_retention_days: int = Field(default=400, ge=1, le=36500)
    partition_days_ahead: int = Field(default=3, ge=1, le=60)


async def _migrate(settings: AdminSettings, directory: str | None) -> int:
    from .db import close_connection, connect
    from .migrate import find_migrations_dir, migrate
    from .partitions import ensure_partitions

    conn = await connect(settings.database_url)
    try:
        done = await migrate(conn, find_migrations_dir(directory))
        created = await ensure_partitions(conn, settings.partition_days_ahead)
    finally:
        await close_connection(conn)
    if done:
        print(f"applied {len(done)} migration(s): {', '.join(done)}")
    else:
        print("database is up to date; nothing to apply")
    if created:
        print(f"created {len(created)} partition(s)")
    return 0


async def _partitions(settings: AdminSettings, dry_run: bool) -> int:
    from datetime import UTC, datetime, timedelta

    from .db import close_connection, connect
    from .partitions import (
        drop_expired_bar_partitions,
        drop_expired_partitions,
        ensure_partitions,
        list_partitions,
    )

    conn = await connect(settings.database_url)
    try:
        if dry_run:
            cutoff = datetime.now(UTC).date() - timedelta(days=settings.retention_days)
            for table in ("equity_data", "indicators", "option_prices"):
                for name, day in await list_partitions(conn, table):
                    print(f"{name}: {'would drop' if day < cutoff else 'keep'}")
            return 0
        created = await ensure_partitions(conn, settings.partition_days_ahead)
        dropped = await drop_expired_partitions(conn, settings.retention_days)
        # bars: whole months of packed bars go with their partitions; what is still hot that
        # old is a leftover that could not be packed (normally nothing)
        bar_parts = await drop_expired_bar_partitions(conn, settings.bars_retention_days)
        bars = await conn.execute(
            "DELETE FROM bars_1m_hot WHERE bucket < now() - make_interval(days => $1)",
            settings.bars_retention_days,
        )
    finally:
        await close_connection(conn)
    print(
        f"created {len(created)} partition(s), dropped {len(dropped)}; bars_1m: "
        f"{len(bar_parts)} monthly partition(s) dropped, hot leftovers {bars}"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every available subcommand."""
    parser = argparse.ArgumentParser(prog="streamdesk", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("migrate", help="apply pending database migrations (and partitions)")
    p.add_argument("--dir", default=None, help="migrations directory (default: ./migrations)")
    p.set_defaults(func=lambda a: asyncio.run(_migrate(_settings(), a.dir)))

    p = sub.add_parser(
        "partitions", help="create upcoming daily partitions and drop those past RETENTION_DAYS"
    )
    p.add_argument("--dry-run", action="store_true", help="only list what would be dropped")
    p.set_defaults(func=lambda a: asyncio.run(_partitions(_settings(), a.dry_run)))

    for name in EXTRA_COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(sub)
    return parser


def _settings() -> AdminSettings:
    return load_settings(AdminSettings)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``streamdesk``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging("streamdesk", "INFO", "text" if sys.stderr.isatty() else "auto")
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"streamdesk: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        from .migrate import MigrationError

        if isinstance(exc, MigrationError | OSError):
            print(f"streamdesk {args.command}: {exc}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
