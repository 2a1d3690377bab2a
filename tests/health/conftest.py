"""Helpers for the health tests: settings on the test's real Postgres and Redis."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from streamdesk.config import load_settings
from streamdesk_health.config import Settings

SettingsFactory = Callable[..., Settings]


@pytest.fixture
def make_settings(db_url: str, redis_url: str, tmp_path: Path) -> SettingsFactory:
    """Settings for the real servers of this test; kwargs override (never os.environ)."""

    def make(**overrides: Any) -> Settings:
        base: dict[str, Any] = {
            "database_url": db_url,
            "redis_url": redis_url,
            "tickers": "SPY,QQQ",
            "stream_partitions": 2,
            "schwab_token_path": tmp_path / "token.json",
            "health_check_interval": 0.2,
            "health_check_timeout": 3.0,
            "health_alert_grace_s": 0.0,
            "market_hours": "regular",
            "heartbeat_interval": 0.2,
            "heartbeat_ttl": 1.0,
            "log_format": "text",
        }
        base.update(overrides)
        return load_settings(Settings, **base)

    return make
