"""Pre-trade risk and validation, shared by the trade-executor and the gateway's pre-check.

Everything here is pure: :func:`check_trade` takes the trade request, a :class:`RiskContext`
(the facts gathered by the caller: quote, recent activity, buying power, clock) and the
:class:`RiskLimits`, and returns every rule the trade breaks, each with a stable ``code`` and a
human-readable ``reason``. The executor gathers the context inside the claiming transaction
(under a per-account advisory lock, so concurrent executors see consistent counts); the gateway
gathers a best-effort context to give the user an immediate answer. The executor's verdict is
the one that counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from pydantic import Field, ValidationError

from .config import CommonSettings, MarketHoursMode, TradingMode
from .market_calendar import is_market_open
from .models import REQUEST_COLUMNS, AssetType, Instruction, OrderType, TradeRequest

if TYPE_CHECKING:
    from .control import KillSwitch

NEW_YORK = ZoneInfo("America/New_York")
OPTION_MULTIPLIER = Decimal(100)

#: Instructions that need buying power (opening or covering positions).
BUYING_POWER_INSTRUCTIONS = frozenset(
    {Instruction.BUY, Instruction.BUY_TO_OPEN, Instruction.BUY_TO_CLOSE, Instruction.SELL_TO_OPEN}
)
#: Instructions that buy (pay the ask for a market order).
BUY_SIDE = frozenset({Instruction.BUY, Instruction.BUY_TO_OPEN, Instruction.BUY_TO_CLOSE})


@dataclass(frozen=True, slots=True)
class Quote:
    """Latest quote of a symbol; ``ts`` is the quote time in epoch milliseconds."""

    symbol: str
    bid: Decimal
    ask: Decimal
    last: Decimal
    ts: int

    @property
    def mid(self) -> Decimal:
        """Mid price, or ``last`` when one side is missing."""
        if self.bid > 0 and self.ask > 0:
            return (self.bid + self.ask) / 2
        return self.last

    def age_seconds(self, now: datetime) -> float:
        """Age of the quote at ``now`` (aware datetime), in seconds."""
        return now.timestamp() - self.ts / 1000.0


def quote_from_mapping(symbol: str, raw: dict[Any, Any]) -> Quote | None:
    """Build a :class:`Quote` from a Redis hash (fields ``last, bid, ask, ts``); None if bad.

    Keys and values may be bytes or str, as redis-py returns them.
    """
    data = {
        (k.decode() if isinstance(k, bytes) else str(k)): (
            v.decode() if isinstance(v, bytes) else str(v)
        )
        for k, v in raw.items()
    }
    try:
        return Quote(
            symbol=symbol,
            bid=Decimal(data.get("bid", "0")),
            ask=Decimal(data.get("ask", "0")),
            last=Decimal(data.get("last", "0")),
            ts=int(float(data["ts"])),
        )
    except (KeyError, ValueError, InvalidOperation):
        return None


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """The configurable limits; see :class:`RiskSettings` for the meaning of each."""

    trading_enabled: bool = True
    trading_mode: TradingMode = TradingMode.PAPER
    market_hours: MarketHoursMode = MarketHoursMode.ALWAYS
    quote_max_age: float = 5.0
    max_quantity_equity: int = 10_000
    max_quantity_option: int = 100
    collar_pct: Decimal = Decimal("0.05")
    stop_limit_collar_pct: Decimal = Decimal("0.05")
    trail_min_pct: Decimal = Decimal("0.1")
    trail_max_pct: Decimal = Decimal(25)
    max_order_notional: Decimal = Decimal(50_000)
    max_daily_notional: Decimal = Decimal(250_000)
    max_orders_per_minute: int = 30
    duplicate_window: float = 10.0
    allow_market_orders: bool = False
    check_buying_power: bool = True


@dataclass(frozen=True, slots=True)
class RiskContext:
    """Facts about the world at check time, gathered by the caller.

    ``orders_last_minute`` and ``day_notional`` count orders already sent (or being sent) for
    the account; ``duplicate_of`` is the id of an identical order created within the duplicate
    window (None if there is none); ``buying_power`` comes from the synced balances (None if
    never synced); ``open_buy_notional`` is the notional of open orders that consume it.
    ``live_broker`` is True when orders would go to the real Schwab API. ``kill_switch`` is
    the control plane's switch (:func:`streamdesk.control.read_kill_switch`), None if unknown.
    ``submitter_is_operator`` says whether the trade's submitter may trade: a service
    (``trades.user_id IS NULL``) or a user listed in ``operators`` (docs/supabase.md). It has
    no default on purpose: every caller states who is asking.
    """

    now: datetime
    quote: Quote | None
    submitter_is_operator: bool
    live_broker: bool = False
    orders_last_minute: int = 0
    day_notional: Decimal = Decimal(0)
    duplicate_of: int | None = None
    buying_power: Decimal | None = None
    open_buy_notional: Decimal = Decimal(0)
    kill_switch: KillSwitch | None = None


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule: a stable ``code`` and the reason shown to the user."""

    code: str
    reason: str


