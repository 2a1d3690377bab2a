"""Paper broker: one cash account, Schwab-shaped orders, fills against the simulated quotes.

Market orders fill at the touch on the next market step (buy at the ask, sell at the bid);
limit orders rest as WORKING and fill when the market crosses them (at the limit or better).
Rejections happen after acceptance, as at Schwab: the order exists with status REJECTED and a
``statusDescription``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from streamdesk.models import parse_occ

if TYPE_CHECKING:
    from streamdesk_sim.engine import Sim

log = logging.getLogger(__name__)

EQUITY_INSTRUCTIONS = {"BUY", "SELL", "SELL_SHORT", "BUY_TO_COVER"}
OPTION_INSTRUCTIONS = {"BUY_TO_OPEN", "SELL_TO_CLOSE", "SELL_TO_OPEN", "BUY_TO_CLOSE"}
BUYS = {"BUY", "BUY_TO_COVER", "BUY_TO_OPEN", "BUY_TO_CLOSE"}
OPEN_STATUSES = {"WORKING", "QUEUED", "PENDING_ACTIVATION", "ACCEPTED", "AWAITING_PARENT_ORDER"}
FINAL_STATUSES = {"FILLED", "CANCELED", "REJECTED", "EXPIRED", "REPLACED"}


class OrderError(ValueError):
    """A malformed order request (HTTP 400 with a message)."""


def schwab_time(ts: float) -> str:
    """Schwab's timestamp format, e.g. ``2024-03-21T14:30:00+0000``."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


def parse_schwab_time(text: str) -> datetime:
    """Parse the time formats schwab-py sends as order filters."""
    text = text.strip().replace("Z", "+00:00")
    if text.endswith("+0000"):
        text = text[:-5] + "+00:00"
    dt = datetime.fromisoformat(text)
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


@dataclass
class Position:
    """A position in one instrument."""

    symbol: str
    asset_type: str  # EQUITY | OPTION
    quantity: float = 0.0
    average_price: float = 0.0


