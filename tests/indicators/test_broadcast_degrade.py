"""The publisher's degrade level: planned for the dashboards, paced against the month."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from streamdesk.config import ConfigError, MarketHoursMode, load_settings
from streamdesk.realtime_budget import LADDER, LevelSize, Usage, streamed_seconds_per_month
from streamdesk_indicators.config import Settings
from streamdesk_indicators.degrade import DegradeController
from streamdesk_indicators.reference_universe import reference_sizes

pytestmark = pytest.mark.unit

REGULAR = streamed_seconds_per_month(MarketHoursMode.REGULAR)
EXTENDED = streamed_seconds_per_month(MarketHoursMode.EXTENDED)
MID_MARCH = datetime(2026, 3, 16, tzinfo=UTC)
FLAT = {n: LevelSize(100, 100) for n in range(len(LADDER))}


def _controller(
    sizes: dict[int, LevelSize], receivers: int, seconds: int = REGULAR, **kw: object
) -> DegradeController:
    return DegradeController(
        sizes,
        receivers=receivers,
        seconds_per_month=seconds,
        flush_interval=1.0,
        **kw,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("receivers", "seconds", "expected"),
    [(1, REGULAR, 2), (2, REGULAR, 3), (5, REGULAR, 6), (1, EXTENDED, 5), (2, EXTENDED, 7)],
)
def test_plan_for_the_reference_universe(receivers: int, seconds: int, expected: int) -> None:
    # the levels docs/supabase.md quotes (measured reference message, free plan, margin 80%)
    c = _controller(reference_sizes(), receivers, seconds)
    assert c.level == expected
    assert c.reason.startswith(f"plan: level {expected} is the first within 80%")


def test_the_month_running_ahead_raises_the_level_until_the_month_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    c = _controller(FLAT, 2)
    assert c.level == 0  # 1,474,200 messages of 100-byte payloads fit
    assert not c.evaluate(Usage(100_000, 10_000_000), MID_MARCH)
    caplog.set_level(logging.WARNING)
    # 1,200,000 messages used by the 16th (see test_realtime_budget): level 5 is needed
    assert c.evaluate(Usage(400_000, 40_000_000), MID_MARCH)
    assert c.level == 5
    assert c.reason.startswith("this month runs ahead of plan: level 0 would end the month at")
    (record,) = [r for r in caplog.records if r.name == "streamdesk_indicators.degrade"]
    assert record.levelno == logging.WARNING
    assert "Realtime degrade level 0 -> 5: this month runs ahead of plan" in record.getMessage()
    # the month does not get cheaper: the level holds, also when Redis cannot be read
    assert not c.evaluate(Usage(0, 0), datetime(2026, 3, 20, tzinfo=UTC)) and c.level == 5
    assert not c.evaluate(None, datetime(2026, 3, 21, tzinfo=UTC)) and c.level == 5
    # a new month starts on plan again
    assert c.evaluate(Usage(0, 0), datetime(2026, 4, 1, tzinfo=UTC))
    assert c.level == 0 and c.reason.startswith("plan:")


def test_pinned_level_never_moves(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    c = _controller(reference_sizes(), 2, pinned=0)
    assert c.level == 0 and c.reason == "pinned by SUPABASE_DEGRADE"
    assert (
        "pinned at 0 by SUPABASE_DEGRADE; the free-plan budget for 2 dashboard(s) would choose 3"
        in caplog.text
    )
    assert not c.evaluate(Usage(10_000_000, 10**12), MID_MARCH) and c.level == 0


def test_observed_payloads_rescale_the_plan(caplog: pytest.LogCaptureFixture) -> None:
    ref = reference_sizes()
    c = _controller(ref, 2)
    assert c.level == 3
    # the default stack streams 24 contracts, not 200: payloads with options ~ 1/7 the size
    for _ in range(60):
        c.observe(3, True, ref[3].with_options // 7)
        c.observe(3, False, ref[3].equity_only)
    assert c.scale_options == pytest.approx(1 / 7, abs=0.005)  # 0.9^60 of 1 is left
    caplog.set_level(logging.WARNING)
    assert c.evaluate(Usage(0, 0), MID_MARCH)
    assert c.level < 3
    assert f"Realtime degrade level 3 -> {c.level}: plan:" in caplog.text
    # larger payloads than the reference push it back up
    for _ in range(80):
        c.observe(3, True, ref[3].with_options * 3)
    assert c.evaluate(Usage(0, 0), MID_MARCH) and c.level > 3


def test_broadcast_settings() -> None:
    url = "https://abcd.supabase.co"
    on = load_settings(Settings, supabase_url=url, supabase_service_role_key="sk-real-key-1")
    assert on.broadcast_enabled and on.pinned_degrade is None
    assert "sk-real-key-1" not in repr(on) and "sk-real-key-1" not in str(on.model_dump())
    assert not load_settings(Settings).broadcast_enabled  # the default: off
    off = load_settings(
        Settings, supabase_url=url, supabase_service_role_key="k-1", supabase_broadcast="off"
    )
    assert not off.broadcast_enabled
    assert load_settings(Settings, supabase_degrade="4").pinned_degrade == 4
    for bad, names in [
        ({"supabase_broadcast": "on"}, "SUPABASE_BROADCAST: Value error, on needs SUPABASE_URL"),
        ({"supabase_url": url, "supabase_service_role_key": "changeme"}, "placeholder"),
        ({"supabase_degrade": str(len(LADDER))}, "SUPABASE_DEGRADE"),
        ({"supabase_dashboards": 201}, "SUPABASE_DASHBOARDS"),
    ]:
        with pytest.raises(ConfigError, match=names):
            load_settings(Settings, **bad)
