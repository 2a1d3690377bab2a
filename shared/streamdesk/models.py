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
    STOP = "STOP"
    STOP_LIMIT = "STOP_LIMIT"
    TRAILING_STOP = "TRAILING_STOP"


#: The order types with a trigger (``stop_trigger`` applies to them).
STOP_ORDER_TYPES = frozenset({OrderType.STOP, OrderType.STOP_LIMIT, OrderType.TRAILING_STOP})


class TrailType(StrEnum):
    """How a trailing stop's offset is measured (Schwab's ``stopPriceLinkType``)."""

    VALUE = "VALUE"  # dollars
    PERCENT = "PERCENT"


class StopTrigger(StrEnum):
    """The price a stop watches; for a trailing stop also the price the trail follows.

    ``LAST`` is Schwab's ``stopType`` ``STANDARD``; the others have the same name there.
    """

    LAST = "LAST"
    BID = "BID"
    ASK = "ASK"
    MARK = "MARK"


class Leg(StrEnum):
    """A ``trades`` row's place in a bracket (``trades.leg``)."""

    SINGLE = "single"
    ENTRY = "entry"
    TAKE_PROFIT = "take_profit"
    STOP_LOSS = "stop_loss"


#: Instructions that open a position, and the instruction that exits it.
_EXITS = {
    Instruction.BUY: Instruction.SELL,
    Instruction.BUY_TO_OPEN: Instruction.SELL_TO_CLOSE,
    Instruction.SELL_TO_OPEN: Instruction.BUY_TO_CLOSE,
}
OPENING_INSTRUCTIONS = frozenset(_EXITS)


def exit_instruction(instruction: Instruction | str) -> Instruction:
    """The instruction that exits a position opened with ``instruction`` (``BUY`` -> ``SELL``).

    Raises ``ValueError`` for an instruction that does not open a position.
    """
    try:
        return _EXITS[Instruction(instruction)]
    except KeyError:
        raise ValueError(
            f"{instruction} does not open a position (BUY, BUY_TO_OPEN, SELL_TO_OPEN)"
        ) from None


def is_buy(instruction: Instruction | str) -> bool:
    """True for the instructions that buy (``BUY``, ``BUY_TO_OPEN``, ``BUY_TO_CLOSE``)."""
    return str(instruction).startswith("BUY")


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


#: The request columns of a ``trades`` row: what a client inserts, and what
#: :class:`TradeRequest` validates (in this order).
REQUEST_COLUMNS: tuple[str, ...] = (
    "symbol",
    "asset_type",
    "instruction",
    "quantity",
    "order_type",
    "limit_price",
    "duration",
    "stop_price",
    "trail_type",
    "trail_offset",
    "stop_trigger",
    "take_profit_price",
    "stop_loss_price",
)


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
    stop_price: Decimal | None = Field(default=None, gt=0, le=MAX_REQUEST_VALUE)
    trail_type: TrailType | None = None
    trail_offset: Decimal | None = Field(default=None, gt=0, le=MAX_REQUEST_VALUE)
    stop_trigger: StopTrigger | None = None
    take_profit_price: Decimal | None = Field(default=None, gt=0, le=MAX_REQUEST_VALUE)
    stop_loss_price: Decimal | None = Field(default=None, gt=0, le=MAX_REQUEST_VALUE)

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
        self._check_prices()
        if self.is_bracket:
            if self.order_type not in (OrderType.MARKET, OrderType.LIMIT):
                raise ValueError(
                    f"a bracket's entry is MARKET or LIMIT, not {self.order_type.value}"
                )
            if self.instruction not in OPENING_INSTRUCTIONS:
                raise ValueError(
                    f"a bracket's entry opens a position (BUY, BUY_TO_OPEN, SELL_TO_OPEN), "
                    f"not {self.instruction.value}"
                )
        return self

    def _check_prices(self) -> None:
        kind = self.order_type
        needs_limit = kind in (OrderType.LIMIT, OrderType.STOP_LIMIT)
        needs_stop = kind in (OrderType.STOP, OrderType.STOP_LIMIT)
        trailing = kind is OrderType.TRAILING_STOP
        if needs_limit and self.limit_price is None:
            raise ValueError(f"a {kind.value} order needs limit_price")
        if not needs_limit and self.limit_price is not None:
            raise ValueError(f"a {kind.value} order must not have limit_price")
        if needs_stop and self.stop_price is None:
            raise ValueError(f"a {kind.value} order needs stop_price")
        if not needs_stop and self.stop_price is not None:
            raise ValueError(f"a {kind.value} order must not have stop_price")
        if trailing and (self.trail_type is None or self.trail_offset is None):
            raise ValueError("a TRAILING_STOP order needs trail_type and trail_offset")
        if not trailing and (self.trail_type is not None or self.trail_offset is not None):
            raise ValueError("trail_type and trail_offset are for TRAILING_STOP orders only")
        if self.stop_trigger is not None and kind not in STOP_ORDER_TYPES:
            raise ValueError("stop_trigger is for STOP, STOP_LIMIT and TRAILING_STOP orders only")

    @property
    def is_bracket(self) -> bool:
        """True if the request carries exits (``take_profit_price`` and/or ``stop_loss_price``)."""
        return self.take_profit_price is not None or self.stop_loss_price is not None

    @property
    def is_buy(self) -> bool:
        """True if the order buys (``BUY``, ``BUY_TO_OPEN``, ``BUY_TO_CLOSE``)."""
        return is_buy(self.instruction)

    def single(self) -> TradeRequest:
        """This request without its exits: the entry order alone."""
        if not self.is_bracket:
            return self
        return self.model_copy(update={"take_profit_price": None, "stop_loss_price": None})

    def bracket_legs(self) -> tuple[tuple[Leg, TradeRequest], ...]:
        """The exit legs of a bracket, in tree order (take-profit, then stop-loss).

        Each is the request of a leg row: the exit instruction, the entry's symbol, quantity
        and duration; the take-profit a ``LIMIT`` at ``take_profit_price``, the stop-loss a
        ``STOP`` at ``stop_loss_price``. Empty for a request that is not a bracket.
        """
        legs: list[tuple[Leg, TradeRequest]] = []
        if self.take_profit_price is not None:
            legs.append((Leg.TAKE_PROFIT, self._exit(OrderType.LIMIT, self.take_profit_price)))
        if self.stop_loss_price is not None:
            legs.append((Leg.STOP_LOSS, self._exit(OrderType.STOP, self.stop_loss_price)))
        return tuple(legs)

    def _exit(self, order_type: OrderType, price: Decimal) -> TradeRequest:
        return TradeRequest(
            symbol=self.symbol,
            asset_type=self.asset_type,
            instruction=exit_instruction(self.instruction),
            quantity=self.quantity,
            duration=self.duration,
            order_type=order_type,
            limit_price=price if order_type is OrderType.LIMIT else None,
            stop_price=price if order_type is OrderType.STOP else None,
        )
