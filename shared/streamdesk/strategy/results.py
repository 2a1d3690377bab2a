"""What a backtest produces: fills, round trips, the bounded price series and the result.

:class:`BacktestResult` is everything :class:`~streamdesk.strategy.backtest.Backtester` returns;
:mod:`~streamdesk.strategy.report` writes it out (canonical JSON, HTML).
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from typing import Any

from streamdesk.sessions import SessionCalendar
from streamdesk.strategy.fills import FillModel


@dataclass(slots=True)
class RoundTrip:
    """A position from flat back to flat (or to a flip) in one ticker."""

    ticker: str
    side: str  # LONG / SHORT
    entry_ts: int
    entry_price: float
    quantity: int  # largest absolute position
    exit_ts: int | None = None
    exit_price: float | None = None
    pnl: float = 0.0  # realized, commissions included
    fills: int = 0


@dataclass(slots=True)
class FillRecord:
    """A fill as the result lists it."""

    key: str
    ticker: str
    side: str
    quantity: int
    price: float
    commission: float
    ts: int
    submitted_ts: int
    order_type: str


class Decimator:
    """A bounded, deterministic subsample of a series: every ``step``-th point, the step
    doubling (and every other kept point dropped) whenever ``2 * max_points`` are kept."""

    __slots__ = ("max_points", "n", "step", "ts", "values")

    def __init__(self, max_points: int = 1500) -> None:
        self.max_points = max_points
        self.step = 1
        self.n = 0
        self.ts: array[int] = array("q")
        self.values: array[float] = array("d")

    def add(self, ts: int, value: float) -> None:
        """Offer one point."""
        n = self.n
        self.n = n + 1
        if n % self.step:
            return
        self.ts.append(ts)
        self.values.append(value)
        if len(self.ts) >= 2 * self.max_points:
            self.ts = self.ts[::2]
            self.values = self.values[::2]
            self.step *= 2


@dataclass
class BacktestResult:
    """Everything a backtest produced; :mod:`~streamdesk.strategy.report` writes it out."""

    strategy: str
    params: dict[str, Any]
    tickers: list[str]
    initial_cash: float
    final_cash: float
    fill_model: FillModel
    events: int
    first_ts: int | None
    last_ts: int | None
    fills: list[FillRecord]
    round_trips: list[RoundTrip]
    open_trips: list[RoundTrip]
    positions: dict[str, int]
    last_prices: dict[str, float]
    equity_ts: array[int]
    equity: array[float]
    exposed: int  # equity samples with a position held
    rejected: list[dict[str, Any]]
    cancelled: int
    unfilled: list[str]
    logs: list[tuple[int, str]]
    log_lines: int
    dropped_events: int
    prices: dict[str, Decimator] = field(default_factory=dict)
    calendar: SessionCalendar | None = None
    source: dict[str, Any] = field(default_factory=dict)


def book(
    positions: dict[str, int],
    avg_prices: dict[str, float],
    open_trips: dict[str, RoundTrip],
    trips: list[RoundTrip],
    ticker: str,
    signed: int,
    price: float,
    commission: float,
    ts: int,
) -> None:
    """Book a fill of ``signed`` shares at ``price``: position, average price and round trips
    (opened, added to, closed, or flipped into a new one the other way)."""
    pos = positions.get(ticker, 0)
    avg = avg_prices.get(ticker, 0.0)
    trip = open_trips.get(ticker)
    new = pos + signed
    if pos == 0 or (pos > 0) == (signed > 0):
        # opening or adding
        if trip is None:
            trip = open_trips[ticker] = RoundTrip(
                ticker, "LONG" if signed > 0 else "SHORT", ts, price, abs(signed)
            )
        avg_prices[ticker] = (abs(pos) * avg + abs(signed) * price) / abs(new)
        trip.quantity = max(trip.quantity, abs(new))
        trip.pnl -= commission
        trip.fills += 1
        positions[ticker] = new
        return
    assert trip is not None
    closed = min(abs(signed), abs(pos))
    share = closed / abs(signed)
    trip.pnl += (price - avg) * closed * (1 if pos > 0 else -1) - commission * share
    trip.fills += 1
    if new == 0 or (new > 0) != (pos > 0):
        trip.exit_ts, trip.exit_price = ts, price
        trips.append(trip)
        del open_trips[ticker]
        if new == 0:
            del positions[ticker]
            del avg_prices[ticker]
            return
        # flipped: the rest opens a trip the other way
        open_trips[ticker] = RoundTrip(
            ticker,
            "LONG" if new > 0 else "SHORT",
            ts,
            price,
            abs(new),
            pnl=-commission * (1.0 - share),
            fills=1,
        )
        avg_prices[ticker] = price
    positions[ticker] = new
