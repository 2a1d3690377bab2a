"""The Schwab execution adapter: :class:`.broker.Broker` over schwab-py's ``AsyncClient``
(Schwab or market-sim, same code). It implements every method, the optional :meth:`quote` too.

Every call is bounded by ``timeout``. :meth:`place` classifies the outcome into exactly three
kinds: ``accepted`` (2xx with an order id in ``Location``), ``rejected`` (a definite 4xx
answer: the broker refused the order) and ``unknown`` (timeout, dropped connection, 5xx, 2xx
without a usable ``Location``, or anything unexpected): the order may exist and must be
reconciled, never re-sent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx

from streamdesk.errors import HTTP_ERRORS
from streamdesk.risk import Quote
from streamdesk.schwab import TokenExpiredError, force_token_refresh, schwab

from .broker import AccountSnapshot, BrokerError, PlaceKind, PlaceResult, Position
from .orders import BrokerOrder, parse_order

log = logging.getLogger(__name__)


def _error_text(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:300]
    if isinstance(body, dict):
        for key in ("message", "error", "errors", "error_description"):
            if body.get(key):
                value = body[key]
                if isinstance(value, list):
                    return "; ".join(
                        str(v.get("detail") or v.get("title") or v)
                        if isinstance(v, dict)
                        else str(v)
                        for v in value
                    )[:300]
                return str(value)[:300]
    return str(body)[:300]


def _d(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except ArithmeticError:
        return None


def _successor(raw: dict[str, Any]) -> str | None:
    """``replacingOrderCollection[0].orderId`` of a Schwab order (None if absent)."""
    found = raw.get("replacingOrderCollection")
    if isinstance(found, list) and found and isinstance(found[0], dict):
        new_id = found[0].get("orderId")
        if new_id is not None:
            return str(new_id)
    return None


class SchwabBroker:
    """One Schwab account through a schwab-py ``AsyncClient`` (a :class:`.broker.Broker`)."""

    def __init__(self, client: Any, account_hash: str, *, timeout: float = 10.0) -> None:
        self.client = client
        self.account_hash = account_hash
        self.timeout = timeout
        self.utils = schwab.utils.Utils(client, account_hash)
        #: Set when the token was refused: the executor must stop (operational error).
        self.fatal_error: str | None = None

    async def _call(self, make: Callable[[], Awaitable[Any]]) -> Any:
        """One bounded broker call; after a 401 the token is refreshed and the call retried
        once (a 401 is answered before the request is processed)."""
        for attempt in (1, 2):
            try:
                resp = await asyncio.wait_for(make(), self.timeout)
            except TimeoutError as exc:
                raise BrokerError(f"broker call timed out after {self.timeout:g}s") from exc
            except HTTP_ERRORS as exc:
                raise BrokerError(f"broker transport error: {type(exc).__name__}: {exc}") from exc
            if resp.status_code != 401 or attempt == 2:
                return resp
            log.warning("broker answered 401; refreshing the access token")
            force_token_refresh(self.client)
        raise AssertionError("unreachable")

    async def place(self, spec: dict[str, Any]) -> PlaceResult:
        """Send one order (or a conditional tree); classify the outcome (never raises for
        broker trouble)."""
        return await self._send(lambda: self.client.place_order(self.account_hash, spec))

    async def replace(self, order_id: str, spec: dict[str, Any]) -> PlaceResult:
        """Replace working order ``order_id`` by ``spec`` (schwab-py's ``replace_order``);
        classified exactly as :meth:`place`: the new order's id is in ``Location``."""
        return await self._send(
            lambda: self.client.replace_order(self.account_hash, int(order_id), spec)
        )

    async def replaced_by(self, order_id: str) -> str | None:
        """The successor of a ``REPLACED`` order, from its ``replacingOrderCollection``."""
        resp = await self._call(lambda: self.client.get_order(int(order_id), self.account_hash))
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            raise BrokerError(f"get order: HTTP {resp.status_code}: {_error_text(resp)}")
        body = resp.json()
        found = _successor(body) if isinstance(body, dict) else None
        return found

    async def _send(self, make: Callable[[], Awaitable[httpx.Response]]) -> PlaceResult:
        """One order-creating request (place or replace), sent once and classified."""
        try:
            resp = await asyncio.wait_for(make(), self.timeout)
            if resp.status_code == 401:
                # Refused before processing: nothing was placed; refresh and send once more.
                log.warning("broker answered 401 to an order; refreshing the access token")
                force_token_refresh(self.client)
                resp = await asyncio.wait_for(make(), self.timeout)
        except TimeoutError:
            return PlaceResult(
                PlaceKind.UNKNOWN,
                None,
                f"no answer within {self.timeout:g}s (broker call timeout)",
                None,
                time.time(),
            )
        except TokenExpiredError as exc:
            # Raised by the token refresh, before the order request is sent: nothing placed.
            self.fatal_error = str(exc)
            return PlaceResult(
                PlaceKind.REJECTED,
                None,
                "not sent: the Schwab token was refused; log in again",
                None,
                time.time(),
            )
        except HTTP_ERRORS as exc:
            return PlaceResult(
                PlaceKind.UNKNOWN,
                None,
                f"connection error after sending: {type(exc).__name__}",
                None,
                time.time(),
            )
        except Exception as exc:
            log.exception("unexpected error placing an order")
            return PlaceResult(
                PlaceKind.UNKNOWN,
                None,
                f"unexpected error: {type(exc).__name__}",
                None,
                time.time(),
            )
        now = time.time()
        status = resp.status_code
        if 200 <= status < 300:
            try:
                order_id = self.utils.extract_order_id(resp)
            except Exception as exc:
                return PlaceResult(
                    PlaceKind.UNKNOWN, None, f"unusable Location header: {exc}", status, now
                )
            if order_id is None:
                return PlaceResult(
                    PlaceKind.UNKNOWN, None, "accepted without a Location header", status, now
                )
            return PlaceResult(PlaceKind.ACCEPTED, str(order_id), "", status, now)
        if 400 <= status < 500:
            return PlaceResult(
                PlaceKind.REJECTED,
                None,
                f"broker rejected ({status}): {_error_text(resp)}",
                status,
                now,
            )
        return PlaceResult(
            PlaceKind.UNKNOWN, None, f"broker error {status} after sending", status, now
        )

    async def list_orders(self, since: datetime) -> list[BrokerOrder]:
        """The account's orders entered since ``since`` (at most 60 days back)."""
        now = datetime.now(UTC)
        since = max(since, now - timedelta(days=59))
        resp = await self._call(
            lambda: self.client.get_orders_for_account(
                self.account_hash,
                from_entered_datetime=since,
                to_entered_datetime=now + timedelta(minutes=5),
            )
        )
        if resp.status_code != 200:
            raise BrokerError(f"list orders: HTTP {resp.status_code}: {_error_text(resp)}")
        body = resp.json()
        if not isinstance(body, list):
            raise BrokerError("list orders: expected a JSON array")
        out = []
        for raw in body:
            if isinstance(raw, dict):
                parsed = parse_order(raw)
                if parsed is not None:
                    out.append(parsed)
        return out

    async def get_order(self, order_id: str) -> BrokerOrder | None:
        """One order by id (None if the broker does not know it)."""
        resp = await self._call(lambda: self.client.get_order(int(order_id), self.account_hash))
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            raise BrokerError(f"get order: HTTP {resp.status_code}: {_error_text(resp)}")
        body = resp.json()
        return parse_order(body) if isinstance(body, dict) else None

    async def cancel(self, order_id: str) -> tuple[bool, str]:
        """Ask the broker to cancel; (accepted, reason). Raises :class:`BrokerError` if unsure."""
        resp = await self._call(lambda: self.client.cancel_order(int(order_id), self.account_hash))
        if 200 <= resp.status_code < 300:
            return True, ""
        if 400 <= resp.status_code < 500:
            return False, f"cancel refused ({resp.status_code}): {_error_text(resp)}"
        raise BrokerError(f"cancel: HTTP {resp.status_code}")

    async def account(self) -> AccountSnapshot:
        """Balances and positions."""
        resp = await self._call(
            lambda: self.client.get_account(
                self.account_hash, fields=[self.client.Account.Fields.POSITIONS]
            )
        )
        if resp.status_code != 200:
            raise BrokerError(f"get account: HTTP {resp.status_code}: {_error_text(resp)}")
        body = resp.json()
        acct = body.get("securitiesAccount", body) if isinstance(body, dict) else {}
        bal = acct.get("currentBalances") or {}
        positions = []
        for raw in acct.get("positions") or []:
            inst = raw.get("instrument") or {}
            symbol = inst.get("symbol")
            if not symbol:
                continue
            qty = (_d(raw.get("longQuantity")) or Decimal(0)) - (
                _d(raw.get("shortQuantity")) or Decimal(0)
            )
            positions.append(
                Position(
                    symbol=str(symbol),
                    asset_type=str(inst.get("assetType", "EQUITY")),
                    quantity=qty,
                    average_price=_d(raw.get("averagePrice")),
                    market_value=_d(raw.get("marketValue")),
                    day_pnl=_d(raw.get("currentDayProfitLoss")),
                )
            )
        return AccountSnapshot(
            cash=_d(bal.get("cashBalance", bal.get("cashAvailableForTrading"))),
            buying_power=_d(bal.get("buyingPower", bal.get("cashAvailableForTrading"))),
            liquidation_value=_d(bal.get("liquidationValue")),
            positions=positions,
        )

    async def quote(self, symbol: str) -> Quote | None:
        """The broker's quote for ``symbol`` (None if unknown)."""
        resp = await self._call(lambda: self.client.get_quotes([symbol]))
        if resp.status_code != 200:
            raise BrokerError(f"quotes: HTTP {resp.status_code}")
        body = resp.json()
        entry = body.get(symbol) if isinstance(body, dict) else None
        if not isinstance(entry, dict):
            return None
        q = entry.get("quote") or {}
        ts = q.get("quoteTime") or q.get("tradeTime")
        bid, ask, last = _d(q.get("bidPrice")), _d(q.get("askPrice")), _d(q.get("lastPrice"))
        if not ts or last is None:
            return None  # a symbol the broker has never quoted (quoteTime 0)
        return Quote(symbol, bid or Decimal(0), ask or Decimal(0), last, int(ts))


async def resolve_account_hash(client: Any, configured: str | None, timeout: float) -> str:
    """The configured account hash, or the first linked account's hash."""
    if configured:
        return configured
    resp = await asyncio.wait_for(client.get_account_numbers(), timeout)
    if resp.status_code != 200:
        raise BrokerError(f"account numbers: HTTP {resp.status_code}")
    accounts = resp.json()
    if not accounts:
        raise BrokerError("no linked accounts")
    return str(accounts[0]["hashValue"])
