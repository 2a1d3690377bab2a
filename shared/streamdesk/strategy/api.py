"""The strategy API: one set of types and one base class for the live runtime and the backtester.

A strategy is a subclass of :class:`Strategy` with a class attribute ``name``, a ``Params``
dataclass (every field with a default) and the event methods it needs. It talks to the world
only through its :class:`Context` -- the live runtime (``services/strategy``) and the
backtester (:mod:`streamdesk.strategy.backtest`) each implement one -- so the same code runs
in both. Strategies must be deterministic given their inputs: no wall clock (use
``ctx.now_ms``), no unseeded randomness, no I/O besides ``ctx.log``.

Order keys are idempotent client order ids: derive them from the signal (``ticker``, the bar's
``ts`` and a tag), never from a counter or the clock, so that a restarted live runtime that
replays a signal submits the same key and the order is not sent twice
(:meth:`Context.submit` of a known key is a no-op).
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

Side = Literal["BUY", "SELL"]
OrderType = Literal["MARKET", "LIMIT"]


@dataclass(frozen=True, slots=True)
class Bar:
    """A finished bar: 1-minute (``bars_1m``, backfill) or 1-second (``equity_data`` rows)."""

    ticker: str
    ts: int  # start of the bar, epoch ms UTC
    open: float
    high: float
    low: float
    close: float
    volume: int
    vwap: float | None = None


@dataclass(frozen=True, slots=True)
class Tick:
    """One committed per-second row (``messages.CommittedEquity`` without the indicators)."""

    ticker: str
    ts: int  # start of the second, epoch ms UTC
    price: float | None
    bid: float | None
    ask: float | None
    volume: int


@dataclass(frozen=True, slots=True)
class Indicators:
    """The indicator values the indicators service computes (``None`` until warm)."""

    sma9: float | None = None
    vwap: float | None = None
    ema9: float | None = None


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """What a strategy asks for: a ``trades`` row live, a simulated order in a backtest.

    ``key`` is the idempotent client order id, deterministic per signal
    (e.g. ``f"{ticker}:{ts}:{tag}"``).
    """

    key: str
    ticker: str
    side: Side
    quantity: int
    order_type: OrderType = "MARKET"
    limit_price: float | None = None

    def __post_init__(self) -> None:
        if not self.key:
            raise ValueError("order key must not be empty")
        if self.side not in ("BUY", "SELL"):
            raise ValueError(f"order side must be BUY or SELL, not {self.side!r}")
        if isinstance(self.quantity, bool) or not isinstance(self.quantity, int):
            raise ValueError(f"order quantity must be an int, not {self.quantity!r}")
        if self.quantity <= 0:
            raise ValueError(f"order quantity must be positive, not {self.quantity}")
        if self.order_type == "LIMIT":
            lp = self.limit_price
            if lp is None or not (lp > 0 and lp - lp == 0.0):
                raise ValueError(f"a LIMIT order needs a positive finite limit_price, not {lp!r}")
        elif self.order_type == "MARKET":
            if self.limit_price is not None:
                raise ValueError("a MARKET order has no limit_price")
        else:
            raise ValueError(f"order type must be MARKET or LIMIT, not {self.order_type!r}")


@dataclass(frozen=True, slots=True)
class Fill:
    """An execution of an order (the simulator and the backtester fill whole orders)."""

    key: str
    ticker: str
    side: Side
    quantity: int
    price: float
    ts: int  # epoch ms UTC


#: Statuses an :class:`OrderUpdate` carries (a subset of the ``trades`` statuses).
ORDER_STATUSES = ("ACCEPTED", "FILLED", "CANCELLED", "REJECTED")


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """A change of an order's status."""

    key: str
    status: str  # one of ORDER_STATUSES (live may also report the executor's own words)
    filled_quantity: int
    avg_fill_price: float | None
    error: str | None = None


@runtime_checkable
class Context(Protocol):
    """What a strategy can see and do; implemented by the live runtime and the backtester."""

    @property
    def now_ms(self) -> int:
        """Event time of the event being handled (epoch ms UTC); never the wall clock."""
        ...

    @property
    def state(self) -> dict[str, Any]:
        """The strategy's own JSON-serialisable state (persisted by the live runtime)."""
        ...

    def position(self, ticker: str) -> int:
        """Signed quantity held (negative: short)."""
        ...

    def avg_price(self, ticker: str) -> float | None:
        """Average entry price of the open position (``None`` when flat)."""
        ...

    def submit(self, order: OrderRequest) -> str:
        """Place ``order``; return its key. A key already submitted is a no-op."""
        ...

    def cancel(self, key: str) -> None:
        """Cancel the open order ``key`` (no-op if unknown or no longer open)."""
        ...

    def open_orders(self, ticker: str | None = None) -> list[OrderRequest]:
        """Orders submitted and not yet filled, cancelled or rejected (oldest first)."""
        ...

    def log(self, message: str) -> None:
        """Record a line attributed to the strategy."""
        ...


class StrategyError(Exception):
    """A strategy cannot be loaded or configured (bad path, bad class, bad parameters)."""


