"""Pure figures of the pipeline benchmark: no I/O, unit-tested in tests/bench/.

* :func:`tick_latencies`: each tick's latency from its event time to the COMMIT that first
  contained it, from the tick streams' entries and the commit log (stream, last id, time);
* :func:`percentiles`, :func:`median_spread`: nearest-rank percentiles, medians of repeats;
* :func:`backlog_growth`, :func:`kept_up`: did the pipeline keep up (no growing backlog);
* :data:`REQUIRED_KEYS`, :func:`missing_keys`: the stable keys of ``latest.json``;
* :func:`markdown_table`: the table printed at the end and quoted in bench/README.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Redis stream ids as one sortable integer: ``ms << SEQ_BITS | seq``.
SEQ_BITS = 20


def id_key(entry_id: str | bytes) -> int:
    """``"1700000000000-3"`` -> a sortable integer (ms, then sequence)."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, seq = text.partition("-")
    return (int(ms) << SEQ_BITS) | int(seq or 0)


def key_ms(key: int) -> int:
    """The millisecond part (Redis arrival time) of an :func:`id_key`."""
    return key >> SEQ_BITS


@dataclass
class StreamTicks:
    """One tick stream's entries over a window: entry keys, ticks per entry, and every
    tick's event time (epoch ms) in entry order."""

    keys: list[int] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    ts: list[int] = field(default_factory=list)

    def add(self, key: int, event_ms: Sequence[int]) -> None:
        """Append one entry holding ticks with these event times."""
        self.keys.append(key)
        self.counts.append(len(event_ms))
        self.ts.extend(event_ms)

    @property
    def ticks(self) -> int:
        return len(self.ts)


@dataclass(frozen=True)
class Latencies:
    """Per-tick latencies (ms) of the committed ticks, and how many ticks no commit covered."""

    ms: np.ndarray[Any, Any]
    uncommitted: int
    #: per committed tick: its event time and the time of the commit that first contained it
    ts: np.ndarray[Any, Any]
    commit_ms: np.ndarray[Any, Any]


def first_cover(
    commit_keys: Sequence[int], commit_ms: Sequence[float]
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Commits of one stream sorted by the last id they include, with, for each position, the
    earliest commit time among it and every commit including more (a commit covers every entry
    up to its id, so the first commit covering an entry is the earliest of those).

    Returns (sorted keys, earliest covering time per position, index of that commit)."""
    keys = np.asarray(commit_keys, dtype=np.int64)
    times = np.asarray(commit_ms, dtype=np.float64)
    order = np.argsort(keys, kind="stable")
    keys, times = keys[order], times[order]
    best_t = times.copy()
    best_i = order.copy()
    for j in range(len(keys) - 2, -1, -1):
        if best_t[j + 1] < best_t[j]:
            best_t[j], best_i[j] = best_t[j + 1], best_i[j + 1]
    return keys, best_t, best_i


def tick_latencies(
    streams: Mapping[str, StreamTicks],
    commits: Mapping[str, tuple[Sequence[int], Sequence[float]]],
) -> Latencies:
    """Latency of every tick: the time of the first commit whose ``last_id`` is at or after the
    tick's entry, minus the tick's event time. Ticks of entries no commit covers are counted
    in ``uncommitted`` (still in flight, or lost: the caller decides after draining)."""
    out_ts: list[np.ndarray[Any, Any]] = []
    out_c: list[np.ndarray[Any, Any]] = []
    uncommitted = 0
    for name, st in streams.items():
        if not st.keys:
            continue
        ekeys = np.asarray(st.keys, dtype=np.int64)
        counts = np.asarray(st.counts, dtype=np.int64)
        ts = np.asarray(st.ts, dtype=np.float64)
        ckeys, ctimes, _ = first_cover(*commits.get(name, ([], [])))
        if not len(ckeys):
            uncommitted += len(ts)
            continue
        pos = np.searchsorted(ckeys, ekeys, side="left")
        per_tick_cov = np.repeat(pos < len(ckeys), counts)
        uncommitted += int((~per_tick_cov).sum())
        commit_t = np.repeat(ctimes[np.minimum(pos, len(ckeys) - 1)], counts)
        out_ts.append(ts[per_tick_cov])
        out_c.append(commit_t[per_tick_cov])
    ts_all = np.concatenate(out_ts) if out_ts else np.zeros(0)
    c_all = np.concatenate(out_c) if out_c else np.zeros(0)
    return Latencies(ms=c_all - ts_all, uncommitted=uncommitted, ts=ts_all, commit_ms=c_all)


def arrival_latencies(streams: Mapping[str, StreamTicks]) -> np.ndarray[Any, Any]:
    """Every tick's way in: the time Redis accepted its entry (the entry id's milliseconds)
    minus the tick's event time, ms."""
    out: list[np.ndarray[Any, Any]] = []
    for st in streams.values():
        if st.keys:
            accepted = np.asarray([key_ms(k) for k in st.keys], dtype=np.float64)
            out.append(np.repeat(accepted, st.counts) - np.asarray(st.ts, dtype=np.float64))
    return np.concatenate(out) if out else np.zeros(0)


