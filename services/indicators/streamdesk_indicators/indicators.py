"""Re-export of :mod:`streamdesk.indicators`, the indicator engine and its registry.

The pure engine lives in the shared package so that the backtester
(:mod:`streamdesk.strategy`) computes indicators with the very code this service runs,
without the shared package importing a service.
"""

from streamdesk.indicators import (
    EMA9,
    REGISTRY,
    SMA9,
    VWAP,
    Indicator,
    columns,
    register,
)

__all__ = ["EMA9", "REGISTRY", "SMA9", "VWAP", "Indicator", "columns", "register"]
