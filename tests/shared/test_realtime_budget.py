"""The Realtime budget (streamdesk.realtime_budget) against hand-computed figures."""

from __future__ import annotations

import contextlib
import io
import itertools
import json
from datetime import UTC, datetime

import pytest
import redis

from streamdesk import cli_budget, constants
from streamdesk.cli import build_parser
from streamdesk.clock import ManualClock
from streamdesk.config import MarketHoursMode, load_settings
from streamdesk.realtime_budget import (
    FREE_PLAN,
    LADDER,
    PAUSED,
    LevelSize,
    Usage,
    choose,
    choose_paced,
    envelope_bytes,
    level,
    month_bounds,
    month_key,
    per_receiver_bytes,
    project,
    project_all,
    remaining_fraction,
    streamed_seconds_per_month,
)

REGULAR = 491_400  # 6.5 h x 3,600 s x 21 trading days


@pytest.mark.unit
def test_streamed_seconds_per_month() -> None:
    assert streamed_seconds_per_month(MarketHoursMode.REGULAR) == 6.5 * 3600 * 21 == REGULAR
    # extended hours 04:00-20:00 = 16 h
    assert streamed_seconds_per_month(MarketHoursMode.EXTENDED) == 16 * 3600 * 21 == 1_209_600
    # always: every hour of a 31-day month
    assert streamed_seconds_per_month(MarketHoursMode.ALWAYS) == 24 * 3600 * 31 == 2_678_400
    assert streamed_seconds_per_month(MarketHoursMode.REGULAR, 23) == 6.5 * 3600 * 23
    with pytest.raises(ValueError):
        streamed_seconds_per_month(MarketHoursMode.REGULAR, 0)


@pytest.mark.unit
def test_envelope_and_frame_bytes() -> None:
    shell = (
        '{"event":"broadcast","payload":{"event":"flush","payload":,"type":"broadcast"},'
        '"ref":null,"topic":"realtime:streamdesk:market"}'
    )
    assert envelope_bytes() == len(shell) == 127
    # 1,000 payload bytes + 127 envelope = 1,127 >= 126: 4-byte frame header
    assert per_receiver_bytes(1000) == 1000 + 127 + 4 == 1131
    assert per_receiver_bytes(100) == 100 + 127 + 4 == 231
    # 70,000 + 127 >= 65,536: 10-byte header
    assert per_receiver_bytes(70_000) == 70_000 + 127 + 10


@pytest.mark.unit
def test_level_0_two_dashboards_regular_hours() -> None:
    p = project(level(0), LevelSize(1000, 100), 2, REGULAR)
    assert p.broadcasts == 491_400  # one per flush, BATCH_INTERVAL = 1 s
    assert p.messages == 491_400 * (1 + 2) == 1_474_200  # sent once + once per receiver
    # every broadcast carries the options (options_every = 1): 1,131 bytes to each of 2
    assert p.egress_bytes == 2 * 491_400 * 1131 == 1_111_546_800
    assert p.peak_messages_per_second == 3 / 0.5 == 6.0  # flushes at most 0.5 s apart
    assert p.fits_messages  # 1,474,200 <= 0.8 x 2,000,000 = 1,600,000
    assert p.fits_egress  # 1.11 GB <= 0.8 x 0.8 x 5 GB = 3.2 GB
    assert p.fits_rate and p.fits


@pytest.mark.unit
def test_level_5_five_dashboards_mixes_payloads() -> None:
    step = level(5)
    assert (step.every, step.options_every, step.greeks) == (2, 30, False)
    p = project(step, LevelSize(20_000, 1000), 5, REGULAR)
    assert p.broadcasts == 491_400 / 2 == 245_700
    # options once per 30 flushes: 16,380 broadcasts of 20,131 bytes, 229,320 of 1,131
    assert p.egress_bytes == 5 * (16_380 * 20_131 + 229_320 * 1131) == 2_945_533_500
    assert p.messages == 245_700 * 6 == 1_474_200
    assert p.peak_messages_per_second == 6 / (2 * 0.5)
    assert p.fits  # 2.95 GB <= 3.2 GB, 1,474,200 <= 1,600,000
    assert not project(step, LevelSize(20_000, 1000), 6, REGULAR).fits_messages  # x 7


