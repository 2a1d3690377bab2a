"""Creating and dropping the per-test databases (clones of the migrated template)."""

from __future__ import annotations

import asyncpg


async def create_database(admin_dsn: str, name: str, template: str | None = None) -> None:
    """``CREATE DATABASE name [TEMPLATE template]`` through a short admin connection."""
    admin = await asyncpg.connect(admin_dsn)
    try:
        tpl = f' TEMPLATE "{template}"' if template else ""
        await admin.execute(f'CREATE DATABASE "{name}"{tpl}')
        if template:
            # A clone does not inherit the template's per-database settings: restore what the
            # storage migration sets (jit = off), or queries on the storage views spend
            # seconds in JIT compilation.
            await admin.execute(f'ALTER DATABASE "{name}" SET jit = off')
    finally:
        await admin.close()


async def drop_database(admin_dsn: str, name: str) -> None:
    """Drop ``name``, disconnecting whoever is still connected."""
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
