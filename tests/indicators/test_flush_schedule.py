"""When a flush is due: the tick -> commit bound counts from the tick's event time.

``Flusher.flush_delay`` is pure arithmetic over what the consumer reports (the oldest entry's
Redis arrival time, the oldest batch's first event time) and the recent commit durations, so it
is checked here with the clock pinned; the loop's clamps are exercised by the service tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from streamdesk.config import load_settings
from streamdesk_indicators import flusher as flusher_mod
from streamdesk_indicators.config import Settings
from streamdesk_indicators.flusher import Flusher

NOW_MS = 1_773_154_800_000  # 2026-03-10 15:00 UTC: any fixed instant will do


@dataclass
class Reported:
    """What the flusher asks of the consumer (the real one reads it off its workers)."""

    arrival_ms: int | None
    event_ms: int | None

    def oldest_ms(self) -> int | None:
        return self.arrival_ms

    def oldest_event_ms(self) -> int | None:
        return self.event_ms


def _flusher(monkeypatch: pytest.MonkeyPatch, consumer: Reported, *commits_ms: float) -> Flusher:
    monkeypatch.setattr(flusher_mod.time, "time", lambda: NOW_MS / 1000)
    settings = load_settings(
        Settings, database_url="postgresql://x@127.0.0.1:1/x", batch_interval=1.0
    )
    none: Any = None
    f = Flusher(settings, consumer, none, none, none, none, lambda: None)  # type: ignore[arg-type]
    f._recent_flushes.extend(commits_ms)
    return f


def test_nothing_buffered_waits_a_whole_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _flusher(monkeypatch, Reported(None, None)).flush_delay() == 1.0


def test_due_counts_from_arrival_without_an_event_time(monkeypatch: pytest.MonkeyPatch) -> None:
    f = _flusher(monkeypatch, Reported(NOW_MS - 100, None))
    # 1 s after arrival, less the margin (no commit measured yet: 50 ms)
    assert f.flush_delay() == pytest.approx(1.0 - 0.1 - 0.05)


def test_due_counts_from_the_event_time_when_the_way_in_took_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the tick happened 400 ms ago, Redis had it 100 ms ago: the bound counts from the event
    f = _flusher(monkeypatch, Reported(NOW_MS - 100, NOW_MS - 400))
    assert f.flush_delay() == pytest.approx(1.0 - 0.4 - 0.05)


def test_an_event_time_ahead_of_our_clock_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    # a broker clock 2 s ahead: arrival still bounds the wait, flushes do not stall
    f = _flusher(monkeypatch, Reported(NOW_MS - 100, NOW_MS + 2000))
    assert f.flush_delay() == pytest.approx(1.0 - 0.1 - 0.05)


def test_the_margin_is_the_longest_recent_commit_capped_at_half_an_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    commits = [100.0] * 19 + [300.0]  # the longest of the last 20 commits: 300 ms
    f = _flusher(monkeypatch, Reported(NOW_MS - 100, NOW_MS - 200), *commits)
    assert f.flush_delay() == pytest.approx(1.0 - 0.2 - 0.35)
    slow = _flusher(monkeypatch, Reported(NOW_MS, NOW_MS), *([2000.0] * 20))
    assert slow.flush_delay() == pytest.approx(1.0 - 0.5)