@pytest.mark.unit
def test_flush_interval_scales_the_count() -> None:
    p = project(level(0), LevelSize(100, 100), 1, REGULAR, flush_interval=2.0)
    assert p.broadcasts == 491_400 / 2
    assert p.messages == 245_700 * 2


@pytest.mark.unit
def test_rate_and_connection_limits() -> None:
    # 99 receivers: (1 + 99) messages per broadcast, flushes 0.5 s apart = 200/s > 80/s
    p = project(level(0), LevelSize(10, 10), 99, 1.0)
    assert p.peak_messages_per_second == 200.0 and not p.fits_rate and not p.fits
    with pytest.raises(ValueError, match="concurrent connections"):
        project(level(0), LevelSize(10, 10), FREE_PLAN.connections + 1, REGULAR)
    assert project(level(PAUSED), LevelSize(0, 0), 200, REGULAR).fits


@pytest.mark.unit
def test_choose_first_fitting_level() -> None:
    sizes = {n: LevelSize(20_000, 1000) for n in range(len(LADDER))}
    projections = project_all(sizes, 2, REGULAR)
    # level 0: 2 x 491,400 x 20,131 = 19.8 GB; level 3 (options every 15 flushes):
    # 2 x (32,760 x 20,131 + 458,640 x 1,131) = 2.357 GB <= 3.2 GB; level 2 (every 5):
    # 2 x (98,280 x 20,131 + 393,120 x 1,131) = 4.846 GB > 3.2 GB
    assert projections[3].egress_bytes == 2 * (32_760 * 20_131 + 458_640 * 1131)
    assert not projections[2].fits_egress
    assert choose(projections) == 3
    assert choose(projections, minimum=6) == 6
    assert choose([p for p in projections if not p.fits]) == PAUSED


