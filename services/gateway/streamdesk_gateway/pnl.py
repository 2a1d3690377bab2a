"""Profit and loss by average cost: the pure code moved to :mod:`streamdesk.pnl` (shared with
``streamdesk report`` and the strategy runtime); re-exported here for the gateway's routes."""

from __future__ import annotations

from streamdesk.pnl import (
    BUY_SIDE,
    SELL_SIDE,
    ZERO,
    Book,
    Fill,
    multiplier,
    realized_since,
    signed_quantity,
    unrealized,
)

__all__ = [
    "BUY_SIDE",
    "SELL_SIDE",
    "ZERO",
    "Book",
    "Fill",
    "multiplier",
    "realized_since",
    "signed_quantity",
    "unrealized",
]