@dataclass(frozen=True, slots=True)
class RiskResult:
    """Outcome of :func:`check_trade`: the violations (empty = accepted) and the notional."""

    violations: tuple[Violation, ...]
    notional: Decimal | None = None
    request: TradeRequest | None = None
    codes: frozenset[str] = field(default_factory=frozenset)

    @property
    def ok(self) -> bool:
        """True when no rule is broken."""
        return not self.violations

    @property
    def reason(self) -> str:
        """All reasons, joined; empty when accepted."""
        return "; ".join(v.reason for v in self.violations)


def session_open(now: datetime, mode: MarketHoursMode) -> bool:
    """Whether orders may be sent at ``now`` under ``mode``.

    ``always`` is always open (the simulator's default); ``regular`` (09:30-16:00) and
    ``extended`` (07:00-20:00) America/New_York follow the NYSE calendar in
    :mod:`streamdesk.market_calendar`: weekends, holidays and half days (13:00 close).
    """
    return is_market_open(now, mode)


def price_tick(asset_type: AssetType, price: Decimal) -> Decimal:
    """Minimum price increment: equities 0.01 (0.0001 below $1); options 0.05 below $3, else 0.1."""
    if asset_type is AssetType.EQUITY:
        return Decimal("0.01") if price >= 1 else Decimal("0.0001")
    return Decimal("0.05") if price < 3 else Decimal("0.10")


def on_tick(asset_type: AssetType, price: Decimal) -> bool:
    """Whether ``price`` is a whole number of ticks."""
    return price % price_tick(asset_type, price) == 0


def multiplier(asset_type: AssetType) -> Decimal:
    """Contract multiplier: 100 for options, 1 for equities."""
    return OPTION_MULTIPLIER if asset_type is AssetType.OPTION else Decimal(1)


def reference_price(req: TradeRequest, quote: Quote | None) -> Decimal | None:
    """Price used for notional: the limit price, else the touch (ask to buy, bid to sell);
    stops per :func:`streamdesk.risk_orders.notional_price`."""
    from .risk_orders import notional_price  # it builds on this module

    return notional_price(req, quote)


def order_notional(req: TradeRequest, quote: Quote | None) -> Decimal | None:
    """Notional of ``req`` in dollars (quantity x price x multiplier), None if unpriceable."""
    price = reference_price(req, quote)
    if price is None:
        return None
    return req.quantity * price * multiplier(req.asset_type)


def parse_request(row: dict[str, Any]) -> TradeRequest | Violation:
    """Validate the request columns of a ``trades`` row; a :class:`Violation` if malformed."""
    fields = {k: row.get(k) for k in REQUEST_COLUMNS if row.get(k) is not None}
    try:
        return TradeRequest.model_validate(fields)
    except ValidationError as exc:
        parts = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            msg = str(err["msg"]).removeprefix("Value error, ")
            parts.append(f"{loc}: {msg}" if loc else msg)
        return Violation("invalid_request", "invalid order: " + "; ".join(parts))


