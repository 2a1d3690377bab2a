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

from .checks import CheckContext, fmt_duration
from .status import ComponentResult, Problems, Status

# --------------------------------------------------------------------------- postgres

#: Newest row per configured ticker, one index probe each in the hot rows (PK is (ticker,
#: timestamp)) and in the compacted chunks (PK (ticker, t0); t1 = the chunk's last row): the
#: same rows as the view ``{table}``, without walking its whole time grid for a ticker that
#: has no compacted data (migration 0060).
_LAST_PER_TICKER = """
SELECT t.ticker, GREATEST(
    (SELECT max(x."timestamp") FROM {table}_hot x WHERE x.ticker = t.ticker),
    (SELECT p.t1 FROM {table}_packed p WHERE p.ticker = t.ticker ORDER BY p.t0 DESC LIMIT 1)
) AS last
FROM unnest($1::text[]) AS t(ticker)
"""
#: Newest option row (any contract): the (timestamp) index of migration 0050 on the hot rows,
#: the chunk with the latest start among the compacted ones.
_LAST_OPTION = """
SELECT GREATEST(
    (SELECT max("timestamp") FROM option_prices_hot),
    (SELECT t1 FROM option_prices_packed ORDER BY t0 DESC LIMIT 1)
)
"""
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
    pool = await ctx.get_pool()
    size = int(await pool.fetchval("SELECT pg_database_size(current_database())"))
    budget = int(ctx.settings.health_db_budget_mb * 2**20)
    tickers = ctx.settings.tickers
    ages: dict[str, float | None] = {}
    for table in ("equity_data", "indicators"):
        last = [v for v in (await last_rows_per_ticker(pool, table, tickers)).values() if v]
        ages[table] = round(ctx.now_s - max(last).timestamp(), 3) if last else None
    # option_prices is keyed by contract, not ticker: the (timestamp) index of migration 0050.
    opt_last = await pool.fetchval(_LAST_OPTION)
    ages["option_prices"] = round(ctx.now_s - opt_last.timestamp(), 3) if opt_last else None
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
    pool = await ctx.get_pool()
    last = await last_rows_per_ticker(pool, "equity_data", s.tickers)
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
