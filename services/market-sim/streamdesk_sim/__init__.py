"""StreamDesk market-sim service."""

__version__ = "0.1.0"
