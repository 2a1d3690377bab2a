"""Market-data REST payloads: quotes, option chains, expirations, market hours.

Price history (candles) is :mod:`streamdesk_sim.price_history`.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from streamdesk.config import MarketHoursMode
from streamdesk.market_calendar import session_bounds as calendar_bounds
from streamdesk.models import format_occ, parse_occ
from streamdesk_sim.clock import NY, is_trading_day, session_bounds
from streamdesk_sim.config import ClockMode
from streamdesk_sim.market import weekly_expirations
from streamdesk_sim.option import RISK_FREE, OptionSim

if TYPE_CHECKING:
    from streamdesk_sim.sim import Sim


def _is_option_symbol(symbol: str) -> bool:
    try:
        parse_occ(symbol)
    except ValueError:
        return False
    return True


def quote(sim: Sim, symbol: str) -> dict[str, Any]:
    """Schwab's quote JSON for one equity or option symbol."""
    if _is_option_symbol(symbol):
        try:
            opt = sim.market.option(symbol, sim.clock.now())
        except ValueError as exc:
            return {"description": str(exc), "invalidSymbols": [symbol]}
        return {
            "assetMainType": "OPTION",
            "realtime": True,
            "ssid": 0,
            "symbol": symbol,
            "quote": _option_quote(opt),
            "reference": {
                "contractType": "C" if opt.is_call else "P",
                "description": opt.values[1],
                "expirationDay": opt.expiration.day,
                "expirationMonth": opt.expiration.month,
                "expirationYear": opt.expiration.year,
                "exchange": "o",
                "exchangeName": "OPR",
                "multiplier": 100.0,
                "strikePrice": opt.strike,
                "underlying": opt.underlying,
                "exerciseType": "A",
                "settlementType": "P",
            },
        }
    try:
        eq = sim.market.equity(symbol.upper())
    except OverflowError as exc:
        return {"description": str(exc), "invalidSymbols": [symbol]}
    v = eq.values
    q = {
        "52WeekHigh": v[19],
        "52WeekLow": v[20],
        "askMICId": v[39],
        "askPrice": v[2],
        "askSize": v[5],
        "askTime": v[38],
        "bidMICId": v[40],
        "bidPrice": v[1],
        "bidSize": v[4],
        "bidTime": v[37],
        "closePrice": v[12],
        "highPrice": v[10],
        "lastMICId": v[41],
        "lastPrice": v[3],
        "lastSize": v[9],
        "lowPrice": v[11],
        "mark": v[33],
        "markChange": v[44],
        "markPercentChange": v[45],
        "netChange": v[18],
        "netPercentChange": v[42],
        "openPrice": v[17],
        "quoteTime": v[34],
        "securityStatus": v[32],
        "totalVolume": v[8],
        "tradeTime": v[35],
    }
    return {
        "assetMainType": "EQUITY",
        "assetSubType": "COE",
        "quoteType": "NBBO",
        "realtime": True,
        "ssid": 0,
        "symbol": eq.symbol,
        "quote": q,
        "reference": {
            "cusip": eq.cusip,
            "description": v[15],
            "exchange": "Q",
            "exchangeName": "NASDAQ",
            "isHardToBorrow": False,
            "isShortable": True,
        },
        "regular": {
            "regularMarketLastPrice": v[29],
            "regularMarketLastSize": v[30],
            "regularMarketNetChange": v[31],
            "regularMarketPercentChange": v[43],
            "regularMarketTradeTime": v[36],
        },
    }


