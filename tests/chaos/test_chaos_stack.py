"""The whole stack under seeded faults, checked exactly (docs/chaos.md).

``CHAOS_PROFILE=ci`` (default, part of ``make test``): ~75 s of faults, every kind at least
twice, <= 3 minutes in all. ``CHAOS_PROFILE=long`` (``make chaos``): ~20 minutes, 100k+
ticks, 50+ faults; the table is printed and written to ``bench/results/chaos.json``.
"""

from __future__ import annotations

import pytest
from chaos_profiles import FAULT_KINDS, current
from chaos_run import run, write_json

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PROFILE = current()


@pytest.mark.timeout(PROFILE.test_timeout)
async def test_stack_under_faults_loses_duplicates_and_double_orders_nothing() -> None:
    outcome = await run(PROFILE)
    table = outcome.table()
    print("\n" + table)
    path = write_json(outcome)
    print(f"chaos: table written to {path}")
    r = outcome.report
    assert outcome.ok, table
    for kind in FAULT_KINDS:  # every kind was injected as often as planned
        assert outcome.faults[kind] >= PROFILE.faults_per_kind, (kind, table)
    # the run did real work: ticks, rows of every table, orders, and some rejections
    assert r.ticks_sent > 50 * PROFILE.chaos_seconds, table
    assert all(r.rows[t] > 0 for t in ("equity_data", "indicators", "option_prices", "bars_1m"))
    assert r.orders > 0 and r.rejected_trades > 0, table
    if PROFILE.name == "long":
        assert r.ticks_sent >= 100_000 and sum(outcome.faults.values()) >= 50, table
