"""Response models of the market-data and account reads (they make the OpenAPI document)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

Timeframe = Literal["1s", "1m", "5m", "15m", "1h", "1D"]

#: ``responses=`` of a route whose parameters are validated (bad ticker, date, tf...).
BAD_INPUT: dict[int | str, dict[str, Any]] = {
    422: {"description": "Invalid parameter (ticker, date, timeframe, limit...)."}
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "Unknown resource."}}


class ConfigOut(BaseModel):
    tickers: list[str]
    option_underlyings: list[str]
    trading_mode: Literal["paper", "live"]
    trading_enabled: bool
    kill_switch: bool
    market_orders: bool
    version: str


class QuoteOut(BaseModel):
    bid: float | None = None
    ask: float | None = None
    last: float | None = None
    ts: int | None = Field(default=None, description="Quote time, epoch ms.")
    volume: int | None = Field(default=None, description="Shares traded this session so far.")
    prev_close: float | None = Field(
        default=None, description="Last price of the previous session with data."
    )
    sma9: float | None = None
    vwap: float | None = None


class CandlesOut(BaseModel):
    """Columns as arrays; ``t`` = bucket start (epoch ms; New York midnight for 1D)."""

    ticker: str
    tf: Timeframe
    session: str | None = Field(description="New York date (YYYY-MM-DD); null: no data.")
    t: list[int]
    o: list[float]
    h: list[float]
    l: list[float]  # noqa: E741 - the contract's name
    c: list[float]
    v: list[int]
    sma9: list[float | None]
    vwap: list[float | None]


class SessionsOut(BaseModel):
    ticker: str
    sessions: list[str] = Field(description="New York dates with data, ascending.")


class Cross(BaseModel):
    t: int = Field(description="The second the cross happened (epoch ms).")
    price: float
    direction: Literal["up", "down"]


class SignalsOut(BaseModel):
    ticker: str
    session: str | None
    crosses: list[Cross]


class GapOut(BaseModel):
    id: int
    source: str
    started_at: str
    ended_at: str | None
    symbols: list[str]
    reason: str


class OptionContract(BaseModel):
    ticker: str
    ts: int
    option_type: Literal["CALL", "PUT"]
    strike_price: float
    expiration_date: str
    last_price: float | None
    bid: float | None
    ask: float | None
    delta: float | None
    gamma: float | None
    theta: float | None
    vega: float | None
    implied_volatility: float | None
    open_interest: int | None
    underlying_price: float | None


class OptionChainOut(BaseModel):
    underlying: str
    underlying_price: float | None
    expirations: list[str]
    contracts: list[OptionContract]


class FillOut(BaseModel):
    trade_id: int
    t: int = Field(description="Time of the (last) fill, epoch ms.")
    instruction: str
    quantity: float
    price: float


class PositionPnl(BaseModel):
    symbol: str
    asset_type: str
    quantity: float
    average_price: float | None
    mark: float | None
    market_value: float | None
    unrealized: float | None
    day_pnl: float | None


class BalancesOut(BaseModel):
    cash: float | None
    buying_power: float | None
    liquidation_value: float | None


class PnlOut(BaseModel):
    positions: list[PositionPnl]
    realized_today: float
    unrealized_total: float
    day_pnl_total: float
    balances: BalancesOut | None


class HistoryOut(BaseModel):
    ticker: str
    t: list[int]
    price: list[float]
    volume: list[int]
    sma9: list[float | None]
    vwap: list[float | None]


class BarOut(BaseModel):
    bucket: str
    open: float
    high: float
    low: float
    close: float
    volume: int
    vwap: float | None
