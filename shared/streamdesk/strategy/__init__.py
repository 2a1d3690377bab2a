"""Strategies: the API shared by the live runtime and the backtester (docs/strategies.md)."""

from streamdesk.strategy.api import (
    Bar,
    Context,
    Fill,
    Indicators,
    OrderRequest,
    OrderUpdate,
    Strategy,
    StrategyError,
    Tick,
    load_strategy,
)

__all__ = [
    "Bar",
    "Context",
    "Fill",
    "Indicators",
    "OrderRequest",
    "OrderUpdate",
    "Strategy",
    "StrategyError",
    "Tick",
    "load_strategy",
]