def ws_latencies(
    lat: Latencies,
    committed_at: Sequence[float],
    recv_ms: Sequence[float],
    max_gap_ms: float = 1000.0,
) -> tuple[np.ndarray[Any, Any], int, np.ndarray[Any, Any]]:
    """Tick -> WebSocket receipt: each committed tick's commit is matched to the first live
    message whose ``committed_at`` (the writer's clock right after COMMIT) is at or after the
    logged commit time and at most ``max_gap_ms`` later; latency = that message's receipt
    time minus the tick's event time.

    Returns (latencies of the matched ticks, ticks without a matching message, the
    committed_at - commit-log gaps of the matched commits)."""
    ca = np.asarray(committed_at, dtype=np.float64)
    rv = np.asarray(recv_ms, dtype=np.float64)
    order = np.argsort(ca, kind="stable")
    ca, rv = ca[order], rv[order]
    if not len(ca) or not len(lat.commit_ms):
        return np.zeros(0), len(lat.commit_ms), np.zeros(0)
    pos = np.searchsorted(ca, lat.commit_ms, side="left")
    ok = pos < len(ca)
    gap = np.full(len(pos), np.inf)
    gap[ok] = ca[pos[ok]] - lat.commit_ms[ok]
    ok &= gap <= max_gap_ms
    out = rv[pos[ok]] - lat.ts[ok]
    commits = np.unique(lat.commit_ms[ok])
    cpos = np.searchsorted(ca, commits, side="left")
    return out, int((~ok).sum()), ca[cpos] - commits


def percentiles(values: Iterable[float] | np.ndarray[Any, Any]) -> dict[str, float | None]:
    """Nearest-rank p50 / p99 and the max (None when there is no value)."""
    arr = np.sort(
        np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=np.float64)
    )
    n = len(arr)
    if n == 0:
        return {"p50": None, "p99": None, "max": None}

    def rank(q: float) -> float:
        return float(arr[min(n - 1, max(0, math.ceil(q * n) - 1))])

    return {
        "p50": round(rank(0.50), 1),
        "p99": round(rank(0.99), 1),
        "max": round(float(arr[-1]), 1),
    }


def median_spread(values: Sequence[float | None]) -> dict[str, float | None]:
    """Median of the repeats with their spread (min, max) and count; None values skipped."""
    vals = sorted(float(v) for v in values if v is not None and not math.isnan(float(v)))
    if not vals:
        return {"median": None, "min": None, "max": None, "n": 0}
    mid = len(vals) // 2
    med = vals[mid] if len(vals) % 2 else (vals[mid - 1] + vals[mid]) / 2
    return {
        "median": round(med, 2),
        "min": round(vals[0], 2),
        "max": round(vals[-1], 2),
        "n": len(vals),
    }


def median_of_dicts(items: Sequence[Mapping[str, float | None]]) -> dict[str, float | None]:
    """Key-wise median of several ``{p50, p99, max}``-like dicts (repeats)."""
    keys = {k for it in items for k in it}
    return {k: median_spread([it.get(k) for it in items])["median"] for k in sorted(keys)}


def backlog_growth(samples: Sequence[tuple[float, float]]) -> float:
    """Growth (units per second) of the backlog's troughs: the minimum over the second half
    of the samples ``(t, backlog)`` minus the minimum over the first half, over the time
    between the halves' midpoints. The backlog is a saw-tooth when the pipeline keeps up
    (it rises between flushes and falls at each COMMIT), so its troughs, not its slope, say
    whether it grows; a pipeline that falls behind raises every trough."""
    if len(samples) < 4:
        return 0.0
    pts = sorted(samples)
    half = len(pts) // 2
    first, second = pts[:half], pts[half:]
    dt = (second[0][0] + second[-1][0]) / 2 - (first[0][0] + first[-1][0]) / 2
    if dt <= 0:
        return 0.0
    return (min(b for _, b in second) - min(b for _, b in first)) / dt