class Broker:
    """Cash, positions and orders of the simulator's single account."""

    def __init__(self, sim: Sim) -> None:
        self.sim = sim
        self.cash = sim.settings.initial_cash
        self.positions: dict[str, Position] = {}
        self.orders: dict[int, dict[str, Any]] = {}
        self.next_order_id = 1_000_000_001 + (sim.settings.seed % 1000) * 1_000_000
        self.next_activity_id = 90_000_000_001

    # ----------------------------------------------------------------- helpers

    def reset(self, cash: float | None = None) -> None:
        """Forget orders and positions; restore (or set) the cash balance."""
        self.cash = self.sim.settings.initial_cash if cash is None else cash
        self.positions.clear()
        self.orders.clear()

    def _multiplier(self, asset_type: str) -> float:
        return 100.0 if asset_type == "OPTION" else 1.0

    def quote(self, symbol: str, asset_type: str) -> tuple[float, float, float]:
        """(bid, ask, last) of an instrument."""
        if asset_type == "OPTION":
            opt = self.sim.market.option(symbol, self.sim.clock.now())
            v = opt.values
            last = v[4] if v[4] is not None else v[37]
            return float(v[2]), float(v[3]), float(last)
        eq = self.sim.market.equity(symbol)
        return eq.bid, eq.ask, eq.last

    def working_option_symbols(self) -> list[str]:
        """Option symbols with open orders (kept repricing even without subscribers)."""
        return [
            o["orderLegCollection"][0]["instrument"]["symbol"]
            for o in self.orders.values()
            if o["status"] in OPEN_STATUSES
            and o["orderLegCollection"][0]["orderLegType"] == "OPTION"
        ]

    # ----------------------------------------------------------------- orders

    def validate(self, spec: Any) -> dict[str, Any]:
        """Check an order request's shape; return the normalized single leg."""
        if not isinstance(spec, dict):
            raise OrderError("order must be a JSON object")
        strategy = spec.get("orderStrategyType", "SINGLE")
        if strategy != "SINGLE":
            raise OrderError(f"orderStrategyType {strategy!r} is not supported by market-sim")
        order_type = spec.get("orderType")
        if order_type not in ("MARKET", "LIMIT"):
            raise OrderError(f"orderType {order_type!r} is not supported (MARKET, LIMIT)")
        legs = spec.get("orderLegCollection")
        if not isinstance(legs, list) or len(legs) != 1 or not isinstance(legs[0], dict):
            raise OrderError("orderLegCollection must hold exactly one leg")
        leg = legs[0]
        instrument = leg.get("instrument")
        if not isinstance(instrument, dict):
            raise OrderError("leg instrument must be an object")
        symbol = instrument.get("symbol")
        asset_type = instrument.get("assetType")
        instruction = leg.get("instruction")
        if not isinstance(symbol, str) or not symbol:
            raise OrderError("instrument.symbol is required")
        if asset_type == "EQUITY":
            if instruction not in EQUITY_INSTRUCTIONS:
                raise OrderError(f"instruction {instruction!r} is invalid for an equity")
            symbol = symbol.upper()
        elif asset_type == "OPTION":
            if instruction not in OPTION_INSTRUCTIONS:
                raise OrderError(f"instruction {instruction!r} is invalid for an option")
            try:
                parse_occ(symbol)
            except ValueError as exc:
                raise OrderError(str(exc)) from None
        else:
            raise OrderError(f"assetType {asset_type!r} is not supported (EQUITY, OPTION)")
        try:
            quantity = float(leg.get("quantity", ""))
        except (TypeError, ValueError):
            raise OrderError("leg quantity must be a number") from None
        # finite first: int() of inf/NaN raises, and NaN compares false to everything
        if not math.isfinite(quantity) or quantity <= 0 or quantity != int(quantity):
            raise OrderError("leg quantity must be a positive whole number")
        price = None
        if order_type == "LIMIT":
            try:
                price = float(spec.get("price", ""))
            except (TypeError, ValueError):
                raise OrderError("a LIMIT order needs a numeric price") from None
            if not math.isfinite(price) or price <= 0:
                raise OrderError("price must be a positive number")
        return {
            "symbol": symbol,
            "asset_type": asset_type,
            "instruction": instruction,
            "quantity": quantity,
            "price": price,
            "order_type": order_type,
        }

    def place(self, spec: dict[str, Any], parent: int | None = None) -> dict[str, Any]:
        """Accept an order (validated by :meth:`validate`); returns the stored order."""
        leg = self.validate(spec)
        now = self.sim.clock.now()
        order_id = self.next_order_id
        self.next_order_id += 1
        order: dict[str, Any] = {
            "session": spec.get("session", "NORMAL"),
            "duration": spec.get("duration", "DAY"),
            "orderType": leg["order_type"],
            "complexOrderStrategyType": spec.get("complexOrderStrategyType", "NONE"),
            "quantity": leg["quantity"],
            "filledQuantity": 0.0,
            "remainingQuantity": leg["quantity"],
            "requestedDestination": "AUTO",
            "destinationLinkName": "SIM",
            "orderLegCollection": [
                {
                    "orderLegType": leg["asset_type"],
                    "legId": 1,
                    "instrument": {
                        "assetType": leg["asset_type"],
                        "symbol": leg["symbol"],
                        "instrumentId": abs(hash(leg["symbol"])) % 10**9,
                    },
                    "instruction": leg["instruction"],
                    "positionEffect": "OPENING"
                    if leg["instruction"] in ("BUY", "BUY_TO_OPEN", "SELL_TO_OPEN", "SELL_SHORT")
                    else "CLOSING",
                    "quantity": leg["quantity"],
                }
            ],
            "orderStrategyType": "SINGLE",
            "orderId": order_id,
            "cancelable": True,
            "editable": True,
            "status": "WORKING",
            "enteredTime": schwab_time(now),
            "tag": "API_TOS:market-sim",
            "accountNumber": int(self.sim.settings.account_number),
        }
        if leg["price"] is not None:
            order["price"] = leg["price"]
        if leg["asset_type"] == "OPTION":
            occ = parse_occ(leg["symbol"])
            order["orderLegCollection"][0]["instrument"].update(
                {"underlyingSymbol": occ.root, "putCall": "CALL" if occ.put_call == "C" else "PUT"}
            )
        self.orders[order_id] = order
        self.sim.send_activity("OrderCreated", self._activity_data(order))
        reason = self._reject_reason(order)
        if reason:
            self._finish(order, "REJECTED", now)
            order["statusDescription"] = reason
            self.sim.send_activity("OrderRejected", self._activity_data(order))
            return order
        self.sim.send_activity("OrderAccepted", self._activity_data(order))
        if not self.sim.clock.is_open():
            order["status"] = "QUEUED"
        return order

    def _reject_reason(self, order: dict[str, Any]) -> str | None:
        leg = order["orderLegCollection"][0]
        asset_type = leg["orderLegType"]
        symbol = leg["instrument"]["symbol"]
        qty = float(leg["quantity"])
        instruction = leg["instruction"]
        try:
            _, ask, _ = self.quote(symbol, asset_type)
        except (ValueError, OverflowError) as exc:
            return f"Unknown or expired instrument: {exc}"
        mult = self._multiplier(asset_type)
        if instruction in BUYS:
            est = order.get("price") or ask
            reserved = self._reserved_cash(exclude=order["orderId"])
            if est * qty * mult > self.cash - reserved + 1e-9:
                return "Insufficient buying power for this order"
        held = self.positions.get(symbol)
        held_qty = held.quantity if held else 0.0
        if instruction in ("SELL", "SELL_TO_CLOSE") and qty > held_qty + 1e-9:
            return f"Not enough shares/contracts to sell: hold {held_qty:g}, selling {qty:g}"
        if instruction == "BUY_TO_CLOSE" and qty > -held_qty + 1e-9:
            return f"No short position of {qty:g} to close"
        if instruction == "SELL_SHORT":
            return "Short selling is not supported in the paper cash account"
        return None

    def _reserved_cash(self, exclude: int) -> float:
        total = 0.0
        for o in self.orders.values():
            if o["orderId"] == exclude or o["status"] not in OPEN_STATUSES:
                continue
            leg = o["orderLegCollection"][0]
            if leg["instruction"] not in BUYS:
                continue
            price = o.get("price")
            if price is None:
                try:
                    price = self.quote(leg["instrument"]["symbol"], leg["orderLegType"])[1]
                except (ValueError, OverflowError):
                    continue
            total += price * o["remainingQuantity"] * self._multiplier(leg["orderLegType"])
        return total

    def on_market(self, changed: dict[str, dict[int, Any]]) -> None:
        """After a market step: fill market orders and crossed limit orders."""
        if not self.orders or not self.sim.clock.is_open():
            return
        for order in list(self.orders.values()):
            if order["status"] not in OPEN_STATUSES:
                continue
            leg = order["orderLegCollection"][0]
            symbol = leg["instrument"]["symbol"]
            asset_type = leg["orderLegType"]
            if order["status"] == "QUEUED":
                order["status"] = "WORKING"
            try:
                bid, ask, _ = self.quote(symbol, asset_type)
            except (ValueError, OverflowError):
                continue
            buy = leg["instruction"] in BUYS
            touch = ask if buy else bid
            if touch <= 0:
                continue
            if order["orderType"] == "MARKET":
                self._fill(order, touch)
            else:
                limit = float(order["price"])
                if (buy and ask <= limit) or (not buy and bid >= limit):
                    self._fill(order, touch)

    def _fill(self, order: dict[str, Any], price: float) -> None:
        leg = order["orderLegCollection"][0]
        asset_type = leg["orderLegType"]
        symbol = leg["instrument"]["symbol"]
        qty = float(order["remainingQuantity"])
        mult = self._multiplier(asset_type)
        sign = 1.0 if leg["instruction"] in BUYS else -1.0
        cost = sign * qty * price * mult
        if sign > 0 and cost > self.cash + 1e-9:
            now = self.sim.clock.now()
            self._finish(order, "REJECTED", now)
            order["statusDescription"] = "Insufficient buying power at fill time"
            self.sim.send_activity("OrderRejected", self._activity_data(order))
            return
        self.cash -= cost
        pos = self.positions.get(symbol)
        if pos is None:
            pos = self.positions[symbol] = Position(symbol, asset_type)
        new_qty = pos.quantity + sign * qty
        if pos.quantity == 0 or (pos.quantity > 0) == (sign > 0):
            total = abs(pos.quantity) * pos.average_price + qty * price
            pos.average_price = total / abs(new_qty) if new_qty else 0.0
        pos.quantity = new_qty
        if abs(pos.quantity) < 1e-9:
            del self.positions[symbol]
        now = self.sim.clock.now()
        activity_id = self.next_activity_id
        self.next_activity_id += 1
        order["filledQuantity"] = float(order["quantity"])
        order["remainingQuantity"] = 0.0
        order.setdefault("orderActivityCollection", []).append(
            {
                "activityType": "EXECUTION",
                "activityId": activity_id,
                "executionType": "FILL",
                "quantity": qty,
                "orderRemainingQuantity": 0.0,
                "executionLegs": [
                    {
                        "legId": 1,
                        "quantity": qty,
                        "mismarkedQuantity": 0.0,
                        "price": price,
                        "time": schwab_time(now),
                        "instrumentId": leg["instrument"]["instrumentId"],
                    }
                ],
            }
        )
        self._finish(order, "FILLED", now)
        data = self._activity_data(order)
        data.update({"ExecutionPrice": price, "ExecutionQuantity": qty})
        self.sim.send_activity("ExecutionCreated", data)
        self.sim.send_activity("OrderFillCompleted", data)

    def _finish(self, order: dict[str, Any], status: str, now: float) -> None:
        order["status"] = status
        order["cancelable"] = False
        order["editable"] = False
        order["closeTime"] = schwab_time(now)

    def _activity_data(self, order: dict[str, Any]) -> dict[str, Any]:
        leg = order["orderLegCollection"][0]
        return {
            "SchwabOrderID": str(order["orderId"]),
            "AccountNumber": self.sim.settings.account_number,
            "Symbol": leg["instrument"]["symbol"],
            "Instruction": leg["instruction"],
            "Quantity": order["quantity"],
            "OrderType": order["orderType"],
            "Status": order["status"],
        }

    def cancel(self, order_id: int) -> tuple[bool, str]:
        """Cancel a working order: (ok, message)."""
        order = self.orders.get(order_id)
        if order is None:
            return False, "Order not found"
        if order["status"] not in OPEN_STATUSES:
            return False, f"Order {order_id} cannot be canceled: status {order['status']}"
        self._finish(order, "CANCELED", self.sim.clock.now())
        self.sim.send_activity("CancelAccepted", self._activity_data(order))
        self.sim.send_activity("OrderUROutCompleted", self._activity_data(order))
        return True, ""

    def replace(self, order_id: int, spec: dict[str, Any]) -> dict[str, Any]:
        """Replace a working order by a new one (old becomes REPLACED)."""
        old = self.orders.get(order_id)
        if old is None:
            raise KeyError(order_id)
        if old["status"] not in OPEN_STATUSES:
            raise OrderError(f"Order {order_id} cannot be replaced: status {old['status']}")
        self.validate(spec)
        self._finish(old, "REPLACED", self.sim.clock.now())
        new = self.place(spec)
        old["replacingOrderCollection"] = [{"orderId": new["orderId"]}]
        return new

    def query(
        self,
        *,
        from_time: datetime | None,
        to_time: datetime | None,
        status: str | None,
        max_results: int | None,
    ) -> list[dict[str, Any]]:
        """Orders filtered like Schwab's GET orders (newest first)."""
        out = []
        for o in sorted(self.orders.values(), key=lambda o: -o["orderId"]):
            entered = parse_schwab_time(o["enteredTime"])
            if from_time and entered < from_time:
                continue
            if to_time and entered > to_time:
                continue
            if status and o["status"] != status:
                continue
            out.append(o)
        if max_results:
            out = out[:max_results]
        return out

    # ----------------------------------------------------------------- account

    def account_json(self, with_positions: bool) -> dict[str, Any]:
        """``securitiesAccount`` JSON as Schwab's GET accounts returns it."""
        long_value = 0.0
        positions: list[dict[str, Any]] = []
        for pos in self.positions.values():
            try:
                bid, ask, last = self.quote(pos.symbol, pos.asset_type)
            except (ValueError, OverflowError):
                bid = ask = last = pos.average_price
            mark = (bid + ask) / 2 if bid and ask else last
            mult = self._multiplier(pos.asset_type)
            value = pos.quantity * mark * mult
            long_value += value
            instrument: dict[str, Any] = {
                "assetType": pos.asset_type,
                "symbol": pos.symbol,
                "cusip": "",
                "netChange": 0.0,
            }
            if pos.asset_type == "OPTION":
                occ = parse_occ(pos.symbol)
                instrument.update(
                    {
                        "underlyingSymbol": occ.root,
                        "putCall": "CALL" if occ.put_call == "C" else "PUT",
                        "type": "VANILLA",
                    }
                )
            positions.append(
                {
                    "shortQuantity": max(0.0, -pos.quantity),
                    "averagePrice": round(pos.average_price, 4),
                    "currentDayProfitLoss": round(
                        value - pos.quantity * pos.average_price * mult, 2
                    ),
                    "currentDayProfitLossPercentage": 0.0,
                    "longQuantity": max(0.0, pos.quantity),
                    "settledLongQuantity": max(0.0, pos.quantity),
                    "settledShortQuantity": max(0.0, -pos.quantity),
                    "instrument": instrument,
                    "marketValue": round(value, 2),
                    "maintenanceRequirement": 0.0,
                    "averageLongPrice": round(pos.average_price, 4),
                    "taxLotAverageLongPrice": round(pos.average_price, 4),
                    "longOpenProfitLoss": round(value - pos.quantity * pos.average_price * mult, 2),
                    "previousSessionLongQuantity": 0.0,
                    "currentDayCost": 0.0,
                }
            )
        reserved = self._reserved_cash(exclude=-1)
        cash = round(self.cash, 2)
        liquidation = round(self.cash + long_value, 2)
        balances = {
            "accruedInterest": 0.0,
            "cashBalance": cash,
            "cashReceipts": 0.0,
            "longOptionMarketValue": round(
                sum(
                    p["marketValue"]
                    for p in positions
                    if p["instrument"]["assetType"] == "OPTION" and p["marketValue"] > 0
                ),
                2,
            ),
            "liquidationValue": liquidation,
            "longMarketValue": round(
                sum(
                    p["marketValue"] for p in positions if p["instrument"]["assetType"] == "EQUITY"
                ),
                2,
            ),
            "moneyMarketFund": 0.0,
            "savings": 0.0,
            "shortMarketValue": 0.0,
            "pendingDeposits": 0.0,
            "cashAvailableForTrading": round(self.cash - reserved, 2),
            "cashAvailableForWithdrawal": round(self.cash - reserved, 2),
            "cashCall": 0.0,
            "longNonMarginableMarketValue": 0.0,
            "totalCash": cash,
            "cashDebitCallValue": 0.0,
            "unsettledCash": 0.0,
            "buyingPower": round(self.cash - reserved, 2),
        }
        account: dict[str, Any] = {
            "type": "CASH",
            "accountNumber": self.sim.settings.account_number,
            "roundTrips": 0,
            "isDayTrader": False,
            "isClosingOnlyRestricted": False,
            "pfcbFlag": False,
            "initialBalances": {
                "cashBalance": self.sim.settings.initial_cash,
                "totalCash": self.sim.settings.initial_cash,
                "liquidationValue": self.sim.settings.initial_cash,
                "accountValue": self.sim.settings.initial_cash,
            },
            "currentBalances": balances,
            "projectedBalances": {
                "cashAvailableForTrading": balances["cashAvailableForTrading"],
                "cashAvailableForWithdrawal": balances["cashAvailableForWithdrawal"],
                "buyingPower": balances["buyingPower"],
            },
        }
        if with_positions:
            account["positions"] = positions
        return {
            "securitiesAccount": account,
            "aggregatedBalance": {
                "currentLiquidationValue": liquidation,
                "liquidationValue": liquidation,
            },
        }
