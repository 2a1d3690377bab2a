"""``streamdesk report``: P&L per strategy for one New York day, from real fills.

  streamdesk report --day YYYY-MM-DD [--strategy ID] [--json]

Fills are the ``trades`` rows with a filled quantity (paper or live, as the executor synced
them), at their average fill price and at the time of their last status change. Realized P&L
is by average cost (:mod:`streamdesk.pnl`, as the gateway's P&L view): every fill of the
strategy up to the end of the day is replayed, and the day's figure is what the fills of that
day realized. Unrealized is the position at the end of the day marked at the last 1-minute
close of that day (``bars_1m``). Orders without a strategy are reported as ``(manual)``.

Exit codes: 0 done, 1 database error, 2 bad usage.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from .config import CommonSettings, ConfigError, load_settings
from .pnl import ZERO, Book, multiplier, signed_quantity

NY = ZoneInfo("America/New_York")
MANUAL = "(manual)"

FILLS_SQL = """
SELECT t.id, t.strategy_id, t.symbol, t.asset_type, t.instruction, t.filled_quantity,
       t.avg_fill_price, t.paper,
       COALESCE((SELECT max(e.at) FROM trade_events e WHERE e.trade_id = t.id), t.updated_at)
           AS filled_at
FROM trades t
WHERE t.filled_quantity > 0 AND t.avg_fill_price IS NOT NULL
  AND ($1::text IS NULL OR t.strategy_id = $1)
ORDER BY filled_at, t.id
"""
MARK_SQL = """
SELECT close FROM bars_1m WHERE ticker = $1 AND bucket < $2 ORDER BY bucket DESC LIMIT 1
"""


@dataclass(frozen=True, slots=True)
class ReportFill:
    """One order's fills as the report uses them."""

    strategy: str
    symbol: str
    asset_type: str
    instruction: str
    quantity: Decimal
    price: Decimal
    at: datetime
    paper: bool


@dataclass(slots=True)
class StrategyDay:
    """One strategy's figures for the day."""

    strategy: str
    fills: int = 0
    bought: Decimal = ZERO
    sold: Decimal = ZERO
    realized: Decimal = ZERO
    unrealized: Decimal | None = ZERO
    paper: bool = True
    positions: dict[str, Decimal] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (amounts as strings with cents)."""
        return {
            "strategy": self.strategy,
            "fills": self.fills,
            "bought": str(self.bought),
            "sold": str(self.sold),
            "realized": f"{self.realized:.2f}",
            "unrealized": None if self.unrealized is None else f"{self.unrealized:.2f}",
            "paper": self.paper,
            "positions": {k: str(v) for k, v in sorted(self.positions.items()) if v},
        }


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """Start and end of the New York day ``day``."""
    start = datetime(day.year, day.month, day.day, tzinfo=NY)
    return start, start + timedelta(days=1)


def report_day(
    fills: Iterable[ReportFill], day: date, marks: dict[str, Decimal | None]
) -> list[StrategyDay]:
    """Per strategy: the day's fills and realized P&L (average cost over the strategy's whole
    history up to the end of the day) and the end-of-day unrealized P&L at ``marks``."""
    start, end = day_bounds(day)
    books: dict[tuple[str, str], tuple[Book, str]] = {}
    out: dict[str, StrategyDay] = {}
    for f in sorted(fills, key=lambda f: f.at):
        if f.at >= end:
            continue
        book, _ = books.setdefault((f.strategy, f.symbol), (Book(), f.asset_type))
        gained = book.apply(
            signed_quantity(f.instruction, f.quantity), f.price, multiplier(f.asset_type)
        )
        if f.at >= start:
            row = out.setdefault(f.strategy, StrategyDay(f.strategy))
            row.fills += 1
            row.realized += gained
            row.paper = row.paper and f.paper
            if signed_quantity(f.instruction, f.quantity) > 0:
                row.bought += f.quantity
            else:
                row.sold += f.quantity
    for (strategy, symbol), (book, asset_type) in books.items():
        if book.quantity == 0:
            continue
        row = out.setdefault(strategy, StrategyDay(strategy))
        row.positions[symbol] = book.quantity
        mark = marks.get(symbol)
        if mark is None or row.unrealized is None:
            row.unrealized = None
        else:
            row.unrealized += (mark - book.average) * book.quantity * multiplier(asset_type)
    return [out[k] for k in sorted(out)]


async def load_fills(
    conn: asyncpg.Connection | asyncpg.Pool, strategy: str | None
) -> list[ReportFill]:
    """Every fill (of ``strategy``, or all)."""
    rows = await conn.fetch(FILLS_SQL, strategy)
    return [
        ReportFill(
            r["strategy_id"] or MANUAL,
            r["symbol"],
            r["asset_type"],
            r["instruction"],
            Decimal(r["filled_quantity"]),
            Decimal(r["avg_fill_price"]),
            r["filled_at"],
            r["paper"],
        )
        for r in rows
    ]


async def build_report(
    conn: asyncpg.Connection | asyncpg.Pool, day: date, strategy: str | None = None
) -> list[StrategyDay]:
    """The report of ``day`` from the database."""
    fills = await load_fills(conn, strategy)
    _, end = day_bounds(day)
    marks: dict[str, Decimal | None] = {}
    for symbol in {f.symbol for f in fills}:
        close = await conn.fetchval(MARK_SQL, symbol, end)
        marks[symbol] = None if close is None else Decimal(str(close))
    return report_day(fills, day, marks)


async def _run(args: argparse.Namespace, settings: CommonSettings) -> int:
    conn = await asyncpg.connect(settings.database_url, timeout=10)
    try:
        rows = await build_report(conn, args.day, args.strategy)
    finally:
        await conn.close()
    if args.json:
        print(json.dumps({"day": args.day.isoformat(), "strategies": [r.as_dict() for r in rows]}))
        return 0
    print(f"P&L {args.day.isoformat()} (New York day; realized by average cost)")
    print(f"{'strategy':<22}{'fills':>6}{'realized':>12}{'unrealized':>12}  mode  positions")
    for r in rows:
        unreal = "n/a" if r.unrealized is None else f"{r.unrealized:.2f}"
        pos = ", ".join(f"{k} {v}" for k, v in sorted(r.positions.items())) or "-"
        mode = "paper" if r.paper else "live"
        print(f"{r.strategy:<22}{r.fills:>6}{r.realized:>12.2f}{unreal:>12}  {mode:<5} {pos}")
    if not rows:
        print("(no fills)")
    return 0


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date YYYY-MM-DD: {value!r}") from None


def _cmd(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(CommonSettings)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    try:
        return asyncio.run(_run(args, settings))
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"database error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


def register(sub: Any) -> None:
    """Add ``report`` to the admin CLI."""
    p = sub.add_parser("report", help="P&L per strategy for one day, from real fills")
    p.add_argument("--day", type=_day, required=True, help="New York day, YYYY-MM-DD")
    p.add_argument("--strategy", default=None, help="only this strategy id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd)
