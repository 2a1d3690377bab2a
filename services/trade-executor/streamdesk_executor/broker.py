"""The executor's interface to a broker: the :class:`Broker` protocol and what crosses it.

One implementation per venue: :class:`.schwab_broker.SchwabBroker` (Schwab's API, or market-sim
speaking the same protocol, through schwab-py). The executor, the quote provider and the
reconciliation type against :class:`Broker`, never against an adapter class.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol

from streamdesk.errors import TemporaryError
from streamdesk.risk import Quote

from .orders import BrokerOrder


class PlaceKind(StrEnum):
    """Outcome class of a place-order call."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class PlaceResult:
    """Outcome of :meth:`Broker.place`; ``accepted_at`` is the epoch time of the answer."""

    kind: PlaceKind
    order_id: str | None
    reason: str
    http_status: int | None
    accepted_at: float


class BrokerError(TemporaryError):
    """A broker call that failed (timeout, transport error, non-2xx); safe to retry later."""


@dataclass(frozen=True, slots=True)
class Position:
    """One position from the broker."""

    symbol: str
    asset_type: str
    quantity: Decimal
    average_price: Decimal | None
    market_value: Decimal | None
    day_pnl: Decimal | None


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    """Balances and positions of the account."""

    cash: Decimal | None
    buying_power: Decimal | None
    liquidation_value: Decimal | None
    positions: list[Position] = field(default_factory=list)


class Broker(Protocol):
    """Execution client of one broker account.

    Required (the executor cannot run without them):

    * :attr:`account_hash` - the account every call acts on;
    * :meth:`place` - send one order (a single order or a conditional tree), classify the
      answer; never raises for broker trouble;
    * :meth:`replace` - replace a working order by another (a stop move), classified as
      :meth:`place` is; the old order can be replaced only once, so a lost answer is
      reconciled from the old order's successor (:meth:`replaced_by`), never re-sent;
    * :meth:`replaced_by` - the id of the order that replaced a ``REPLACED`` one;
    * :meth:`list_orders`, :meth:`get_order` - the broker's view of orders (sync, reconcile);
    * :meth:`cancel` - ask for a cancel;
    * :meth:`account` - balances and positions;
    * :attr:`fatal_error` - set (not raised) when :meth:`place` met an operational error
      (the token was refused): the executor stops.

    Optional:

    * :meth:`quote` - the broker's quote, the fallback when the streamer's is missing or
      stale. A venue without one raises :class:`NotImplementedError`; quotes then come from
      Redis only.

    Every call is bounded by the adapter's own timeout. Calls other than :meth:`place` raise
    :class:`BrokerError` (temporary: retried on the next pass) or an
    :class:`streamdesk.errors.OperationalError` (stop). A call must never send an order
    twice: :meth:`place` reports ``unknown`` rather than retrying after the request may
    have reached the broker.
    """

    @property
    def account_hash(self) -> str:
        """The account's hash (Schwab's opaque account id)."""
        ...

    @property
    def fatal_error(self) -> str | None:
        """Why the adapter cannot go on (an operational error), or None."""
        ...

    async def place(self, spec: dict[str, Any]) -> PlaceResult:
        """Send one order (Schwab order JSON) once: ``accepted`` with the order id,
        ``rejected`` (definitely not placed) or ``unknown`` (may exist: reconcile)."""
        ...

    async def replace(self, order_id: str, spec: dict[str, Any]) -> PlaceResult:
        """Replace working order ``order_id`` by ``spec`` once: ``accepted`` with the new
        order's id, ``rejected`` (refused: the old order still works) or ``unknown``."""
        ...

    async def replaced_by(self, order_id: str) -> str | None:
        """The id of the order that replaced ``order_id`` (None if none is known)."""
        ...

    async def list_orders(self, since: datetime) -> list[BrokerOrder]:
        """The account's top-level orders entered since ``since``, each with its tree."""
        ...

    async def get_order(self, order_id: str) -> BrokerOrder | None:
        """One order by id (None if the broker does not know it)."""
        ...

    async def cancel(self, order_id: str) -> tuple[bool, str]:
        """Ask the broker to cancel: (accepted, reason if refused)."""
        ...

    async def account(self) -> AccountSnapshot:
        """Balances and positions."""
        ...

    async def quote(self, symbol: str) -> Quote | None:
        """Optional: the broker's quote of ``symbol`` (None if it has none)."""
        ...
