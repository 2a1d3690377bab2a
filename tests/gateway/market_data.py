"""Market data at fixed dates for the gateway's market-data tests, written by the real Writer.

Session B = 2026-03-10 (EDT): AAPL for 900 s from 09:30:00 New York; SMA9 alternates below
and above a flat VWAP every 100 s (with one second equal: touching is not crossing).
Session A = 2026-03-09: AAPL for 120 s from 10:00 New York. 2026-03-06: bars only (its
seconds are "past retention"). Bars are built from the seconds as the engine does with one
tick per second, except that minute 09:31 of session B has an intra-second high of 250.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from streamdesk_indicators.writer import Batch, Writer

SESSION_B = datetime(2026, 3, 10, 13, 30, tzinfo=UTC)
SESSION_A = datetime(2026, 3, 9, 14, 0, tzinfo=UTC)
OLD_DAY = datetime(2026, 3, 6, 15, 0, tzinfo=UTC)  # EST: 10:00 New York
VWAP = 101.0
SPIKE_MINUTE = 1  # minute index (09:31) whose bar high is an intra-second 250.0


def ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


@dataclass
class Second:
    ts: int
    price: float
    volume: int
    cum: int
    sma9: float | None
    vwap: float | None


@dataclass
class Data:
    b: list[Second] = field(default_factory=list)
    a: list[Second] = field(default_factory=list)
    bars: list[tuple[str, int, float, float, float, float, int, float | None]] = field(
        default_factory=list
    )


def _sma9_b(i: int) -> float:
    if i == 500:
        return VWAP  # touches at the very second the sign would change
    return VWAP + (0.5 if (i // 100) % 2 else -0.5) + (i % 7) / 100


def expected_crosses(seconds: list[Second]) -> list[tuple[int, float, str]]:
    """(t, price, direction) by the definition, computed here independently of the SQL."""
    out: list[tuple[int, float, str]] = []
    prev = 0
    for s in seconds:
        if s.sma9 is None or s.vwap is None:
            continue
        d = s.sma9 - s.vwap
        sign = (d > 0) - (d < 0)
        if sign == 0:
            continue
        if prev and sign != prev:
            out.append((s.ts, s.price, "up" if sign > 0 else "down"))
        prev = sign
    return out


def build() -> Data:
    data = Data()
    cum = 0
    for i in range(900):
        price = 100.0 + ((i * 7) % 23) / 10
        vol = 10 + i % 5
        cum += vol
        ts = ms(SESSION_B) + i * 1000
        data.b.append(Second(ts, price, vol, cum, _sma9_b(i), VWAP))
    cum = 0
    for i in range(120):
        price = 90.0 + (i % 11) / 4
        vol = 3 + i % 3
        cum += vol
        ts = ms(SESSION_A) + i * 1000
        data.a.append(Second(ts, price, vol, cum, 95.0 + i / 100, 94.0))
    for seconds in (data.a, data.b):
        minutes: dict[int, list[Second]] = {}
        for s in seconds:
            minutes.setdefault(s.ts - s.ts % 60_000, []).append(s)
        for k, (minute, group) in enumerate(sorted(minutes.items())):
            high = max(s.price for s in group)
            if seconds is data.b and k == SPIKE_MINUTE:
                high = 250.0
            v = sum(s.volume for s in group)
            pv = sum(s.price * s.volume for s in group)
            data.bars.append(
                (
                    "AAPL",
                    minute,
                    group[0].price,
                    high,
                    min(s.price for s in group),
                    group[-1].price,
                    v,
                    pv / v,
                )
            )
    for m in range(3):  # the old day: bars only
        p = 80.0 + m
        data.bars.append(("AAPL", ms(OLD_DAY) + m * 60_000, p, p + 1, p - 1, p + 0.5, 100, p))
    return data


async def write(dsn: str, data: Data) -> None:
    secs = [
        (
            "AAPL",
            s.ts,
            s.price,
            s.volume,
            s.price - 0.01,
            s.price + 0.01,
            s.cum,
            s.sma9,
            s.vwap,
            None,
            False,
        )
        for s in (*data.a, *data.b)
    ]
    writer = Writer(dsn)
    try:
        await writer.commit(
            Batch(seconds=secs, bars=data.bars, days={s[1] // 86_400_000 for s in secs})
        )
    finally:
        await writer.close()
