"""Fixtures of the trade-executor tests: market-sim, settings pointed at the test's stack."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from executor_helpers import TEST_DEFAULTS, SettingsFactory

from streamdesk.config import load_settings
from streamdesk_executor.config import Settings


@pytest.fixture
def sim(market_sim_module: Any) -> Iterator[Any]:
    """The module's market-sim with a fresh paper account (1M cash) and no faults."""
    market_sim_module.clear_faults()
    market_sim_module.reset_broker(1_000_000)
    yield market_sim_module
    market_sim_module.clear_faults()


@pytest.fixture
def make_settings(db_url: str, redis_url: str, sim: Any, tmp_path: Path) -> SettingsFactory:
    """Build executor Settings pointed at this test's DB, Redis and market-sim."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": db_url,
            "redis_url": redis_url,
            **sim.settings_overrides(tmp_path),
            **TEST_DEFAULTS,
        }
        values.update(overrides)
        return load_settings(Settings, **values)

    return make
