"""Example strategies that ship with StreamDesk (docs/strategies.md, "Examples")."""

from streamdesk.strategy.examples.opening_range import OpeningRangeBreakout
from streamdesk.strategy.examples.sma_vwap import SmaVwapCross

__all__ = ["OpeningRangeBreakout", "SmaVwapCross"]