def _option_quote(opt: OptionSim) -> dict[str, Any]:
    v = opt.values
    return {
        "askPrice": v[3],
        "askSize": v[17],
        "bidPrice": v[2],
        "bidSize": v[16],
        "closePrice": v[7],
        "delta": v[28],
        "gamma": v[29],
        "theta": v[30],
        "vega": v[31],
        "rho": v[32],
        "highPrice": v[5] or 0.0,
        "lowPrice": v[6] or 0.0,
        "lastPrice": v[4] if v[4] is not None else 0.0,
        "lastSize": v[18],
        "mark": v[37],
        "openInterest": v[9],
        "openPrice": v[15] or 0.0,
        "quoteTime": v[38],
        "tradeTime": v[39],
        "totalVolume": v[8],
        "volatility": v[10],
        "moneyIntrinsicValue": v[11],
        "timeValue": v[25],
        "theoreticalOptionValue": v[34],
        "underlyingPrice": v[35],
        "netChange": v[19],
        "netPercentChange": v[44],
        "securityStatus": "Normal",
    }


def _contract(opt: OptionSim, now: float) -> dict[str, Any]:
    v = opt.values
    exp = opt.expiry_dt()
    return {
        "putCall": "CALL" if opt.is_call else "PUT",
        "symbol": opt.symbol,
        "description": v[1],
        "exchangeName": "OPR",
        "bid": v[2],
        "ask": v[3],
        "last": v[4] if v[4] is not None else 0.0,
        "mark": v[37],
        "bidSize": v[16],
        "askSize": v[17],
        "bidAskSize": f"{v[16]}X{v[17]}",
        "lastSize": v[18],
        "highPrice": v[5] or 0.0,
        "lowPrice": v[6] or 0.0,
        "openPrice": v[15] or 0.0,
        "closePrice": v[7],
        "totalVolume": v[8],
        "tradeTimeInLong": v[39],
        "quoteTimeInLong": v[38],
        "netChange": v[19],
        "volatility": v[10],
        "delta": v[28],
        "gamma": v[29],
        "theta": v[30],
        "vega": v[31],
        "rho": v[32],
        "openInterest": v[9],
        "timeValue": v[25],
        "theoreticalOptionValue": v[34],
        "theoreticalVolatility": v[10],
        "optionDeliverablesList": [
            {"symbol": opt.underlying, "assetType": "STOCK", "deliverableUnits": 100.0}
        ],
        "strikePrice": opt.strike,
        "expirationDate": exp.astimezone().isoformat(timespec="milliseconds"),
        "daysToExpiration": v[27],
        "expirationType": "W",
        "lastTradingDay": v[42],
        "multiplier": 100.0,
        "settlementType": "P",
        "deliverableNote": "",
        "percentChange": v[44],
        "markChange": 0.0,
        "markPercentChange": 0.0,
        "intrinsicValue": v[11],
        "extrinsicValue": v[25],
        "optionRoot": opt.underlying,
        "exerciseType": "A",
        "high52Week": v[50],
        "low52Week": v[51],
        "nonStandard": False,
        "pennyPilot": True,
        "inTheMoney": bool(v[11] and v[11] > 0),
        "mini": False,
    }


