"""The checker must be able to fail: the CI checker, run against a deliberately broken
writer (``broken_indicators.py``) in an otherwise healthy, fault-free stack, reports the loss
or the duplicates it causes."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pytest
from chaos_profiles import CI
from chaos_run import run

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BROKEN = [sys.executable, str(Path(__file__).with_name("broken_indicators.py"))]
PROFILE = replace(CI, chaos_seconds=12.0)


async def _run_broken(mode: str) -> object:
    outcome = await run(
        PROFILE,
        services=("streamer", "indicators"),
        indicators_argv=BROKEN,
        extra_env={"CHAOS_BROKEN_WRITER": mode},
        chaos=False,
    )
    print("\n" + outcome.table())
    return outcome


@pytest.mark.timeout(180)
async def test_checker_reports_rows_lost_by_a_writer_that_drops_batches() -> None:
    outcome = await _run_broken("drop_batch")
    r = outcome.report  # type: ignore[attr-defined]
    assert not outcome.ok  # type: ignore[attr-defined]
    assert r.lost > 0 and r.indicator_mismatch > 0
    assert r.unexplained_gaps == 0 and r.explained_missing == 0  # no fault excuses it
    assert r.duplicated == 0


@pytest.mark.timeout(180)
async def test_checker_reports_volume_duplicated_by_a_non_idempotent_upsert() -> None:
    outcome = await _run_broken("accumulating_upsert")
    r = outcome.report  # type: ignore[attr-defined]
    assert not outcome.ok  # type: ignore[attr-defined]
    assert r.duplicated > 0 and r.indicator_mismatch > 0
    assert r.lost == 0