def check_trade(req: TradeRequest, ctx: RiskContext, limits: RiskLimits) -> RiskResult:
    """Every rule ``req`` breaks under ``ctx`` and ``limits`` (empty result = accepted).

    Rules, in order: submitter is an operator, kill switch, live/paper guard, session hours,
    market orders allowed, integer quantity within limits, quote present and fresh, prices on
    a tick, the limit inside the collar and the order-type rules (stop side, stop-limit
    collar, trail bounds, bracket entry and sides: :mod:`streamdesk.risk_orders`), notional
    per order, notional per day, orders per minute, identical order within the window, buying
    power.
    """
    out: list[Violation] = []
    add = out.append
    if not ctx.submitter_is_operator:
        add(
            Violation(
                "not_operator",
                "the submitter is not an operator; only operators may trade "
                "(streamdesk operators add)",
            )
        )
    if ctx.kill_switch is not None and ctx.kill_switch.engaged:
        why = f": {ctx.kill_switch.reason}" if ctx.kill_switch.reason else ""
        add(Violation("kill_switch", f"the kill switch is engaged{why}"))
    if not limits.trading_enabled:
        add(Violation("trading_disabled", "trading is disabled (TRADING_ENABLED=false)"))
    if ctx.live_broker and limits.trading_mode is not TradingMode.LIVE:
        add(
            Violation(
                "live_not_enabled",
                "the broker is live Schwab but TRADING_MODE is not 'live'; refusing real orders",
            )
        )
    if not session_open(ctx.now, limits.market_hours):
        add(
            Violation(
                "market_closed",
                f"market is closed ({limits.market_hours.value} session hours, America/New_York)",
            )
        )
    if req.order_type is OrderType.MARKET and not limits.allow_market_orders:
        add(
            Violation(
                "market_orders_disabled",
                "market orders are disabled (set RISK_ALLOW_MARKET_ORDERS=true); use a limit order",
            )
        )

    qty = req.quantity
    max_qty = (
        limits.max_quantity_option
        if req.asset_type is AssetType.OPTION
        else limits.max_quantity_equity
    )
    if qty != qty.to_integral_value():
        add(Violation("quantity_not_integer", f"quantity must be a whole number (got {qty})"))
    elif qty < 1 or qty > max_qty:
        add(Violation("quantity_limit", f"quantity {qty} is outside 1..{max_qty}"))

    quote = ctx.quote
    if quote is None:
        add(Violation("no_quote", f"no quote for {req.symbol}"))
    else:
        age = quote.age_seconds(ctx.now)
        if age > limits.quote_max_age:
            add(
                Violation(
                    "stale_quote",
                    f"quote for {req.symbol} is {age:.1f}s old (max {limits.quote_max_age:g}s)",
                )
            )

    from .risk_orders import price_violations  # it builds on this module

    out.extend(price_violations(req, quote, limits))

    notional = order_notional(req, quote)
    if notional is not None:
        if notional > limits.max_order_notional:
            add(
                Violation(
                    "order_notional",
                    f"order notional {notional:.2f} exceeds the per-order maximum "
                    f"{limits.max_order_notional}",
                )
            )
        if ctx.day_notional + notional > limits.max_daily_notional:
            add(
                Violation(
                    "daily_notional",
                    f"daily notional would reach {ctx.day_notional + notional:.2f}, above the "
                    f"maximum {limits.max_daily_notional}",
                )
            )
        if limits.check_buying_power and req.instruction in BUYING_POWER_INSTRUCTIONS:
            if ctx.buying_power is None:
                add(
                    Violation(
                        "buying_power_unknown", "buying power is unknown (no balances synced)"
                    )
                )
            elif notional + ctx.open_buy_notional > ctx.buying_power:
                add(
                    Violation(
                        "buying_power",
                        f"order needs {notional:.2f} but buying power is {ctx.buying_power:.2f} "
                        f"({ctx.open_buy_notional:.2f} held by open orders)",
                    )
                )

    if ctx.orders_last_minute >= limits.max_orders_per_minute:
        add(
            Violation(
                "rate_limit",
                f"{ctx.orders_last_minute} orders in the last minute "
                f"(max {limits.max_orders_per_minute}/min)",
            )
        )
    if ctx.duplicate_of is not None:
        add(
            Violation(
                "duplicate",
                f"identical to trade #{ctx.duplicate_of} submitted less than "
                f"{limits.duplicate_window:g}s ago",
            )
        )
    return RiskResult(tuple(out), notional, req, frozenset(v.code for v in out))


