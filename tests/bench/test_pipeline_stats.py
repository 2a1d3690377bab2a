"""The pure parts of bench/bench_pipeline.py (bench/pipeline/stats.py): percentiles, tick
latencies from the commit log, the WebSocket matching, the kept-up verdict, the expected rows
of the handover check and the stable keys of latest.json."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from pipeline import stats

pytestmark = pytest.mark.unit


def test_percentiles_are_nearest_rank() -> None:
    assert stats.percentiles(range(1, 101)) == {"p50": 50.0, "p99": 99.0, "max": 100.0}
    assert stats.percentiles([7.0]) == {"p50": 7.0, "p99": 7.0, "max": 7.0}
    assert stats.percentiles([]) == {"p50": None, "p99": None, "max": None}
    # one slow tick in a thousand is above the p99, ten are not
    lat = [100.0] * 990 + [5000.0] * 10
    assert stats.percentiles(lat)["p99"] == 100.0
    assert stats.percentiles([*lat, 5000.0])["p99"] == 5000.0


def test_median_spread() -> None:
    assert stats.median_spread([3, 1, 2]) == {"median": 2.0, "min": 1.0, "max": 3.0, "n": 3}
    assert stats.median_spread([4, 1, 2, None])["median"] == 2.0
    assert stats.median_spread([4, 2])["median"] == 3.0
    assert stats.median_spread([None])["median"] is None


def _key(ms: int, seq: int = 0) -> int:
    return stats.id_key(f"{ms}-{seq}")


def test_id_key_orders_like_redis() -> None:
    ids = ["1700000000001-0", "1700000000000-12", "1700000000000-2", b"1700000000000-0"]
    ordered = sorted(ids, key=stats.id_key)
    assert ordered == [b"1700000000000-0", "1700000000000-2", "1700000000000-12", "1700000000001-0"]
    assert stats.key_ms(stats.id_key("1700000000000-12")) == 1700000000000


def test_tick_latency_is_the_first_commit_covering_the_entry() -> None:
    st = stats.StreamTicks()
    st.add(_key(1000), [900, 950])  # covered by the commit at 2000 (last id 1000-0)
    st.add(_key(1500, 1), [1400])  # after 1000-0: covered by the next commit, at 3000
    st.add(_key(2500), [2400])  # no commit includes it yet
    commits = {"s": ([_key(1000), _key(2000)], [2000.0, 3000.0])}
    lat = stats.tick_latencies({"s": st}, commits)
    assert sorted(lat.ms.tolist()) == [1050.0, 1100.0, 1600.0]
    assert lat.uncommitted == 1
    # a commit covering more that happened earlier (a second worker) wins for older entries
    commits = {"s": ([_key(1000), _key(3000)], [2000.0, 1800.0])}
    lat = stats.tick_latencies({"s": st}, commits)
    assert sorted(lat.ms.tolist()) == [1800.0 - 2400.0, 400.0, 850.0, 900.0]
    assert lat.uncommitted == 0
    # a stream without any commit: all its ticks uncommitted
    assert stats.tick_latencies({"s": st}, {}).uncommitted == 4


def test_ws_latency_matches_the_message_of_the_commit() -> None:
    st = stats.StreamTicks()
    st.add(_key(1000), [500])
    st.add(_key(1600), [1500])
    lat = stats.tick_latencies({"s": st}, {"s": ([_key(1000), _key(2000)], [2000.0, 4000.0])})
    # message of the first commit 5 ms after its logged time, received 40 ms later; none for
    # the second within the gap (the next one is 2 s later)
    ws, unmatched, gaps = stats.ws_latencies(lat, [2005.0, 6100.0], [2045.0, 6150.0])
    assert ws.tolist() == [1545.0]
    assert unmatched == 1
    assert gaps.tolist() == [5.0]


def test_backlog_growth_looks_at_the_troughs() -> None:
    # a saw-tooth: rises 50k per second between flushes, back to ~0 at each commit
    saw = [(t / 4, 50_000 * ((t % 4) / 4)) for t in range(40)]
    assert abs(stats.backlog_growth(saw)) < 1e-6
    # the same saw-tooth on a floor rising 10k ticks/s
    rising = [(t, b + 10_000 * t) for t, b in saw]
    assert stats.backlog_growth(rising) == pytest.approx(10_000, rel=0.15)
    assert stats.backlog_growth([(0, 5), (1, 9)]) == 0.0


def test_kept_up_verdict_names_every_reason() -> None:
    saw = [(t / 4, 50_000 * ((t % 4) / 4)) for t in range(40)]
    ok = stats.kept_up(
        offered=100_000,
        sim_sent=1_000_000,
        published=999_000,
        conflated=0,
        backlog=saw,
        max_backlog_s=3,
    )
    assert ok.kept_up and ok.reasons == ()
    bad = stats.kept_up(
        offered=100_000,
        sim_sent=1_000_000,
        published=900_000,
        conflated=5,
        backlog=[(t, b + 40_000 * t) for t, b in saw],
        max_backlog_s=3,
    )
    assert not bad.kept_up
    text = " ".join(bad.reasons)
    assert "conflated 5" in text and "published 900000" in text and "backlog grew" in text
    assert "at the end" in text  # 410k ticks left > 3 s of 100k/s
    # troughs 6 % of the rate apart over 2 s: a few hundred ticks, the flush timing's noise
    noisy = [(t / 4, 2_000 * ((t % 4) / 4) + (600 if t >= 4 else 0)) for t in range(8)]
    assert stats.backlog_growth(noisy) > 0.05 * 10_000
    assert stats.kept_up(
        offered=10_000, sim_sent=0, published=0, conflated=0, backlog=noisy, max_backlog_s=3
    ).kept_up


def test_expected_rows_follow_the_volume_rule() -> None:
    ticks = [
        ("A", 999, 10.0, 100),  # first second of A in the window: left out
        ("A", 1000, 10.5, 150),
        ("A", 1500, 10.25, 180),
        ("B", 1200, 5.0, 7),  # first second of B
        ("A", 2100, 11.0, 20),  # the feed's counter reset: all of the new counter counts
        ("B", 2300, 5.5, 9),
        ("A", 1900, 11.5, 30),  # older event time: folded into A's current second (2000)
        ("A", 2050, 9.0, 5),  # not newer and a lower count: a stale copy, ignored
    ]
    rows = stats.expected_equity_rows(ticks)
    assert rows == {("A", 1000): (10.25, 80), ("A", 2000): (11.5, 30), ("B", 2000): (5.5, 2)}


def _complete_doc() -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for key in stats.REQUIRED_KEYS:
        node: Any = doc
        parts = key.split(".")
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if part.endswith("[]"):
                lst = node.setdefault(part[:-2], [{}])
                node = lst[0]
            elif last:
                node[part] = 1
            else:
                node = node.setdefault(part, {})
    return doc


def test_missing_keys_reports_absent_and_null_keys() -> None:
    doc = _complete_doc()
    assert stats.missing_keys(doc) == []
    doc["reference"]["tick_to_commit_ms"]["p99"] = None
    doc["loads"].append({"offered_ticks_per_s": 5})
    missing = stats.missing_keys(doc)
    assert "reference.tick_to_commit_ms.p99" in missing
    assert "loads[1].kept_up" in missing and "loads[0].kept_up" not in missing
    doc["loads"] = []
    assert "loads[]" in stats.missing_keys(doc)


def test_markdown_table_renders_a_complete_document() -> None:
    doc = _complete_doc()
    doc["loads"][0]["cpu_us_per_tick"]["by_process"] = {
        "streamer": 1.0,
        "indicators": 2.0,
        "redis": 0.5,
        "postgres": 1.5,
    }
    table = stats.markdown_table(doc)
    assert table.count("\n| ") == 1 and "ticks/s" in table  # one row per load
    assert "handover" in table and "baseline" in table


def test_first_cover_takes_the_earliest_commit_including_an_entry() -> None:
    keys, times, idx = stats.first_cover([30, 10, 20], [5.0, 9.0, 7.0])
    assert keys.tolist() == [10, 20, 30]
    assert times.tolist() == [5.0, 5.0, 5.0]
    assert idx.tolist() == [0, 0, 0]
    keys, times, _ = stats.first_cover([10, 20], [1.0, 2.0])
    assert np.array_equal(times, [1.0, 2.0])
