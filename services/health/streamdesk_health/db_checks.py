"""The Postgres checks: database size against the budget, newest rows, data freshness.

Like every check (:mod:`.checks`), each takes a :class:`~.checks.CheckContext` and returns a
ComponentResult; the queries are index probes (migrations 0050 and 0060).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import asyncpg

from streamdesk.market_calendar import current_session_open, next_open

from .checks import (
    LAST_OPTION,
    LAST_PER_TICKER,
    CheckContext,
    db_round,
    fmt_duration,
    last_equity_rows,
)
from .status import ComponentResult, Problems, Status

# --------------------------------------------------------------------------- postgres

_LAST_PER_TICKER = LAST_PER_TICKER
_LAST_OPTION = LAST_OPTION
#: The database is reported degraded from this share of HEALTH_DB_BUDGET_MB (Supabase's free
#: plan turns read-only at its limit; the indicators writer sheds load from 90%).
BUDGET_WARN_FRACTION = 0.8


async def last_rows_per_ticker(
    pool: asyncpg.Pool, table: str, tickers: list[str]
) -> dict[str, datetime | None]:
    """Timestamp of the newest row of each ticker in ``table`` (equity_data or indicators)."""
    if table not in {"equity_data", "indicators"}:
        raise ValueError(f"unsupported table {table!r}")
    rows = await pool.fetch(_LAST_PER_TICKER.format(table=table), tickers)
    return {r["ticker"]: r["last"] for r in rows}


async def postgres_result(ctx: CheckContext) -> ComponentResult:
    """Ping, age of the newest row per table, database size against the budget."""
    row = await db_round(ctx)
    size = int(row["size"])
    budget = int(ctx.settings.health_db_budget_mb * 2**20)
    ages: dict[str, float | None] = {}
    # option_prices is keyed by contract, not ticker: the (timestamp) index of migration 0050.
    for table, newest in (
        ("equity_data", max((v for v in last_equity_rows(row).values() if v), default=None)),
        ("indicators", row["ind_last"]),
        ("option_prices", row["opt_last"]),
    ):
        ages[table] = round(ctx.now_s - newest.timestamp(), 3) if newest else None
    figures: dict[str, Any] = {
        "database_size_bytes": size,
        "budget_bytes": budget,
        "budget_used_pct": round(100 * size / budget, 1),
        "last_row_age_s": ages,
    }
    problems = Problems()
    if size > budget:
        problems.add(
            Status.DEGRADED,
            f"database {size / 2**20:.0f} MB is over its {budget / 2**20:.0f} MB budget",
        )
    elif size >= BUDGET_WARN_FRACTION * budget:
        problems.add(
            Status.DEGRADED,
            f"database {size / 2**20:.0f} MB is {100 * size / budget:.0f}% of its "
            f"{budget / 2**20:.0f} MB budget (warning from {BUDGET_WARN_FRACTION:.0%}; "
            "see `streamdesk storage`)",
        )
    ok = f"{size / 2**20:.0f} MB of {budget / 2**20:.0f} MB budget"
    return problems.result("postgres", figures, ok_reason=ok)


# --------------------------------------------------------------------------- freshness


async def freshness_result(ctx: CheckContext) -> ComponentResult:
    """Age of each ticker's newest tick; alarmed only while the market is open.

    While open, staleness is counted from the later of the last row and the session open,
    so the first seconds after the bell are not an alarm.
    """
    s = ctx.settings
    last = last_equity_rows(await db_round(ctx))
    market_open = ctx.market_open
    session_open = current_session_open(ctx.now, s.market_hours)
    tickers: dict[str, Any] = {}
    stale: list[str] = []
    dead = 0
    for ticker in s.tickers:
        ts = last.get(ticker)
        age = ctx.now_s - ts.timestamp() if ts else math.inf
        ref = max(
            ts.timestamp() if ts else -math.inf,
            session_open.timestamp() if session_open else -math.inf,
        )
        effective = ctx.now_s - ref if ref > -math.inf else math.inf
        tickers[ticker] = {
            "last": ts.isoformat() if ts else None,
            "age_s": round(age, 3) if math.isfinite(age) else None,
        }
        if effective > s.health_freshness_max_age_s:
            stale.append(f"{ticker} {fmt_duration(age) if math.isfinite(age) else 'no data'}")
        if effective > s.health_freshness_down_age_s:
            dead += 1
    figures: dict[str, Any] = {"market_open": market_open, "tickers": tickers}
    problems = Problems()
    if not market_open:
        nxt = next_open(ctx.now, s.market_hours)
        if nxt is not None:
            figures["next_open"] = nxt.isoformat()
        return problems.result("freshness", figures, ok_reason="market closed")
    if stale and dead == len(s.tickers):
        problems.add(Status.DOWN, "no fresh data for any ticker: " + ", ".join(stale))
    elif stale:
        problems.add(Status.DEGRADED, "stale: " + ", ".join(stale))
    return problems.result("freshness", figures, ok_reason=f"{len(s.tickers)} ticker(s) fresh")
