"""Ordered plain-SQL migrations.

Files ``NNNN_name.sql`` in the migrations directory are applied in name order, each in its own
transaction, and recorded in ``schema_migrations`` with a SHA-256 checksum. Re-running is a
no-op; a file that changed after it was applied is refused (:class:`MigrationError`).
Concurrent runners serialize on an advisory lock.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

log = logging.getLogger(__name__)

_NAME_RE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_LOCK_ID = 0x5D_0001  # advisory lock key for migrations

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    text PRIMARY KEY,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


class MigrationError(Exception):
    """A migration cannot be applied safely."""


@dataclass(frozen=True)
class Migration:
    """One migration file."""

    version: str
    path: Path
    sql: str
    checksum: str


def find_migrations_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Locate ``migrations/``: the argument, ``$MIGRATIONS_DIR``, or up from cwd / this file."""
    if explicit is not None:
        return Path(explicit)
    env = os.environ.get("MIGRATIONS_DIR")
    if env:
        return Path(env)
    for start in (Path.cwd(), Path(__file__).resolve().parent):
        for candidate in (start, *start.parents):
            if (candidate / "migrations" / "0001_supabase_compat.sql").is_file():
                return candidate / "migrations"
    raise MigrationError("migrations directory not found; set MIGRATIONS_DIR")


def load_migrations(directory: Path) -> list[Migration]:
    """Read and validate the migration files in ``directory``, ordered by version."""
    if not directory.is_dir():
        raise MigrationError(f"migrations directory {directory} does not exist")
    migrations: list[Migration] = []
    seen: dict[str, Path] = {}
    for path in sorted(directory.glob("*.sql")):
        m = _NAME_RE.match(path.name)
        if not m:
            raise MigrationError(f"bad migration file name {path.name!r} (want NNNN_name.sql)")
        if m[1] in seen:
            raise MigrationError(f"two migrations numbered {m[1]}: {seen[m[1]].name}, {path.name}")
        seen[m[1]] = path
        sql = path.read_text(encoding="utf-8")
        migrations.append(Migration(path.stem, path, sql, hashlib.sha256(sql.encode()).hexdigest()))
    return migrations


async def applied_migrations(conn: asyncpg.Connection) -> dict[str, str]:
    """Applied versions and their checksums."""
    rows = await conn.fetch("SELECT version, checksum FROM schema_migrations")
    return {r["version"]: r["checksum"] for r in rows}


async def migrate(conn: asyncpg.Connection, directory: Path | None = None) -> list[str]:
    """Apply pending migrations; return the versions applied (empty when up to date)."""
    migrations = load_migrations(directory or find_migrations_dir())
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_ID)
    try:
        await conn.execute(_CREATE_TABLE)
        applied = await applied_migrations(conn)
        by_version = {m.version: m for m in migrations}
        for version, checksum in applied.items():
            mig = by_version.get(version)
            if mig is not None and mig.checksum != checksum:
                raise MigrationError(
                    f"migration {version} was edited after it was applied "
                    f"(checksum {checksum[:12]} in the database, {mig.checksum[:12]} on disk); "
                    "never edit an applied migration, add a new one"
                )
        done: list[str] = []
        for mig in migrations:
            if mig.version in applied:
                continue
            log.info("applying migration %s", mig.version)
            try:
                async with conn.transaction():
                    await conn.execute(mig.sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, checksum) VALUES ($1, $2)",
                        mig.version,
                        mig.checksum,
                    )
            except asyncpg.PostgresError as exc:
                raise MigrationError(f"migration {mig.version} failed: {exc}") from exc
            done.append(mig.version)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_ID)
