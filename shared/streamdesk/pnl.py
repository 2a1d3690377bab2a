"""Profit and loss by average cost: realized P&L from fills, unrealized from a mark.

Pure arithmetic (``Decimal``, no I/O), so every case is unit-tested: partial fills, buy then
sell, shorts, crossing through zero, the option multiplier.

Average cost: a fill in the direction of the position (or opening one) moves the average to
the quantity-weighted mean; a fill against it realizes ``(price - average) * closed quantity
* multiplier`` for a long (the opposite sign for a short) and leaves the average unchanged; a
fill larger than the position closes it and opens the remainder at the fill price.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

BUY_SIDE = frozenset({"BUY", "BUY_TO_OPEN", "BUY_TO_CLOSE", "BUY_TO_COVER"})
SELL_SIDE = frozenset({"SELL", "SELL_SHORT", "SELL_TO_OPEN", "SELL_TO_CLOSE"})
ZERO = Decimal(0)


def multiplier(asset_type: str) -> Decimal:
    """Contract multiplier: 100 shares per option contract, 1 otherwise."""
    return Decimal(100) if asset_type.upper() == "OPTION" else Decimal(1)


def signed_quantity(instruction: str, quantity: Decimal) -> Decimal:
    """``quantity`` with the instruction's sign (buys +, sells -)."""
    if instruction in BUY_SIDE:
        return quantity
    if instruction in SELL_SIDE:
        return -quantity
    raise ValueError(f"unknown instruction {instruction!r}")


@dataclass(frozen=True, slots=True)
class Fill:
    """One order's filled part: ``quantity`` > 0 at ``price`` (the average fill price)."""

    at: datetime
    instruction: str
    quantity: Decimal
    price: Decimal


@dataclass(slots=True)
class Book:
    """A position under average cost and the P&L it realized."""

    quantity: Decimal = ZERO
    average: Decimal = ZERO
    realized: Decimal = ZERO

    def apply(self, signed_qty: Decimal, price: Decimal, mult: Decimal = Decimal(1)) -> Decimal:
        """Apply one fill (``signed_qty`` > 0 buys); return the P&L it realized."""
        if signed_qty == 0:
            return ZERO
        realized = ZERO
        if self.quantity == 0 or (self.quantity > 0) == (signed_qty > 0):
            total = self.quantity + signed_qty
            self.average = (self.average * self.quantity + price * signed_qty) / total
            self.quantity = total
        else:
            closed = min(abs(signed_qty), abs(self.quantity))
            direction = Decimal(1) if self.quantity > 0 else Decimal(-1)
            realized = (price - self.average) * closed * direction * mult
            self.quantity += signed_qty
            if self.quantity == 0:
                self.average = ZERO
            elif (self.quantity > 0) != (direction > 0):  # crossed through zero
                self.average = price
        self.realized += realized
        return realized


def realized_since(
    fills: Iterable[Fill],
    since: datetime,
    *,
    asset_type: str = "EQUITY",
    opening_quantity: Decimal = ZERO,
    opening_average: Decimal = ZERO,
) -> tuple[Decimal, Book]:
    """Replay ``fills`` (any order; sorted by time here) from an opening position; return
    the P&L realized by fills at or after ``since`` and the resulting book."""
    mult = multiplier(asset_type)
    book = Book(quantity=opening_quantity, average=opening_average if opening_quantity else ZERO)
    total = ZERO
    for fill in sorted(fills, key=lambda f: f.at):
        gained = book.apply(signed_quantity(fill.instruction, fill.quantity), fill.price, mult)
        if fill.at >= since:
            total += gained
    return total, book


def unrealized(
    quantity: Decimal, average: Decimal | None, mark: Decimal | None, asset_type: str
) -> Decimal | None:
    """``(mark - average) * quantity * multiplier``; None when the mark or average is unknown."""
    if mark is None or average is None:
        return None
    return (mark - average) * quantity * multiplier(asset_type)