def option_chain(sim: Sim, symbol: str, q: dict[str, str]) -> dict[str, Any]:
    """Schwab's option chain JSON (SINGLE strategy) honouring the common filters."""
    s = sim.settings
    now = sim.clock.now()
    today = sim.clock.today()
    spot = sim.market.equity(symbol).mark
    contract_type = q.get("contractType", "ALL").upper()
    strike_count = int(q["strikeCount"]) if q.get("strikeCount") else None
    strike_filter = float(q["strike"]) if q.get("strike") else None
    rng = q.get("range", "ALL").upper()
    from_date = date.fromisoformat(q["fromDate"][:10]) if q.get("fromDate") else None
    to_date = date.fromisoformat(q["toDate"][:10]) if q.get("toDate") else None
    grid = sim.market.strikes(symbol, s.option_strikes)
    if strike_count:
        # Schwab returns strikeCount strikes centred on the money.
        ordered = sorted(grid, key=lambda k: (abs(k - spot), k))[:strike_count]
        grid = sorted(ordered)
    if strike_filter is not None:
        grid = [k for k in grid if abs(k - strike_filter) < 1e-6]
    call_map: dict[str, dict[str, list[dict[str, Any]]]] = {}
    put_map: dict[str, dict[str, list[dict[str, Any]]]] = {}
    n = 0
    for exp in weekly_expirations(today, s.option_expirations):
        if (from_date and exp < from_date) or (to_date and exp > to_date):
            continue
        dte = (exp - today).days
        key = f"{exp.isoformat()}:{dte}"
        for strike in grid:
            for pc, target in (("C", call_map), ("P", put_map)):
                if contract_type not in ("ALL", "CALL" if pc == "C" else "PUT"):
                    continue
                itm = strike < spot if pc == "C" else strike > spot
                if (rng == "ITM" and not itm) or (rng == "OTM" and itm):
                    continue
                opt = sim.market.option(format_occ(symbol, exp, pc, strike), now)
                opt.quote(spot, now, int(now * 1000))
                target.setdefault(key, {})[f"{strike:.1f}"] = [_contract(opt, now)]
                n += 1
    out: dict[str, Any] = {
        "symbol": symbol,
        "status": "SUCCESS",
        "strategy": "SINGLE",
        "interval": 0.0,
        "isDelayed": False,
        "isIndex": False,
        "interestRate": RISK_FREE * 100,
        "underlyingPrice": spot,
        "volatility": round(s.volatility * 80, 3),
        "daysToExpiration": 0.0,
        "dividendYield": 0.0,
        "numberOfContracts": n,
        "assetMainType": "EQUITY",
        "assetSubType": "COE",
        "isChainTruncated": False,
        "callExpDateMap": call_map,
        "putExpDateMap": put_map,
    }
    if q.get("includeUnderlyingQuote", "").lower() == "true":
        out["underlying"] = quote(sim, symbol)["quote"]
    return out


def expiration_chain(sim: Sim, symbol: str) -> dict[str, Any]:
    """Schwab's expiration-chain JSON."""
    today = sim.clock.today()
    return {
        "expirationList": [
            {
                "expirationDate": exp.isoformat(),
                "daysToExpiration": (exp - today).days,
                "expirationType": "W",
                "settlementType": "P",
                "optionRoots": symbol,
                "standard": True,
            }
            for exp in weekly_expirations(today, sim.settings.option_expirations)
        ]
    }


_MARKETS = {"equity": ("EQ", "equity"), "option": ("EQO", "equity option")}


def market_hours(sim: Sim, markets: list[str], day: str | None) -> dict[str, Any]:
    """Schwab's market-hours JSON for the requested markets."""
    d = date.fromisoformat(day) if day else sim.clock.today()
    always = sim.settings.clock is ClockMode.ALWAYS
    out: dict[str, Any] = {}
    for m in markets:
        m = m.strip().lower()
        if m not in _MARKETS and m not in ("bond", "future", "forex"):
            raise ValueError(f"unknown market {m!r}")
        product, name = _MARKETS.get(m, (m.upper(), m))
        open_day = always or is_trading_day(d)
        entry: dict[str, Any] = {
            "date": d.isoformat(),
            "marketType": m.upper(),
            "product": product,
            "productName": name,
            "isOpen": open_day,
        }
        if open_day:
            if always:
                start = datetime(d.year, d.month, d.day, tzinfo=NY)
                regular = [
                    {"start": start.isoformat(), "end": (start + timedelta(days=1)).isoformat()}
                ]
                entry["sessionHours"] = {"regularMarket": regular}
            else:
                o, c = session_bounds(d)
                ext = calendar_bounds(d, MarketHoursMode.EXTENDED)
                assert ext is not None  # a trading day has extended hours too
                entry["sessionHours"] = {
                    "preMarket": [{"start": ext[0].isoformat(), "end": o.isoformat()}],
                    "regularMarket": [{"start": o.isoformat(), "end": c.isoformat()}],
                    "postMarket": [{"start": c.isoformat(), "end": ext[1].isoformat()}],
                }
        out[m] = {product: entry}
    return out