@dataclass(frozen=True)
class Verdict:
    kept_up: bool
    reasons: tuple[str, ...]


def kept_up(
    *,
    offered: float,
    sim_sent: int,
    published: int,
    conflated: int,
    backlog: Sequence[tuple[float, float]],
    max_backlog_s: float,
    growth_tolerance: float = 0.05,
) -> Verdict:
    """Whether the pipeline kept up over a window: nothing conflated by the streamer, >= 98 %
    of what the simulator sent published, and a backlog (ticks read from Redis but not yet
    committed, plus ticks not yet read) that neither grows by more than ``growth_tolerance``
    of the offered rate (and by more than a quarter second of it over the window) nor ends
    above ``max_backlog_s`` seconds of it."""
    reasons = []
    if conflated:
        reasons.append(f"streamer conflated {conflated} ticks")
    if sim_sent and published < 0.98 * sim_sent:
        reasons.append(f"published {published} of {sim_sent} sent")
    growth = backlog_growth(backlog)
    span = (max(t for t, _ in backlog) - min(t for t, _ in backlog)) if backlog else 0.0
    # the floor must also have risen by more than a quarter second of load (a short window's
    # few troughs move by less than that with the flush timing alone)
    if growth > growth_tolerance * offered and growth * span / 2 > 0.25 * offered:
        reasons.append(f"backlog grew {growth:,.0f} ticks/s")
    if backlog and backlog[-1][1] > max_backlog_s * offered:
        reasons.append(f"backlog {backlog[-1][1]:,.0f} ticks at the end")
    return Verdict(not reasons, tuple(reasons))


def expected_equity_rows(
    ticks: list[tuple[str, int, float, int]],
) -> dict[tuple[str, int], tuple[float, int]]:
    """Per (symbol, second): the last tick's price and the volume traded in the second, as the
    indicators engine folds them (docs/indicators.md, volume rule). The first second of each
    symbol in the window is left out: ticks before the window belong to it too."""
    prev: dict[str, int] = {}
    first: dict[str, int] = {}
    rows: dict[tuple[str, int], list[float]] = {}
    last_ts: dict[str, int] = {}
    for sym, ts, price, cum in ticks:
        if sym in last_ts and ts <= last_ts[sym] and cum < prev[sym]:
            continue  # a stale copy of a tick already folded (a re-sent batch): ignored
        ts = max(ts, last_ts.get(sym, ts))
        last_ts[sym] = ts
        sec = ts // 1000 * 1000
        first.setdefault(sym, sec)
        p = prev.get(sym)
        inc = 0 if p is None else (cum - p if cum >= p else cum)
        prev[sym] = cum
        row = rows.setdefault((sym, sec), [price, 0])
        row[0] = price
        row[1] += inc
    return {k: (v[0], int(v[1])) for k, v in rows.items() if k[1] != first[k[0]]}


#: Keys of ``latest.json`` that must be present and non-null (dotted; ``loads[]`` = each load).
REQUIRED_KEYS: tuple[str, ...] = (
    "schema",
    "mode",
    "generated_at",
    "git_commit",
    "machine.cores",
    "machine.load_avg_1m",
    "config.batch_interval_s",
    "config.partitions",
    "config.load_symbols",
    "config.window_s",
    "config.repeats",
    "config.seed",
    "config.layout",
    "loads[].offered_ticks_per_s",
    "loads[].sim_sent_per_s",
    "loads[].sustained_ticks_per_s.median",
    "loads[].sustained_ticks_per_s.min",
    "loads[].sustained_ticks_per_s.max",
    "loads[].kept_up",
    "loads[].backlog_growth_ticks_per_s",
    "loads[].tick_to_commit_ms.p50",
    "loads[].tick_to_commit_ms.p99",
    "loads[].tick_to_commit_ms.max",
    "loads[].tick_to_commit_p99_spread.min",
    "loads[].tick_to_commit_p99_spread.max",
    "loads[].tick_to_ws_ms.p50",
    "loads[].tick_to_ws_ms.p99",
    "loads[].tick_to_ws_ms.max",
    "loads[].commit_ack_gap_ms.p50",
    "loads[].cpu_us_per_tick.total",
    "loads[].cpu_us_per_tick.live_stack",
    "loads[].cpu_us_per_tick.compaction",
    "loads[].cpu_us_per_tick.total_with_compaction",
    "loads[].stored_rows_per_s.equity_data",
    "loads[].cpu_us_per_tick.by_process.redis",
    "loads[].cpu_us_per_tick.by_process.postgres",
    "loads[].cpu_pct.total",
    "loads[].cpu_pct.by_process",
    "loads[].rss_peak_mb.total_live_stack",
    "loads[].rows_per_s.equity_data",
    "loads[].rows_per_s.indicators",
    "loads[].rows_per_s.option_prices",
    "loads[].rows_per_s.bars_1m",
    "loads[].trades.inserted",
    "loads[].trades.accepted",
    "loads[].trades.insert_to_accepted_ms.p99",
    "summary.highest_sustained_within_bound_ticks_per_s",
    "summary.bound_ms",
    "summary.cpu_us_per_tick_total_at_highest",
    "summary.cpu_us_per_tick_with_compaction_at_highest",
    "compaction.rows",
    "compaction.us_per_row",
    "compaction.tables.equity_data.us_per_row",
    "compaction.tables.indicators.us_per_row",
    "reference.tick_to_commit_ms.p99",
    "reference.tick_to_ws_ms.p99",
    "reference.cpu_pct.total",
    "reference.rss_mb.total_live_stack",
    "reference.rss_mb.total_all",
    "reference.rss_peak_mb",
    "reference.trades.accepted",
    "idle.cpu_pct.total",
    "idle.cpu_pct.total_live_stack",
    "baseline.loads[].offered_ticks_per_s",
    "baseline.loads[].inserted_per_s",
    "baseline.loads[].cpu_us_per_tick.total",
    "baseline.loads[].tick_to_commit_ms.p99",
    "baseline.throughput_ratio",
    "baseline.cpu_per_tick_ratio",
    "scaleout.one_worker_ticks_per_s.median",
    "scaleout.two_workers_ticks_per_s.median",
    "scaleout.scaling_factor",
    "scaleout.handover.ticks_sent",
    "scaleout.handover.rows_expected",
    "scaleout.handover.rows_missing",
    "scaleout.handover.rows_extra",
    "scaleout.handover.volume_mismatch",
    "scaleout.handover.ok",
)


def _walk(doc: Any, parts: list[str], path: str) -> list[str]:
    if not parts:
        return [path] if doc is None else []
    head, rest = parts[0], parts[1:]
    if head.endswith("[]"):
        name = head[:-2]
        items = doc.get(name) if isinstance(doc, dict) else None
        if not isinstance(items, list) or not items:
            return [f"{path}{name}[]"]
        out: list[str] = []
        for i, item in enumerate(items):
            out += _walk(item, rest, f"{path}{name}[{i}].")
        return out
    if not isinstance(doc, dict) or head not in doc:
        return [path + head]
    return _walk(doc[head], rest, path + head + ("." if rest else ""))


def missing_keys(doc: Mapping[str, Any]) -> list[str]:
    """Every :data:`REQUIRED_KEYS` path that is absent or null in ``doc`` (empty: complete)."""
    out: list[str] = []
    for key in REQUIRED_KEYS:
        out += _walk(doc, key.split("."), "")
    return out


def _f(v: Any, fmt: str = ",.0f") -> str:
    return "-" if v is None else format(v, fmt)


def markdown_table(doc: Mapping[str, Any]) -> str:
    """The result as Markdown: one row per offered load, then the reference, idle, baseline
    and scale-out figures."""
    lines = [
        "| offered ticks/s | sent/s | sustained ticks/s (min-max) | kept up | tick->commit p50 / "
        "p99 / max ms "
        "| tick->WS p99 ms | CPU us/tick total (streamer, indicators, redis, postgres) "
        "| CPU % total | peak RSS live stack MB | equity rows/s | trades accepted |",
        "|---:|---:|---:|:---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for ld in doc.get("loads", []):
        s, c, w = ld["sustained_ticks_per_s"], ld["tick_to_commit_ms"], ld["tick_to_ws_ms"]
        u = {"total": ld["cpu_us_per_tick"]["total"], **ld["cpu_us_per_tick"]["by_process"]}
        lines.append(
            f"| {_f(ld['offered_ticks_per_s'])} | {_f(ld['sim_sent_per_s'])} "
            f"| {_f(s['median'])} ({_f(s['min'])}-{_f(s['max'])}) | "
            f"{'yes' if ld['kept_up'] else 'NO'} "
            f"| {_f(c['p50'])} / {_f(c['p99'])} / {_f(c['max'])} | {_f(w['p99'])} "
            f"| {_f(u['total'], '.2f')} ({_f(u.get('streamer'), '.2f')}, "
            f"{_f(u.get('indicators'), '.2f')}, {_f(u.get('redis'), '.2f')}, "
            f"{_f(u.get('postgres'), '.2f')}) | {_f(ld['cpu_pct']['total'])} "
            f"| {_f(ld['rss_peak_mb']['total_live_stack'])} | "
            f"{_f(ld['rows_per_s']['equity_data'])} "
            f"| {ld['trades']['accepted']}/{ld['trades']['inserted']} |"
        )
    sm, ref, idle = doc.get("summary", {}), doc.get("reference", {}), doc.get("idle", {})
    base, so = doc.get("baseline", {}), doc.get("scaleout", {})
    lines += [
        "",
        f"- highest load sustained with p99 tick->commit <= {_f(sm.get('bound_ms'))} ms: "
        f"**{_f(sm.get('highest_sustained_within_bound_ticks_per_s'))} ticks/s**, total CPU "
        f"{_f(sm.get('cpu_us_per_tick_total_at_highest'), '.2f')} us/tick there, "
        f"{_f(sm.get('cpu_us_per_tick_with_compaction_at_highest'), '.2f')} with the compaction "
        "of its rows (later, in the background)",
    ]
    comp = doc.get("compaction", {})
    if comp:
        each = ", ".join(
            f"{k} {_f(v['us_per_row'], '.2f')}"
            for k, v in comp["tables"].items()
            if v.get("us_per_row") is not None
        )
        added = ", ".join(
            f"{_f(ld['offered_ticks_per_s'])}/s +{_f(ld['cpu_us_per_tick']['compaction'], '.2f')}"
            for ld in doc.get("loads", [])
            if "compaction" in ld["cpu_us_per_tick"]
        )
        lines.append(
            f"- compaction: {_f(comp['rows'])} rows at {_f(comp['us_per_row'], '.2f')} us/row "
            f"({each}); CPU us per tick it adds: {added}"
        )
    if ref:
        lines.append(
            f"- reference workload (5 tickers + 200 contracts, BATCH_INTERVAL=1): p99 tick->commit "
            f"{_f(ref['tick_to_commit_ms']['p99'])} ms, p99 tick->WebSocket "
            f"{_f(ref['tick_to_ws_ms']['p99'])} ms, CPU {_f(ref['cpu_pct']['total'], '.1f')} % "
            "of one "
            f"core (live stack {_f(ref['cpu_pct'].get('total_live_stack'), '.1f')} %), RSS live "
            "stack "
            f"{_f(ref['rss_mb']['total_live_stack'])} MB (all processes "
            f"{_f(ref['rss_mb']['total_all'])} MB)"
        )
    if idle:
        lines.append(
            f"- idle (market closed): CPU {_f(idle['cpu_pct']['total'], '.2f')} % of one core "
            f"(live stack {_f(idle['cpu_pct']['total_live_stack'], '.2f')} %)"
        )
    if base:
        for b in base.get("loads", []):
            lines.append(
                f"- baseline (schwab-py StreamClient, one INSERT per tick) at "
                f"{_f(b['offered_ticks_per_s'])} ticks/s offered: {_f(b['inserted_per_s'])} "
                "inserted/s, "
                f"{_f(b['cpu_us_per_tick']['total'], '.1f')} us CPU/tick, p99 tick->commit "
                f"{_f(b['tick_to_commit_ms']['p99'])} ms"
            )
        lines.append(
            f"- ours / baseline at {_f(base.get('ratios_at_offered'))} ticks/s offered: throughput "
            f"x{_f(base.get('throughput_ratio'), '.1f')}, CPU per tick "
            f"x{_f(base.get('cpu_per_tick_ratio'), '.3f')}"
        )
    if so.get("skipped"):
        lines.append(f"- scale-out skipped: {so['skipped']}")
    elif so:
        h = so.get("handover", {})
        lines.append(
            f"- scale-out: drain 1 worker {_f(so['one_worker_ticks_per_s']['median'])} ticks/s, "
            f"2 workers {_f(so['two_workers_ticks_per_s']['median'])} ticks/s: "
            f"x{_f(so.get('scaling_factor'), '.2f')}; handover (kill -9 + restart of a worker): "
            f"{_f(h.get('rows_expected'))} rows expected, {h.get('rows_missing')} missing, "
            f"{h.get('rows_extra')} extra, {h.get('volume_mismatch')} volume mismatches -> "
            f"{'OK' if h.get('ok') else 'FAILED'}"
        )
    return "\n".join(lines)
