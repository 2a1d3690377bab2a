"""The hand-written Prometheus text format, read back by prometheus_client's own parser."""

from __future__ import annotations

import math

import pytest
from prometheus_client.parser import text_string_to_metric_families

from streamdesk_health.exposition import counter, gauge, process_families, render

pytestmark = pytest.mark.unit


def _parse(text: bytes) -> dict[str, object]:
    return {f.name: f for f in text_string_to_metric_families(text.decode())}


def test_counters_gauges_and_hostile_label_values_round_trip() -> None:
    rounds = counter("sd_rounds", "Check rounds\nrun \\ here.")
    rounds.add_metric([], 7)
    ages = gauge("sd_age_seconds", "Age.", labels=["ticker", "note"])
    ages.add_metric(["AAPL", 'quote " and \\ and\nnewline'], 1.5)
    ages.add_metric(["SPY", ""], math.inf)
    ages.add_metric(["QQQ", "x"], -math.inf)
    ages.add_metric(["NVDA", "x"], math.nan)
    fams = _parse(render([rounds, ages]))
    r = fams["sd_rounds"]
    assert r.type == "counter" and r.documentation == "Check rounds\nrun \\ here."  # type: ignore[attr-defined]
    assert [(s.name, s.value) for s in r.samples] == [("sd_rounds_total", 7.0)]  # type: ignore[attr-defined]
    samples = fams["sd_age_seconds"].samples  # type: ignore[attr-defined]
    assert samples[0].labels == {"ticker": "AAPL", "note": 'quote " and \\ and\nnewline'}
    assert samples[0].value == 1.5
    assert samples[1].value == math.inf and samples[2].value == -math.inf
    assert math.isnan(samples[3].value)


def test_label_count_is_checked() -> None:
    fam = gauge("sd_x", "X.", labels=["a", "b"])
    with pytest.raises(ValueError, match="2 labels, 1 values"):
        fam.add_metric(["only-one"], 1)


def test_process_families_describe_this_process() -> None:
    fams = _parse(render(process_families()))
    rss = fams["process_resident_memory_bytes"].samples[0].value  # type: ignore[attr-defined]
    assert 10 * 2**20 < rss < 2**34
    assert fams["process_cpu_seconds"].samples[0].value > 0  # type: ignore[attr-defined]
    assert fams["process_open_fds"].samples[0].value >= 3  # type: ignore[attr-defined]
    assert fams["process_max_fds"].samples[0].value >= fams["process_open_fds"].samples[0].value  # type: ignore[attr-defined]
    assert fams["process_start_time_seconds"].samples[0].value > 1e9  # type: ignore[attr-defined]