class Strategy:
    """Base class of every strategy. Override the ``on_*`` methods you need.

    Class attributes: ``name`` (unique, used as ``strategy_id`` prefix and in reports) and
    ``Params`` (a dataclass whose fields all have defaults; ``params`` given to the constructor
    override them and unknown names are refused). ``tickers`` is the tuple the strategy trades
    (``()``: every ticker it is fed); it can be set by a ``tickers`` parameter.
    """

    name: ClassVar[str] = ""
    tickers: tuple[str, ...] = ()

    @dataclass(frozen=True)
    class Params:
        """No parameters."""

    def __init__(self, ctx: Context, params: Mapping[str, Any] | None = None) -> None:
        self.ctx = ctx
        self.params = make_params(type(self), params)
        tickers = getattr(self.params, "tickers", None)
        if tickers:
            self.tickers = tuple(str(t) for t in tickers)

    # --- events -----------------------------------------------------------------------

    def on_start(self) -> None:
        """Called once before the first event (after the live runtime restored ``state``)."""

    def on_bar(self, bar: Bar, ind: Indicators) -> None:
        """A bar of one of the strategy's tickers finished; ``ind`` at its close."""

    def on_tick(self, tick: Tick, ind: Indicators) -> None:
        """A committed per-second row; ``ind`` are that row's indicator values."""

    def on_fill(self, fill: Fill) -> None:
        """One of the strategy's orders filled (the position already includes it)."""

    def on_order_update(self, update: OrderUpdate) -> None:
        """One of the strategy's orders changed status (after :meth:`on_fill` for a fill)."""

    # --- helpers built on Context.submit ----------------------------------------------

    def buy(self, ticker: str, quantity: int, key_tag: str, limit: float | None = None) -> str:
        """Submit a BUY keyed ``f"{ticker}:{ctx.now_ms}:{key_tag}"`` (LIMIT if ``limit``)."""
        return self._order(ticker, "BUY", quantity, key_tag, limit)

    def sell(self, ticker: str, quantity: int, key_tag: str, limit: float | None = None) -> str:
        """Submit a SELL keyed ``f"{ticker}:{ctx.now_ms}:{key_tag}"`` (LIMIT if ``limit``)."""
        return self._order(ticker, "SELL", quantity, key_tag, limit)

    def flatten(self, ticker: str | None = None, key_tag: str = "flatten") -> list[str]:
        """Cancel the open orders and close the position of ``ticker`` (all tickers: None).

        Returns the keys of the closing orders (market orders).
        """
        names = [ticker] if ticker is not None else list(self.tickers)
        keys: list[str] = []
        for order in self.ctx.open_orders(ticker):
            self.ctx.cancel(order.key)
        for t in names:
            pos = self.ctx.position(t)
            if pos > 0:
                keys.append(self.sell(t, pos, key_tag))
            elif pos < 0:
                keys.append(self.buy(t, -pos, key_tag))
        return keys

    def _order(
        self, ticker: str, side: Side, quantity: int, key_tag: str, limit: float | None
    ) -> str:
        order = OrderRequest(
            key=f"{ticker}:{self.ctx.now_ms}:{key_tag}",
            ticker=ticker,
            side=side,
            quantity=quantity,
            order_type="LIMIT" if limit is not None else "MARKET",
            limit_price=limit,
        )
        return self.ctx.submit(order)


def make_params(cls: type[Strategy], params: Mapping[str, Any] | None) -> Any:
    """``cls.Params`` with ``params`` applied; :class:`StrategyError` on unknown names or a
    value the dataclass refuses."""
    pcls = cls.Params
    if not dataclasses.is_dataclass(pcls):
        raise StrategyError(f"{cls.__name__}.Params must be a dataclass")
    given = dict(params or {})
    fields = {f.name for f in dataclasses.fields(pcls)}
    unknown = sorted(set(given) - fields)
    if unknown:
        raise StrategyError(
            f"{cls.__name__}: unknown parameter(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(fields)) or '(none)'}"
        )
    try:
        return pcls(**given)
    except (TypeError, ValueError) as exc:
        raise StrategyError(f"{cls.__name__}: bad parameters: {exc}") from exc


def load_strategy(path: str) -> type[Strategy]:
    """The strategy class named by ``path``: ``"package.module:ClassName"``, or
    ``"package.module"`` holding exactly one :class:`Strategy` subclass defined there.

    Raises :class:`StrategyError` with a message that says what was wrong.
    """
    if not isinstance(path, str) or not path.strip():
        raise StrategyError("strategy path is empty; expected 'package.module:ClassName'")
    module_name, _, class_name = path.strip().partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise StrategyError(f"strategy module {module_name!r} not found ({exc})") from exc
    except Exception as exc:  # a module that fails on import is the strategy's bug
        raise StrategyError(
            f"strategy module {module_name!r} failed to import: {type(exc).__name__}: {exc}"
        ) from exc
    if class_name:
        obj = getattr(module, class_name, None)
        if obj is None:
            raise StrategyError(f"module {module_name!r} has no attribute {class_name!r}")
        if not (inspect.isclass(obj) and issubclass(obj, Strategy)) or obj is Strategy:
            raise StrategyError(f"{path!r} is not a Strategy subclass")
        cls: type[Strategy] = obj
    else:
        found = [
            o
            for o in vars(module).values()
            if inspect.isclass(o)
            and issubclass(o, Strategy)
            and o is not Strategy
            and o.__module__ == module.__name__
        ]
        if len(found) != 1:
            names = ", ".join(sorted(o.__name__ for o in found)) or "none"
            raise StrategyError(
                f"module {module_name!r} defines {len(found)} Strategy subclasses ({names}); "
                f"name one: '{module_name}:ClassName'"
            )
        cls = found[0]
    if not cls.name:
        raise StrategyError(f"{cls.__module__}.{cls.__qualname__} has no `name`")
    return cls
