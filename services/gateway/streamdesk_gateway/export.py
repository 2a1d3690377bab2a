"""CSV download of one New York session of equity, indicator or option rows (streamed)."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from streamdesk.storage_layout import EQUITY, INDICATORS, OPTIONS

from .market_models import BAD_INPUT
from .market_params import DATE_PATTERN, TICKER_PATTERN, parse_session, today
from .market_sql import session_bounds_utc
from .state import State, get_state

router = APIRouter(tags=["export"])
StateDep = Annotated[State, Depends(get_state)]

ExportTable = Literal["equity", "indicators", "options"]

#: table -> (view, columns in file order, the column a ``ticker`` filter applies to); the
#: columns are the storage layout's own (the views' columns, in the original tables' order)
TABLES: dict[str, tuple[str, tuple[str, ...], str]] = {
    "equity": (EQUITY.view, tuple(EQUITY.columns), "ticker"),
    "indicators": (INDICATORS.view, tuple(INDICATORS.columns), "ticker"),
    "options": (OPTIONS.view, tuple(OPTIONS.columns), "underlying"),
}
#: rows per fetch from the server-side cursor and per chunk written to the client
CHUNK_ROWS = 2000


def _csv_chunk(rows: list[list[object]]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue().encode()


async def _stream(state: State, table: str, day: date, ticker: str | None) -> AsyncIterator[bytes]:
    view, cols, key = TABLES[table]
    lo, hi = session_bounds_utc(day)
    select = ", ".join(
        'to_char("timestamp" AT TIME ZONE \'UTC\', \'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"\')'
        if c == "timestamp"
        else c
        for c in cols
    )
    sql = (
        f'SELECT {select} FROM {view} WHERE "timestamp" >= $1 AND "timestamp" < $2 '
        f'AND ($3::text IS NULL OR {key} = $3) ORDER BY "timestamp"'
    )
    yield _csv_chunk([list(cols)])
    async with state.db.acquire() as conn, conn.transaction(readonly=True):
        cursor = await conn.cursor(sql, lo, hi, ticker)
        while True:
            rows = await cursor.fetch(CHUNK_ROWS)
            if not rows:
                break
            yield _csv_chunk([list(r) for r in rows])


@router.get(
    "/api/export/{table}.csv",
    response_class=StreamingResponse,
    responses={**BAD_INPUT, 200: {"content": {"text/csv": {}}, "description": "CSV rows."}},
)
async def export_csv(
    state: StateDep,
    table: ExportTable,
    session: Annotated[str | None, Query(pattern=DATE_PATTERN)] = None,
    ticker: Annotated[
        str | None, Query(pattern=TICKER_PATTERN, description="Ticker (options: underlying)")
    ] = None,
) -> StreamingResponse:
    """One session's rows (default today in New York), oldest first; timestamps UTC ISO."""
    day = parse_session(session) or today(state.clock)
    name = f"streamdesk-{table}-{day.isoformat()}"
    if ticker:
        ticker = ticker.upper()
        name += f"-{ticker.replace('/', '_')}"
    return StreamingResponse(
        _stream(state, table, day, ticker),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )
