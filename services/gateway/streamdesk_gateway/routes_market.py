"""Market-data reads: config, quotes, candles, sessions, signals, option chain, stream gaps
(Postgres and Redis). The account reads (positions, P&L, fills, CSV export) are in
``routes_account`` and included here, so the app includes one router for the area."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from streamdesk import __version__
from streamdesk.constants import last_quote_key
from streamdesk.control import UniverseSpec, read_kill_switch, read_universe
from streamdesk.risk import quote_from_mapping

from . import market_sql, routes_account
from .market_models import (
    BAD_INPUT,
    BarOut,
    CandlesOut,
    ConfigOut,
    GapOut,
    HistoryOut,
    OptionChainOut,
    OptionContract,
    QuoteOut,
    SessionsOut,
    SignalsOut,
    Timeframe,
)
from .market_params import SessionQuery, TickerPath, parse_session
from .market_sql import ms
from .state import State, get_state, jsonable

router = APIRouter(tags=["market data"])
router.include_router(routes_account.router)
StateDep = Annotated[State, Depends(get_state)]


async def universe(state: State) -> UniverseSpec:
    """The streamed universe (persisted by the operations panel; seeded from the settings)."""
    s = state.settings
    return await read_universe(state.db, defaults=UniverseSpec.of(s.tickers, s.option_underlyings))


@router.get("/api/config")
async def config(state: StateDep) -> ConfigOut:
    settings = state.settings
    spec = await universe(state)
    return ConfigOut(
        tickers=list(spec.equities),
        option_underlyings=list(spec.option_underlyings),
        trading_mode=settings.trading_mode.value,
        trading_enabled=settings.trading_enabled,
        kill_switch=(await read_kill_switch(state.db)).engaged,
        market_orders=settings.risk_allow_market_orders,
        version=__version__,
    )


# Per ticker: its newest second from the hot table's and the packed chunks' own indexes (the
# view would walk the time grid back until the ticker has a row: slow for a quiet ticker),
# then one probe of each view at that second, and the previous session's last bar.
_QUOTES_SQL = """
SELECT u.ticker, e.cum_volume, i.sma9, i.vwap, pc.close AS prev_close
FROM unnest($1::text[]) AS u(ticker)
CROSS JOIN LATERAL (
    SELECT greatest(
        (SELECT max(h."timestamp") FROM equity_data_hot h WHERE h.ticker = u.ticker),
        (SELECT max(p.t1) FROM equity_data_packed p WHERE p.ticker = u.ticker)) AS ts
) l
LEFT JOIN equity_data e ON e.ticker = u.ticker AND e."timestamp" = l.ts
LEFT JOIN indicators i ON i.ticker = u.ticker AND i."timestamp" = l.ts
LEFT JOIN LATERAL (
    SELECT b.close FROM bars_1m b
    WHERE b.ticker = u.ticker
      AND b.bucket < ((coalesce(l.ts, (SELECT x.bucket FROM bars_1m x WHERE x.ticker = u.ticker
                                       ORDER BY x.bucket DESC LIMIT 1))
                       AT TIME ZONE 'America/New_York')::date)::timestamp
                     AT TIME ZONE 'America/New_York'
    ORDER BY b.bucket DESC LIMIT 1
) pc ON true
"""


@router.get("/api/quotes")
async def quotes(state: StateDep) -> dict[str, QuoteOut]:
    """Latest bid/ask/last per streamed ticker (Redis), session volume, previous close and
    the latest SMA9/VWAP (one SQL). Tickers without any data are left out."""
    tickers = list((await universe(state)).equities)
    pipe = state.r.pipeline(transaction=False)
    for ticker in tickers:
        pipe.hgetall(last_quote_key(ticker))
    raws = await pipe.execute()
    stored = {r["ticker"]: r for r in await state.db.fetch(_QUOTES_SQL, tickers)}
    out: dict[str, QuoteOut] = {}
    for ticker, raw in zip(tickers, raws, strict=True):
        q = quote_from_mapping(ticker, raw) if raw else None
        rec = stored.get(ticker)
        item = QuoteOut()
        if q is not None:
            item = QuoteOut(bid=float(q.bid), ask=float(q.ask), last=float(q.last), ts=q.ts)
        if rec is not None:
            item.volume = rec["cum_volume"]
            item.prev_close, item.sma9, item.vwap = rec["prev_close"], rec["sma9"], rec["vwap"]
        if q is not None or item.volume is not None or item.prev_close is not None:
            out[ticker] = item
    return out


@router.get("/api/candles/{ticker}", responses=BAD_INPUT)
async def candles(
    state: StateDep,
    ticker: TickerPath,
    tf: Timeframe = "1m",
    session: SessionQuery = None,
    limit: Annotated[
        int | None, Query(ge=1, le=10**9, description="Point cap: the LAST N (clamped)")
    ] = None,
) -> CandlesOut:
    """Candles aggregated in SQL; the last ``limit`` buckets of ``session`` (1D: the last
    ``limit`` days ending with it)."""
    ticker = ticker.upper()
    cap = state.settings.gateway_history_max_points
    n = min(limit or 2000, cap)
    day = parse_session(session) or await market_sql.latest_session(state.db, ticker)
    empty = CandlesOut(
        ticker=ticker, tf=tf, session=None, t=[], o=[], h=[], l=[], c=[], v=[], sma9=[], vwap=[]
    )
    if day is None:
        return empty
    data = await market_sql.candles(state.db, ticker, tf, day, n)
    return CandlesOut(ticker=ticker, tf=tf, session=day.isoformat(), **_fields(data))


def _fields(data: market_sql.Candles) -> dict[str, Any]:
    return {k: getattr(data, k) for k in ("t", "o", "h", "l", "c", "v", "sma9", "vwap")}


@router.get("/api/sessions/{ticker}", responses=BAD_INPUT)
async def sessions(state: StateDep, ticker: TickerPath) -> SessionsOut:
    ticker = ticker.upper()
    days = await market_sql.sessions(state.db, ticker)
    return SessionsOut(ticker=ticker, sessions=[d.isoformat() for d in days])


@router.get("/api/signals/{ticker}", responses=BAD_INPUT)
async def signals(state: StateDep, ticker: TickerPath, session: SessionQuery = None) -> SignalsOut:
    """SMA9/VWAP crosses of one session (default the latest with data)."""
    ticker = ticker.upper()
    day = parse_session(session) or await market_sql.latest_session(state.db, ticker)
    if day is None:
        return SignalsOut(ticker=ticker, session=None, crosses=[])
    found = await market_sql.crosses(state.db, ticker, day)
    return SignalsOut(ticker=ticker, session=day.isoformat(), crosses=found)  # type: ignore[arg-type]


@router.get("/api/gaps", responses=BAD_INPUT)
async def gaps(
    state: StateDep,
    since: Annotated[
        int | None, Query(ge=0, le=10**13, description="Gaps ending after (epoch ms)")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 20,
) -> list[GapOut]:
    """Streamer gaps, newest first; with ``since``: those still open or ended after it."""
    after = datetime.fromtimestamp(since / 1000, UTC) if since is not None else None
    rows = await state.db.fetch(
        "SELECT id, source, started_at, ended_at, symbols, reason FROM stream_gaps "
        "WHERE $2::timestamptz IS NULL OR ended_at IS NULL OR ended_at >= $2 "
        "ORDER BY started_at DESC LIMIT $1",
        limit,
        after,
    )
    return [
        GapOut(
            id=r["id"],
            source=r["source"],
            started_at=r["started_at"].isoformat(),
            ended_at=r["ended_at"].isoformat() if r["ended_at"] else None,
            symbols=list(r["symbols"]),
            reason=r["reason"],
        )
        for r in rows
    ]


# The underlying's contracts seen in the day before its newest row, each at its newest
# second (found from the hot rows and the packed chunks' t1, not by scanning the view).
_CHAIN_SQL = """
WITH lo AS (
    SELECT greatest((SELECT max("timestamp") FROM option_prices_hot),
                    (SELECT max(t0) FROM option_prices_packed)) - interval '1 day 300 s' AS t
), newest AS (
    SELECT ticker, max(ts) AS ts FROM (
        SELECT ticker, "timestamp" AS ts FROM option_prices_hot
        WHERE underlying = $1 AND "timestamp" > (SELECT t FROM lo)
        UNION ALL
        SELECT ticker, t1 FROM option_prices_packed
        WHERE underlying = $1 AND t0 > (SELECT t FROM lo)
    ) x GROUP BY ticker
), recent AS (
    SELECT * FROM newest WHERE ts > (SELECT max(ts) FROM newest) - interval '1 day'
)
SELECT o.ticker, o."timestamp", o.option_type, o.strike_price, o.expiration_date,
       o.last_price, o.bid, o.ask, o.delta, o.gamma, o.theta, o.vega, o.implied_volatility,
       o.open_interest, o.underlying_price
FROM recent r
JOIN option_prices o ON o.ticker = r.ticker AND o."timestamp" = r.ts
WHERE o.expiration_date >= ((r.ts AT TIME ZONE 'America/New_York')::date)
ORDER BY o.expiration_date, o.strike_price, o.option_type
"""


@router.get("/api/options/{underlying}", responses=BAD_INPUT)
async def options(state: StateDep, underlying: TickerPath) -> OptionChainOut:
    """Latest quote and greeks per contract of the underlying (contracts seen in the last
    day of its data, not expired), the expirations and the underlying's price."""
    underlying = underlying.upper()
    rows = await state.db.fetch(_CHAIN_SQL, underlying)
    contracts = [
        OptionContract(
            **{
                k: jsonable(v)
                for k, v in dict(r).items()
                if k not in ("timestamp", "expiration_date")
            },
            ts=ms(r["timestamp"]),
            expiration_date=r["expiration_date"].isoformat(),
        )
        for r in rows
    ]
    raw = await state.r.hgetall(last_quote_key(underlying))
    q = quote_from_mapping(underlying, raw) if raw else None
    price = float(q.last) if q is not None else None
    if price is None and rows:
        price = max(rows, key=lambda r: r["timestamp"])["underlying_price"]
    expirations = sorted({c.expiration_date for c in contracts})
    return OptionChainOut(
        underlying=underlying, underlying_price=price, expirations=expirations, contracts=contracts
    )


# -- the first version's reads, kept for their callers


@router.get("/api/history/{ticker}", responses=BAD_INPUT)
async def history(
    state: StateDep, ticker: TickerPath, minutes: int = Query(60, ge=1, le=60 * 24 * 7)
) -> HistoryOut:
    """Per-second price, volume, SMA9, VWAP of the last ``minutes`` (superseded by
    ``/api/candles?tf=1s``)."""
    rows = await state.db.fetch(
        """
        SELECT e."timestamp", e.price, e.volume, i.sma9, i.vwap
        FROM equity_data e
        LEFT JOIN indicators i ON i.ticker = e.ticker AND i."timestamp" = e."timestamp"
        WHERE e.ticker = $1 AND e."timestamp" > $4::timestamptz - make_interval(mins => $2)
        ORDER BY e."timestamp" DESC LIMIT $3
        """,
        ticker.upper(),
        minutes,
        state.settings.gateway_history_max_points,
        state.clock.now(),
    )
    rows = list(reversed(rows))
    return HistoryOut(
        ticker=ticker.upper(),
        t=[ms(r["timestamp"]) for r in rows],
        price=[r["price"] for r in rows],
        volume=[r["volume"] for r in rows],
        sma9=[r["sma9"] for r in rows],
        vwap=[r["vwap"] for r in rows],
    )


@router.get("/api/bars/{ticker}", responses=BAD_INPUT)
async def bars(
    state: StateDep, ticker: TickerPath, days: int = Query(5, ge=1, le=400)
) -> list[BarOut]:
    """1-minute bars of the last ``days`` (superseded by ``/api/candles?tf=1m``)."""
    rows = await state.db.fetch(
        "SELECT bucket, open, high, low, close, volume, vwap FROM bars_1m "
        "WHERE ticker = $1 AND bucket > $3::timestamptz - make_interval(days => $2) "
        "ORDER BY bucket",
        ticker.upper(),
        days,
        state.clock.now(),
    )
    return [BarOut(**{**dict(r), "bucket": r["bucket"].isoformat()}) for r in rows]