@pytest.mark.unit
def test_month_helpers() -> None:
    now = datetime(2026, 12, 31, 23, 59, tzinfo=UTC)
    assert month_key(now) == "2026-12"
    assert month_bounds(now) == (
        datetime(2026, 12, 1, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
    )
    assert remaining_fraction(datetime(2026, 3, 1, tzinfo=UTC)) == 1.0
    assert remaining_fraction(datetime(2026, 3, 16, tzinfo=UTC)) == 16 / 31
    with pytest.raises(ValueError):
        month_key(datetime(2026, 3, 1))  # naive


@pytest.mark.unit
def test_paced_level_when_the_month_runs_ahead() -> None:
    sizes = {n: LevelSize(100, 100) for n in range(len(LADDER))}
    projections = project_all(sizes, 2, REGULAR)
    mid_march = datetime(2026, 3, 16, tzinfo=UTC)  # 16 of 31 days left
    on_plan = choose_paced(projections, Usage(100_000, 10_000_000), mid_march)
    assert on_plan.level == 0 and on_plan.reason == "plan"
    # 400,000 broadcasts x 3 = 1,200,000 messages used; level 0..4 (one broadcast per flush)
    # add 16/31 x 1,474,200 = 760,877 -> 1,960,877 > 1,600,000; level 5 (every 2nd flush)
    # adds 16/31 x 737,100 = 380,439 -> 1,580,439 <= 1,600,000
    ahead = choose_paced(projections, Usage(400_000, 40_000_000), mid_march)
    assert ahead.level == 5
    assert "level 0 would end the month at messages 1,960,877 > 1,600,000" in ahead.reason
    assert "400,000 broadcasts = 1,200,000 messages" in ahead.reason
    # the quota is already gone: nothing but pausing fits
    spent = choose_paced(projections, Usage(700_000, 70_000_000), mid_march)
    assert spent.level == PAUSED
    assert choose_paced(projections, Usage(400_000, 0), mid_march, minimum=7).level == 7


@pytest.mark.unit
def test_paced_level_by_egress() -> None:
    sizes = {n: LevelSize(100_000, 1000) for n in range(len(LADDER))}
    projections = project_all(sizes, 1, REGULAR)
    # plan: level 4 (options every 30 flushes): 16,380 x 100,137 + 475,020 x 1,131 = 2.177 GB
    assert choose(projections) == 4
    first_day = datetime(2026, 4, 1, tzinfo=UTC)  # the whole month left
    used = Usage(200_000, 200_000 * 15_000)  # big payloads: 200,000 x 15,131 = 3.03 GB
    assert used.egress_bytes(1) == 200_000 * 15_131 == 3_026_200_000
    choice = choose_paced(projections, used, first_day, minimum=4)
    # levels 4..9 add >= 4,095 x 100,137 + 45,045 x 1,131 = 0.46 GB: over 3.2 GB; level 10
    # (every 30 flushes, no options) adds 16,380 x 1,131 = 0.0185 GB -> 3.045 GB
    assert choice.level == 10
    # level 4: 3,026,200,000 + 16,380 x 100,137 + 475,020 x 1,131 = 5,203,691,680 bytes
    # (a payload over 64 KiB has a 10-byte frame header: 100,000 + 127 + 10 = 100,137)
    assert projections[4].egress_bytes == 16_380 * 100_137 + 475_020 * 1131
    assert "level 4 would end the month at egress 5.20 GB > 3.20 GB (" in choice.reason


@pytest.mark.unit
def test_ladder_is_monotonic_in_cost() -> None:
    sizes = {n: LevelSize(22_800, 1_070) for n in range(len(LADDER))}
    projections = project_all(sizes, 2, REGULAR)
    for a, b in itertools.pairwise(projections):
        assert b.messages <= a.messages and b.egress_bytes <= a.egress_bytes, (a.level, b.level)
    assert LADDER[0].describe() == "every 1 s, options every 1 s"
    assert LADDER[5].describe(2.0) == "every 4 s, options without greeks every 60 s"
    assert "paused" in LADDER[PAUSED].describe()
    with pytest.raises(ValueError):
        level(len(LADDER))


# -- streamdesk budget ---------------------------------------------------------------------


def _budget(argv: list[str], **settings: object) -> tuple[int, str]:
    args = build_parser().parse_args(["budget", *argv])
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli_budget.run(
            args,
            clock=ManualClock(datetime(2026, 3, 16, tzinfo=UTC)),
            settings=load_settings(cli_budget.BudgetSettings, **settings),
        )
    return code, out.getvalue()


@pytest.mark.integration
def test_budget_cli_reads_the_month_from_redis(redis_url: str) -> None:
    r = redis.Redis.from_url(redis_url)
    try:
        r.hset(
            constants.realtime_usage_key("2026-03"), mapping={"broadcasts": 1000, "bytes": 10**6}
        )
    finally:
        r.close()
    code, out = _budget(["--json"], redis_url=redis_url, supabase_dashboards=2)
    report = json.loads(out)
    assert code == 0 and report["shown_dashboards"] == [1, 2, 5]
    assert report["chosen"] == {"1": 2, "2": 3, "5": 6}  # the measured reference universe
    assert report["seconds_per_month"] == REGULAR
    level3 = report["levels"][3]["projections"]["2"]
    assert level3["messages"] == 491_400 * 3 and level3["fits"]
    month = report["month"]
    assert month["key"] == "2026-03" and month["broadcasts"] == 1000
    assert month["messages"] == 1000 * 3 and month["level"] == 3
    code, out = _budget(["--hours", "extended", "--dashboards", "2"], redis_url=redis_url)
    assert "extended hours: 16 h x 21 days = 1,209,600 s/month" in out
    assert "The publisher would choose: level 7 with 2 dashboard(s) open." in out
    assert "This month (2026-03): 1,000 broadcasts accepted = 3,000 messages" in out


@pytest.mark.unit
def test_budget_cli_errors_are_clear(capsys: pytest.CaptureFixture[str]) -> None:

    for argv, message in [
        (["--dashboards", "300"], "must be 0..200, got 300"),
        (["--dashboards", "two"], "must be a whole number, got 'two'"),
        (["--tickers", "0"], "--tickers must be 1..10000, got 0"),
        (["--hours", "night"], "invalid choice: 'night'"),
    ]:
        with pytest.raises(SystemExit) as exc:
            build_parser().parse_args(["budget", *argv])
        assert exc.value.code == 2
        assert message in capsys.readouterr().err
    # Redis down: the table is still printed, with the reason the month is unknown
    code, out = _budget(["--dashboards", "1"], redis_url="redis://127.0.0.1:1/0")
    assert code == 0 and "This month: unknown, Redis did not answer (" in out
