"""Domain models shared by every service.

Ticks are immutable, slotted dataclasses (cheap to create at 100k/s); trade requests are
pydantic models because they come from untrusted input (the dashboard, Supabase clients).
Times are UTC epoch milliseconds on ticks and timezone-aware datetimes elsewhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


@dataclass(frozen=True, slots=True)
class EquityTick:
    """A complete, normalized level-one equity update.

    ``volume`` is the cumulative session volume reported by the exchange feed;
    ``last_size`` the size of the last trade. ``ts`` is the event time (epoch ms) taken from
    Schwab's trade/quote time fields.
    """

    symbol: str
    ts: int
    last: float
    bid: float
    ask: float
    volume: int
    last_size: int


@dataclass(frozen=True, slots=True)
class OptionTick:
    """A complete, normalized level-one option update (OCC symbol as Schwab spells it)."""

    symbol: str
    ts: int
    last: float
    bid: float
    ask: float
    volume: int
    last_size: int
    underlying: str
    put_call: str  # "C" or "P"
    strike: float
    expiration: str  # ISO date, YYYY-MM-DD
    delta: float
    gamma: float
    theta: float
    vega: float
    rho: float
    iv: float
    open_interest: int
    underlying_price: float


class AssetType(StrEnum):
    """Asset class of a trade."""

    EQUITY = "EQUITY"
    OPTION = "OPTION"


class Instruction(StrEnum):
    """Schwab's order instructions."""

    BUY = "BUY"
    SELL = "SELL"
    BUY_TO_OPEN = "BUY_TO_OPEN"
    SELL_TO_CLOSE = "SELL_TO_CLOSE"
    SELL_TO_OPEN = "SELL_TO_OPEN"
    BUY_TO_CLOSE = "BUY_TO_CLOSE"


EQUITY_INSTRUCTIONS = frozenset({Instruction.BUY, Instruction.SELL})
OPTION_INSTRUCTIONS = frozenset(set(Instruction) - EQUITY_INSTRUCTIONS)


class OrderType(StrEnum):
    """Order types StreamDesk places."""

    MARKET = "MARKET"
    LIMIT = "LIMIT"


class Duration(StrEnum):
    """Order durations (Schwab's words)."""

    DAY = "DAY"
    GOOD_TILL_CANCEL = "GOOD_TILL_CANCEL"
    FILL_OR_KILL = "FILL_OR_KILL"


class TradeStatus(StrEnum):
    """Life of a ``trades`` row; see DESIGN.md."""

    PENDING = "pending"
    REJECTED = "rejected"
    SUBMITTING = "submitting"
    WORKING = "working"
    FILLED = "filled"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    CANCEL_REQUESTED = "cancel_requested"
    UNKNOWN = "unknown"


FINAL_STATUSES = frozenset(
    {TradeStatus.REJECTED, TradeStatus.FILLED, TradeStatus.CANCELLED, TradeStatus.EXPIRED}
)

# \Z, not $: "$" also matches before a trailing newline, and "AAPL\n" is not a symbol.
EQUITY_SYMBOL_RE = re.compile(r"^[A-Z][A-Z0-9.\-/]{0,9}\Z")
#: OCC symbol as Schwab spells it: root padded to 6 chars, YYMMDD, C/P, strike x1000 (8 digits).
OCC_SYMBOL_RE = re.compile(r"^(?P<root>[A-Z0-9 ]{6})(?P<date>\d{6})(?P<cp>[CP])(?P<strike>\d{8})\Z")


@dataclass(frozen=True, slots=True)
class OccSymbol:
    """Parsed OCC option symbol."""

    root: str
    expiration: date
    put_call: str
    strike: Decimal

    def __str__(self) -> str:
        return format_occ(self.root, self.expiration, self.put_call, self.strike)


def parse_occ(symbol: str) -> OccSymbol:
    """Parse an OCC symbol (``"AAPL  251219C00200000"``); raise ``ValueError`` if malformed."""
    m = OCC_SYMBOL_RE.match(symbol)
    if not m:
        raise ValueError(f"not an OCC option symbol: {symbol!r}")
    root = m["root"].rstrip()
    if not root or " " in root:
        raise ValueError(f"bad option root in {symbol!r}")
    d = m["date"]
    expiration = date(2000 + int(d[:2]), int(d[2:4]), int(d[4:6]))
    return OccSymbol(root, expiration, m["cp"], Decimal(m["strike"]) / 1000)


def format_occ(root: str, expiration: date, put_call: str, strike: Decimal | float) -> str:
    """Format an OCC symbol the way Schwab spells it."""
    strike_int = int((Decimal(str(strike)) * 1000).to_integral_value())
    return f"{root:<6}{expiration:%y%m%d}{put_call}{strike_int:08d}"


#: Upper bound of a request's quantity and limit price: no real order comes near it, and
#: beyond it the risk arithmetic (28-digit Decimal context) raises instead of answering.
MAX_REQUEST_VALUE = Decimal(10**9)


class TradeRequest(BaseModel):
    """The request columns of a ``trades`` row, validated for shape (not risk)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    symbol: str = Field(min_length=1, max_length=32)
    asset_type: AssetType
    instruction: Instruction
    quantity: Decimal = Field(gt=0, le=MAX_REQUEST_VALUE)
    order_type: OrderType = OrderType.LIMIT
    limit_price: Decimal | None = Field(default=None, gt=0, le=MAX_REQUEST_VALUE)
    duration: Duration = Duration.DAY

    @field_validator("symbol")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper() if not OCC_SYMBOL_RE.match(value) else value

    @model_validator(mode="after")
    def _consistent(self) -> TradeRequest:
        if self.asset_type is AssetType.EQUITY:
            if not EQUITY_SYMBOL_RE.match(self.symbol):
                raise ValueError(f"not an equity symbol: {self.symbol!r}")
            if self.instruction not in EQUITY_INSTRUCTIONS:
                raise ValueError(f"{self.instruction} is not an equity instruction (BUY, SELL)")
        else:
            parse_occ(self.symbol)
            if self.instruction not in OPTION_INSTRUCTIONS:
                raise ValueError(
                    f"{self.instruction} is not an option instruction "
                    "(BUY_TO_OPEN, SELL_TO_CLOSE, SELL_TO_OPEN, BUY_TO_CLOSE)"
                )
        if self.order_type is OrderType.LIMIT and self.limit_price is None:
            raise ValueError("a LIMIT order needs limit_price")
        if self.order_type is OrderType.MARKET and self.limit_price is not None:
            raise ValueError("a MARKET order must not have limit_price")
        return self
