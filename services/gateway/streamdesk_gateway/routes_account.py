"""Account reads: positions, balances, fills, P&L (realized from fills by average cost)."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends

from streamdesk.constants import last_quote_key
from streamdesk.risk import quote_from_mapping

from . import export
from .market_models import BAD_INPUT, BalancesOut, FillOut, PnlOut, PositionPnl
from .market_params import SessionQuery, SymbolPath, parse_session, today
from .market_sql import ms, session_bounds_utc
from .pnl import ZERO, Fill, realized_since, signed_quantity, unrealized
from .state import State, get_state, row

router = APIRouter(tags=["account"])
router.include_router(export.router)
StateDep = Annotated[State, Depends(get_state)]

# One row per order with a fill: its filled quantity at its average price, timed by the last
# fill event (the executor records "partial fill" and the final "filled").
_FILLS_SQL = """
SELECT t.id, t.symbol, t.asset_type, t.instruction, t.filled_quantity, t.avg_fill_price,
       coalesce((SELECT max(ev.at) FROM trade_events ev
                 WHERE ev.trade_id = t.id
                   AND (ev.to_status = 'filled' OR ev.reason = 'partial fill')),
                t.updated_at) AS at
FROM trades t
WHERE t.filled_quantity > 0 AND t.avg_fill_price IS NOT NULL
  AND ($1::text IS NULL OR t.symbol = $1)
"""


@router.get("/api/fills/{symbol}", responses=BAD_INPUT)
async def fills(state: StateDep, symbol: SymbolPath, session: SessionQuery = None) -> list[FillOut]:
    """The symbol's fills in one New York session (default today by the gateway's clock)."""
    day = parse_session(session) or today(state.clock)
    lo, hi = session_bounds_utc(day)
    rows = await state.db.fetch(
        f"SELECT * FROM ({_FILLS_SQL}) f WHERE f.at >= $2 AND f.at < $3 ORDER BY f.at, f.id",
        symbol.upper(),
        lo,
        hi,
    )
    return [
        FillOut(
            trade_id=r["id"],
            t=ms(r["at"]),
            instruction=r["instruction"],
            quantity=float(r["filled_quantity"]),
            price=float(r["avg_fill_price"]),
        )
        for r in rows
    ]


@router.get("/api/positions")
async def positions(state: StateDep) -> list[dict[str, Any]]:
    rows = await state.db.fetch("SELECT * FROM positions ORDER BY symbol")
    return [row(r) for r in rows]


@router.get("/api/balances")
async def balances(state: StateDep) -> list[dict[str, Any]]:
    return [row(r) for r in await state.db.fetch("SELECT * FROM account_balances")]


# Options without a live quote are marked at their newest stored last price (newest second
# from the hot rows and the packed chunks, then one probe of the view).
_OPTION_MARKS_SQL = """
SELECT u.ticker, o.last_price
FROM unnest($1::text[]) AS u(ticker)
CROSS JOIN LATERAL (
    SELECT greatest(
        (SELECT max(h."timestamp") FROM option_prices_hot h WHERE h.ticker = u.ticker),
        (SELECT max(p.t1) FROM option_prices_packed p WHERE p.ticker = u.ticker)) AS ts
) l
JOIN option_prices o ON o.ticker = u.ticker AND o."timestamp" = l.ts
"""


async def _marks(state: State, rows: list[Any]) -> dict[str, Decimal]:
    symbols = [str(r["symbol"]) for r in rows]
    pipe = state.r.pipeline(transaction=False)
    for sym in symbols:
        pipe.hgetall(last_quote_key(sym))
    marks: dict[str, Decimal] = {}
    for sym, raw in zip(symbols, await pipe.execute(), strict=True):
        q = quote_from_mapping(sym, raw) if raw else None
        if q is None:
            continue
        if q.last > 0:
            marks[sym] = q.last
        elif q.bid > 0 and q.ask > 0:
            marks[sym] = (q.bid + q.ask) / 2
    missing = [str(r["symbol"]) for r in rows if r["asset_type"] == "OPTION"]
    missing = [s for s in missing if s not in marks]
    if missing:
        for r in await state.db.fetch(_OPTION_MARKS_SQL, missing):
            if r["last_price"] is not None:
                marks[r["ticker"]] = Decimal(str(r["last_price"]))
    return marks


def _f(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


@router.get("/api/pnl")
async def pnl(state: StateDep) -> PnlOut:
    """Positions with mark and unrealized P&L, the broker's day P&L, P&L realized today from
    the fills in ``trades`` (average cost, replayed from each symbol's first fill; a position
    held before them opens at the synced average price) and the balances."""
    pos = await state.db.fetch(
        "SELECT symbol, asset_type, sum(quantity) AS quantity, "
        "sum(quantity * average_price) / nullif(sum(quantity), 0) AS average_price, "
        "sum(day_pnl) AS day_pnl, count(day_pnl) AS synced "
        "FROM positions GROUP BY symbol, asset_type ORDER BY symbol"
    )
    fill_rows = await state.db.fetch(_FILLS_SQL, None)
    by_symbol: dict[str, list[Fill]] = defaultdict(list)
    kinds: dict[str, str] = {}
    for r in fill_rows:
        by_symbol[r["symbol"]].append(
            Fill(r["at"], r["instruction"], r["filled_quantity"], r["avg_fill_price"])
        )
        kinds[r["symbol"]] = r["asset_type"]
    held = {str(p["symbol"]): p for p in pos}
    since = session_bounds_utc(today(state.clock))[0]
    realized = ZERO
    for sym, sym_fills in by_symbol.items():
        p = held.get(sym)
        qty_now = Decimal(p["quantity"]) if p is not None else ZERO
        net = sum((signed_quantity(f.instruction, f.quantity) for f in sym_fills), ZERO)
        opening_qty = qty_now - net
        avg = p["average_price"] if p is not None else None
        gained, _ = realized_since(
            sym_fills,
            since,
            asset_type=kinds[sym],
            opening_quantity=opening_qty if avg is not None else ZERO,
            opening_average=Decimal(avg) if avg is not None else ZERO,
        )
        realized += gained
    marks = await _marks(state, list(pos))
    out: list[PositionPnl] = []
    unreal_total = day_total = ZERO
    for p in pos:
        sym, kind = str(p["symbol"]), str(p["asset_type"])
        qty = Decimal(p["quantity"])
        mark = marks.get(sym)
        avg = p["average_price"]
        u = unrealized(qty, avg, mark, kind)
        unreal_total += u or ZERO
        day = p["day_pnl"] if p["synced"] else None
        day_total += day or ZERO
        out.append(
            PositionPnl(
                symbol=sym,
                asset_type=kind,
                quantity=float(qty),
                average_price=_f(avg),
                mark=_f(mark),
                market_value=_f(mark * qty * (100 if kind == "OPTION" else 1))
                if mark is not None
                else None,
                unrealized=_f(u),
                day_pnl=_f(day),
            )
        )
    bal = await state.db.fetchrow(
        "SELECT sum(cash) AS cash, sum(buying_power) AS buying_power, "
        "sum(liquidation_value) AS liquidation_value, count(*) AS n FROM account_balances"
    )
    balances_out = None
    if bal is not None and bal["n"]:
        balances_out = BalancesOut(
            cash=_f(bal["cash"]),
            buying_power=_f(bal["buying_power"]),
            liquidation_value=_f(bal["liquidation_value"]),
        )
    return PnlOut(
        positions=out,
        realized_today=float(realized),
        unrealized_total=float(unreal_total),
        day_pnl_total=float(day_total),
        balances=balances_out,
    )
