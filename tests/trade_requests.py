"""A valid trade request to vary in unit tests (a 10-share AAPL limit buy at 100.05)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from streamdesk.models import TradeRequest


def req(**kw: Any) -> TradeRequest:
    """The base request with ``kw`` replacing its fields."""
    base: dict[str, Any] = {
        "symbol": "AAPL",
        "asset_type": "EQUITY",
        "instruction": "BUY",
        "quantity": Decimal(10),
        "order_type": "LIMIT",
        "limit_price": Decimal("100.05"),
    }
    base.update(kw)
    return TradeRequest(**base)
