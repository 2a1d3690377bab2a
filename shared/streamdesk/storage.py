"""Storage budget guard: sizes per table and part, bytes per sample, days left.

``streamdesk storage`` prints :func:`report` (``--json`` for the raw figures); the health
service and the indicators writer compare ``pg_database_size`` with the same budget.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import asyncpg

from .storage_layout import BARS, SPECS

_PART_SIZE = """
SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = $1::regclass
"""
_DAYS = """
SELECT count(DISTINCT d) FROM (
    SELECT substring(c.relname FROM '_p(\\d{8})$') AS d
    FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = ANY($1::regclass[]) AND c.reltuples > 0
) x
"""


@dataclass
class TableUsage:
    """One logical table: bytes and samples of its hot and packed parts."""

    table: str
    hot_bytes: int
    hot_rows: int
    packed_bytes: int
    packed_samples: int
    grid_share_bytes: int = 0

    @property
    def samples(self) -> int:
        return self.hot_rows + self.packed_samples

    @property
    def bytes(self) -> int:
        return self.hot_bytes + self.packed_bytes + self.grid_share_bytes

    @property
    def bytes_per_sample(self) -> float | None:
        return self.bytes / self.samples if self.samples else None

    @property
    def packed_bytes_per_sample(self) -> float | None:
        if not self.packed_samples:
            return None
        return (self.packed_bytes + self.grid_share_bytes) / self.packed_samples


@dataclass
class StorageReport:
    """Everything ``streamdesk storage`` prints."""

    database_bytes: int
    budget_bytes: int
    tables: list[TableUsage]
    grid_bytes: int
    bars_bytes: int  # hot + packed + grid (migration 0110)
    bars_rows: int
    days_retained: int
    retention_days: int
    per_day_bytes: float | None = None
    steady_state_bytes: float | None = None
    days_until_budget: float | None = None
    notes: list[str] = field(default_factory=list)
    bars_hot_bytes: int = 0
    bars_packed_bytes: int = 0  # packed chunks and their time axis (bars_grid)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready figures."""
        out = asdict(self)
        out["tables"] = [
            {
                **asdict(t),
                "bytes_per_sample": t.bytes_per_sample,
                "packed_bytes_per_sample": t.packed_bytes_per_sample,
            }
            for t in self.tables
        ]
        return out


async def _size(conn: asyncpg.Connection, parent: str) -> int:
    return int(await conn.fetchval(_PART_SIZE, parent))


async def report(conn: asyncpg.Connection, budget_mb: float, retention_days: int) -> StorageReport:
    """Measure the database (exact row counts of the hot tables; cheap otherwise)."""
    tables = []
    for spec in SPECS:
        hot_rows = int(await conn.fetchval(f"SELECT count(*) FROM {spec.hot}"))
        samples = int(await conn.fetchval(f"SELECT coalesce(sum(n), 0) FROM {spec.packed}"))
        tables.append(
            TableUsage(
                spec.view,
                await _size(conn, spec.hot),
                hot_rows,
                await _size(conn, spec.packed),
                samples,
            )
        )
    grid = await _size(conn, "storage_grid")
    total_packed = sum(t.packed_samples for t in tables)
    for t in tables:  # the grid serves every table: shared by packed samples
        t.grid_share_bytes = round(grid * t.packed_samples / total_packed) if total_packed else 0
    parents = [p for s in SPECS for p in (s.hot, s.packed)]
    bars_hot = int(await conn.fetchval("SELECT pg_total_relation_size('bars_1m_hot')"))
    bars_packed = await _size(conn, BARS.packed) + await _size(conn, BARS.grid)
    days = int(await conn.fetchval(_DAYS, parents))
    rep = StorageReport(
        database_bytes=int(await conn.fetchval("SELECT pg_database_size(current_database())")),
        budget_bytes=int(budget_mb * 2**20),
        tables=tables,
        grid_bytes=grid,
        bars_bytes=bars_hot + bars_packed,
        bars_rows=int(
            await conn.fetchval(  # hot + packed (a hot bar inside a packed chunk: counted twice)
                "SELECT (SELECT count(*) FROM bars_1m_hot) "
                "+ (SELECT coalesce(sum(n), 0) FROM bars_1m_packed)"
            )
        ),
        bars_hot_bytes=bars_hot,
        bars_packed_bytes=bars_packed,
        days_retained=days,
        retention_days=retention_days,
    )
    per_second = sum(t.bytes for t in tables)
    if days:
        rep.per_day_bytes = per_second / days
        fixed = rep.database_bytes - per_second
        # retention keeps RETENTION_DAYS calendar days: ~5/7 of them are trading days
        rep.steady_state_bytes = fixed + rep.per_day_bytes * max(1.0, retention_days * 5 / 7)
        room = rep.budget_bytes - rep.database_bytes
        if rep.steady_state_bytes <= rep.budget_bytes:
            rep.notes.append("steady state at RETENTION_DAYS fits the budget")
        rep.days_until_budget = max(0.0, room / rep.per_day_bytes) if rep.per_day_bytes else None
    hot = sum(t.hot_rows for t in tables)
    if hot > 2_000_000:
        rep.notes.append(f"{hot} rows are still hot: is compaction running?")
    return rep


def format_report(rep: StorageReport) -> str:
    """Human-readable table."""
    mb = 2**20
    lines = [
        f"database {rep.database_bytes / mb:.1f} MB of {rep.budget_bytes / mb:.0f} MB budget "
        f"({100 * rep.database_bytes / rep.budget_bytes:.1f}%)",
        "",
        f"{'table':<15}{'part':<8}{'MB':>10}{'samples':>14}{'B/sample':>10}",
    ]
    for t in rep.tables:
        hot_bps = t.hot_bytes / t.hot_rows if t.hot_rows else None
        for part, size, n, bps in (
            ("hot", t.hot_bytes, t.hot_rows, hot_bps),
            (
                "packed",
                t.packed_bytes + t.grid_share_bytes,
                t.packed_samples,
                t.packed_bytes_per_sample,
            ),
            ("total", t.bytes, t.samples, t.bytes_per_sample),
        ):
            lines.append(
                f"{t.table:<15}{part:<8}{size / mb:>10.2f}{n:>14,}"
                f"{'' if bps is None else f'{bps:.1f}':>10}"
            )
    lines.append(f"{'storage_grid':<23}{rep.grid_bytes / mb:>10.2f}  (in packed above)")
    lines.append(f"{'bars_1m':<15}{'hot':<8}{rep.bars_hot_bytes / mb:>10.2f}")
    lines.append(
        f"{'bars_1m':<15}{'packed':<8}{rep.bars_packed_bytes / mb:>10.2f}  (with bars_grid)"
    )
    per_bar = f"{rep.bars_bytes / rep.bars_rows:.1f}" if rep.bars_rows else ""
    lines.append(
        f"{'bars_1m':<15}{'total':<8}{rep.bars_bytes / mb:>10.2f}{rep.bars_rows:>14,}{per_bar:>10}"
    )
    lines.append("")
    lines.append(
        f"days with per-second data: {rep.days_retained} (RETENTION_DAYS {rep.retention_days})"
    )
    if rep.per_day_bytes is not None:
        lines.append(f"per-second data per day: {rep.per_day_bytes / mb:.1f} MB")
    if rep.steady_state_bytes is not None:
        lines.append(f"steady state at retention: {rep.steady_state_bytes / mb:.0f} MB")
    if rep.days_until_budget is not None:
        lines.append(f"days until the budget at the current rate: {rep.days_until_budget:.1f}")
    lines += rep.notes
    return "\n".join(lines)
