"""The paper account: cash, positions, what a fill does to them, and its Schwab JSON."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from streamdesk.models import parse_occ
from streamdesk_sim.orders import multiplier

#: (bid, ask, last) of (symbol, asset type); ValueError/OverflowError if unknown.
Quote = Callable[[str, str], tuple[float, float, float]]


@dataclass
class Position:
    """A position in one instrument."""

    symbol: str
    asset_type: str  # EQUITY | OPTION
    quantity: float = 0.0
    average_price: float = 0.0


class Account:
    """The simulator's single cash account."""

    def __init__(self, account_number: str, initial_cash: float) -> None:
        self.account_number = account_number
        self.initial_cash = initial_cash
        self.cash = initial_cash
        self.positions: dict[str, Position] = {}

    def reset(self, cash: float | None = None) -> None:
        """Forget positions; restore (or set) the cash balance."""
        self.cash = self.initial_cash if cash is None else cash
        self.positions.clear()

    def apply_fill(self, symbol: str, asset_type: str, buy: bool, qty: float, price: float) -> bool:
        """Book a fill of ``qty`` at ``price``; False (nothing booked) if cash cannot pay it."""
        sign = 1.0 if buy else -1.0
        cost = sign * qty * price * multiplier(asset_type)
        if sign > 0 and cost > self.cash + 1e-9:
            return False
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
        return True

    def to_json(self, quote: Quote, reserved: float, with_positions: bool) -> dict[str, Any]:
        """The account JSON as Schwab's GET accounts returns it, marked at ``quote``.

        ``reserved`` is the cash held by open buy orders (not available for trading).
        """
        long_value = 0.0
        positions: list[dict[str, Any]] = []
        for pos in self.positions.values():
            try:
                bid, ask, last = quote(pos.symbol, pos.asset_type)
            except (ValueError, OverflowError):
                bid = ask = last = pos.average_price
            mark = (bid + ask) / 2 if bid and ask else last
            mult = multiplier(pos.asset_type)
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
            "accountNumber": self.account_number,
            "roundTrips": 0,
            "isDayTrader": False,
            "isClosingOnlyRestricted": False,
            "pfcbFlag": False,
            "initialBalances": {
                "cashBalance": self.initial_cash,
                "totalCash": self.initial_cash,
                "liquidationValue": self.initial_cash,
                "accountValue": self.initial_cash,
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
