"""The reference universe's committed message, built and measured with the real code.

The storage and Realtime budgets are stated for the reference universe (DESIGN.md): 5 tickers
and 200 option contracts that all change every second. :func:`reference_message` runs ten
minutes of synthetic ticks through the real :class:`~.engine.Engine` (so SMA9, VWAP and EMA9
are defined, as in a running session), takes one flush's rows and encodes them with the real
:func:`~.committed.committed_message`. Values have the precision the feed has (prices in cents,
greeks to 4 decimals, IV in percent to 3, as market-sim and Schwab send them).
:func:`reference_sizes` shapes that message at every degrade level with the publisher's own
:class:`~.broadcast_payload.Shaper` and returns the payload bytes: the figures
``streamdesk budget`` and the publisher's level choice use.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from streamdesk.config import MarketHoursMode
from streamdesk.messages import decode_committed
from streamdesk.models import EquityTick, OptionTick
from streamdesk.realtime_budget import LADDER, LevelSize

from .broadcast_payload import Shaper, encode
from .committed import committed_message
from .engine import Engine
from .sessions import SessionCalendar
from .writer import Batch

REFERENCE_TICKERS = 5
REFERENCE_CONTRACTS = 200
_NAMES = ("SPY", "QQQ", "AAPL", "MSFT", "NVDA")
_PRICES = (512.34, 438.12, 187.45, 402.67, 118.9)
#: A Wednesday, 10:00 New York: inside the regular session (VWAP defined).
_DAY = date(2026, 3, 11)
_WARMUP_S = 600


def tickers(n: int) -> list[str]:
    """``n`` ticker names: the default TICKERS first, then ``T0005``, ``T0006``, ..."""
    return [_NAMES[i] if i < len(_NAMES) else f"T{i:04d}" for i in range(n)]


def _occ(root: str, expiry: date, put_call: str, strike: float) -> str:
    return f"{root:<6}{expiry:%y%m%d}{put_call}{round(strike * 1000):08d}"


def reference_batch(
    n_tickers: int = REFERENCE_TICKERS, n_contracts: int = REFERENCE_CONTRACTS
) -> Batch:
    """One flush's rows of the universe, every ticker and contract changed in that second."""
    if n_tickers < 1 or n_contracts < 0:
        raise ValueError("need at least 1 ticker and 0 or more contracts")
    names = tickers(n_tickers)
    base = [_PRICES[i % len(_PRICES)] * (1 + i // len(_PRICES) * 0.01) for i in range(n_tickers)]
    tz = ZoneInfo("America/New_York")
    t0 = int(datetime(_DAY.year, _DAY.month, _DAY.day, 9, 50, tzinfo=tz).timestamp() * 1000)
    engine = Engine(SessionCalendar(mode=MarketHoursMode.REGULAR))
    cum = [1_000_000] * n_tickers

    def price(i: int, s: int) -> float:
        return round(base[i] * (1 + 0.002 * math.sin(s / 37 + i)), 2)

    def equities(s: int) -> None:
        for i, name in enumerate(names):
            p = price(i, s)
            cum[i] += 100 + 7 * ((s + i) % 13)
            bid, ask = round(p - 0.01, 2), round(p + 0.01, 2)
            engine.on_equity(EquityTick(name, t0 + s * 1000 + 250, p, bid, ask, cum[i], 100))

    for s in range(_WARMUP_S):
        equities(s)
    engine.take()  # the earlier flushes' rows
    equities(_WARMUP_S)
    expiries = [_DAY + timedelta(days=9 + 7 * k) for k in range(max(1, -(-n_contracts // 40)))]
    for c in range(n_contracts):
        under = c % n_tickers
        spot = price(under, _WARMUP_S)
        k = c // n_tickers
        strike = round(spot) + (k % 10 - 5) * (5 if spot > 200 else 1)
        put_call = "C" if k // 10 % 2 == 0 else "P"
        expiry = expiries[min(len(expiries) - 1, k // 20)]
        moneyness = (spot - strike) / spot * (1 if put_call == "C" else -1)
        delta = round(max(0.0001, min(0.9999, 0.5 + moneyness * 8)), 4)
        mid = max(0.05, round(abs(spot - strike) * 0.6 + spot * 0.012, 2))
        engine.on_option(
            OptionTick(
                symbol=_occ(names[under], expiry, put_call, strike),
                ts=t0 + _WARMUP_S * 1000 + 400,
                last=mid,
                bid=round(mid - 0.03, 2),
                ask=round(mid + 0.03, 2),
                volume=1200 + c * 17,
                last_size=3,
                underlying=names[under],
                put_call=put_call,
                strike=float(strike),
                expiration=expiry.isoformat(),
                delta=delta if put_call == "C" else round(delta - 1, 4),
                gamma=round(0.0123 + c % 7 * 0.0011, 4),
                theta=round(-0.2345 - c % 5 * 0.0101, 4),
                vega=round(0.4567 + c % 3 * 0.0123, 4),
                rho=round(0.0789 - c % 4 * 0.0012, 4),
                iv=round(18.5 + (c % 23) * 0.347, 3),
                open_interest=5000 + c,
                underlying_price=spot,
            )
        )
    out, _ = engine.take()
    return Batch(seconds=out.seconds, options=out.options, bars=out.bars)


def reference_message(
    n_tickers: int = REFERENCE_TICKERS,
    n_contracts: int = REFERENCE_CONTRACTS,
    max_options: int = 500,
) -> bytes:
    """The committed message (``v`` 1 bytes) of one flush of the universe."""
    batch = reference_batch(n_tickers, n_contracts)
    now_ms = (batch.seconds[0][1] if batch.seconds else 0) + 1_000
    return committed_message(batch, 1_000_000, now_ms, max_options)


def reference_sizes(
    n_tickers: int = REFERENCE_TICKERS,
    n_contracts: int = REFERENCE_CONTRACTS,
    max_options: int = 500,
) -> dict[int, LevelSize]:
    """Payload bytes per degrade level, with and without option rows, for one flush."""
    msg = decode_committed(reference_message(n_tickers, n_contracts, max_options))
    sizes: dict[int, LevelSize] = {}
    for step in LADDER:
        if step.paused:
            sizes[step.number] = LevelSize(0, 0)
            continue
        shaped = []
        for with_options in (True, False):
            shaper = Shaper(max_options)
            for _ in range(step.every):  # the flushes one broadcast covers at this level
                shaper.add(msg)
            shaped.append(len(encode(shaper.take(step, options=with_options))))
        sizes[step.number] = LevelSize(*shaped)
    return sizes