class RiskSettings(CommonSettings):
    """Risk limits from the environment; subclass it in a service's ``Settings``."""

    trading_enabled: bool = Field(
        default=True, description="Kill switch: false rejects every order."
    )
    risk_quote_max_age: float = Field(
        default=5.0, gt=0, description="Reject when the symbol's quote is older (seconds)."
    )
    risk_max_quantity_equity: int = Field(default=10_000, ge=1, description="Max shares per order.")
    risk_max_quantity_option: int = Field(default=100, ge=1, description="Max contracts per order.")
    risk_collar_pct: Decimal = Field(
        default=Decimal("0.05"),
        ge=0,
        le=1,
        description="Limit price must be within [bid x (1-p), ask x (1+p)].",
    )
    risk_stop_limit_collar_pct: Decimal = Field(
        default=Decimal("0.05"),
        ge=0,
        le=1,
        description="A stop-limit's limit within stop x (1 ± p), on the far side of the stop.",
    )
    risk_trail_min_pct: Decimal = Field(
        default=Decimal("0.1"), gt=0, le=100, description="Smallest percent trail (in %)."
    )
    risk_trail_max_pct: Decimal = Field(
        default=Decimal(25),
        gt=0,
        le=100,
        description="Largest trail: percent trail, or dollar trail as % of the price (in %).",
    )
    risk_max_order_notional: Decimal = Field(
        default=Decimal(50_000), gt=0, description="Max notional per order (USD)."
    )
    risk_max_daily_notional: Decimal = Field(
        default=Decimal(250_000), gt=0, description="Max notional sent per account per day (USD)."
    )
    risk_max_orders_per_minute: int = Field(
        default=30, ge=1, description="Max orders sent per account per minute."
    )
    risk_duplicate_window: float = Field(
        default=10.0, ge=0, description="Reject an identical order within this many seconds."
    )
    risk_allow_market_orders: bool = Field(default=False, description="Allow MARKET orders.")
    risk_check_buying_power: bool = Field(
        default=True, description="Check buying power from the synced balances."
    )

    def risk_limits(self) -> RiskLimits:
        """The limits as a :class:`RiskLimits`."""
        return RiskLimits(
            trading_enabled=self.trading_enabled,
            trading_mode=self.trading_mode,
            market_hours=self.market_hours,
            quote_max_age=self.risk_quote_max_age,
            max_quantity_equity=self.risk_max_quantity_equity,
            max_quantity_option=self.risk_max_quantity_option,
            collar_pct=self.risk_collar_pct,
            stop_limit_collar_pct=self.risk_stop_limit_collar_pct,
            trail_min_pct=self.risk_trail_min_pct,
            trail_max_pct=self.risk_trail_max_pct,
            max_order_notional=self.risk_max_order_notional,
            max_daily_notional=self.risk_max_daily_notional,
            max_orders_per_minute=self.risk_max_orders_per_minute,
            duplicate_window=self.risk_duplicate_window,
            allow_market_orders=self.risk_allow_market_orders,
            check_buying_power=self.risk_check_buying_power,
        )


def day_start(now: datetime) -> datetime:
    """Start of the trading day (midnight America/New_York) containing ``now``."""
    local = now.astimezone(NEW_YORK)
    return datetime(local.year, local.month, local.day, tzinfo=NEW_YORK)


def minute_ago(now: datetime) -> datetime:
    """``now`` minus one minute (window of the orders-per-minute rule)."""
    return now - timedelta(minutes=1)
