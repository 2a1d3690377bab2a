"""End-to-end benchmark of the whole pipeline (issue 16): market-sim in load mode -> streamer
-> Redis -> indicators/writer -> PostgreSQL -> the gateway's WebSocket, with the executor
placing a few market orders per second at market-sim, all as local processes started the
way the local stack starts them (bench/pipeline/stack.py). In one run:

1. per offered load (``--rates``, repeated ``--repeats`` times): sustained ticks/s, kept up
   or not (streamer conflation, published vs sent, the indicators group's backlog), latency
   from the simulator's event time to the COMMIT containing the tick and to the WebSocket
   client's receipt (p50/p99/max over every tick), CPU us per tick per process and in total,
   peak RSS per process, rows/s per table, the trade flow's INSERT -> broker accepted;
2. the baseline a user would write (schwab-py StreamClient, one INSERT per tick) on the same
   simulator and load; ratios against it;
3. scale-out: drain capacity of one vs two indicators workers sharing the partitions, and a
   kill -9 / restart of a worker while ticks flow, then the database compared with every tick
   the simulator sent (no row lost, none duplicated);
4. the reference workload (5 tickers + 200 option contracts, BATCH_INTERVAL=1) and idle
   (market closed: every service and market-sim under libfaketime on a Saturday).

Writes bench/results/latest.json (keys: bench/README.md), bench/results/pipeline.png and a
Markdown table on stdout. ``--quick`` (``make bench-quick``) is the short profile (< 2 min).

    .venv/bin/python bench/bench_pipeline.py [--quick] [--rates 1000,10000] [--window 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import numpy as np
import redis.asyncio as aioredis
from pipeline import compaction, probes, stats
from pipeline.procs import cpu_delta, live_total
from pipeline.stack import Pipeline, get, post, python_argv, set_universe

T = TypeVar("T")

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PARTITIONS = 4
BATCH_INTERVAL = 1.0
SEED = 42
REF_TICKERS = ["SPY", "QQQ", "AAPL", "MSFT", "NVDA"]
OFF = 1e-6  # market-sim's load rate when "off" (it must be > 0)


@dataclass(frozen=True)
class Profile:
    rates: list[float]
    window: float
    settle: float
    repeats: int
    baseline_rates: list[float]
    baseline_window: float
    fill_rate: float
    fill_s: float
    scale_repeats: int
    handover_rate: float
    handover_s: float
    ref_window: float
    idle_window: float
    trade_rate: float = 2.0
    #: LEASE_TTL of the handover's workers, s (how long a killed worker's partitions wait)
    handover_lease_ttl: float = 3.0
    symbols: int = 0  # 0: enough for the highest rate
    #: instruments per table in the compaction phase's sample (pipeline/compaction.py)
    compaction_sample: int = 200
    mode: str = "full"


#: The small-VM layout (docker-compose.small.yml, docs/deploy.md): these services in one
#: interpreter (``streamdesk-stack``), the executor in its own. The reference and idle phases run
#: it by default (``--reference-layout``), as the 512 MB VM would.
SMALL_VM_COMBINE = "streamer,indicators,health,gateway,strategy"

#: The phases, in the order they run.
PHASES = ("reference", "idle", "loads", "scaleout", "baseline")

FULL = Profile(
    rates=[1_000, 10_000, 50_000, 100_000, 150_000],
    window=10,
    settle=3,
    repeats=2,
    baseline_rates=[1_000, 10_000],
    baseline_window=8,
    fill_rate=120_000,
    fill_s=25,
    scale_repeats=2,
    handover_rate=20_000,
    handover_s=24,
    ref_window=20,
    idle_window=60,  # CPU ticks are 10 ms: 15 s quantised the ~1 % idle figure
)
QUICK = Profile(
    rates=[10_000, 50_000],
    window=4,
    settle=1.5,
    repeats=1,
    baseline_rates=[10_000],
    baseline_window=3,
    fill_rate=100_000,
    fill_s=3,
    scale_repeats=1,
    handover_rate=10_000,
    handover_s=4,
    ref_window=5,
    idle_window=5,
    handover_lease_ttl=2.0,
    compaction_sample=50,
    mode="quick",
)


@dataclass
class Ctx:
    prof: Profile
    pipe: Pipeline
    r: aioredis.Redis
    conn: asyncpg.Connection
    symbols: list[str]
    env: dict[str, str]
    ws: probes.WsClient
    trades: probes.TradeFlow
    log: list[str] = field(default_factory=list)


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def sim_sent(base: str) -> int:
    return int(get(base, "/admin/state")["stats"]["equity_updates"])


def by_process(values: dict[str, float]) -> dict[str, float]:
    """Per process group (``indicators-2`` is counted with ``indicators``)."""
    out: dict[str, float] = {}
    for k, v in values.items():
        base = k.split("-w")[0]
        out[base] = out.get(base, 0.0) + v
    return out


def cpu_figures(
    d: dict[str, float], ticks: int, seconds: float
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(us per tick, % of one core) per process, the total (every pipeline process: all but
    the simulator and the baseline) and the live stack (also without PostgreSQL)."""
    grouped = by_process(d)
    pipeline = {k: v for k, v in grouped.items() if k not in ("market-sim", "baseline")}
    total = sum(pipeline.values())
    live = live_total(grouped)
    n = max(ticks, 1)
    us = {
        "total": round(total / n * 1e6, 3),
        "live_stack": round(live / n * 1e6, 3),
        "by_process": {k: round(v / n * 1e6, 3) for k, v in sorted(grouped.items())},
    }
    pct = {
        "total": round(total / seconds * 100, 2),
        "total_live_stack": round(live / seconds * 100, 2),
        "by_process": {k: round(v / seconds * 100, 2) for k, v in sorted(grouped.items())},
    }
    return us, pct


async def drained(ctx: Ctx, timeout: float) -> bool:
    """Wait until the indicators group has committed everything (two empty readings)."""
    deadline = time.monotonic() + timeout
    zeros = 0
    while time.monotonic() < deadline:
        zeros = zeros + 1 if await probes.backlog_entries(ctx.r, PARTITIONS) == 0 else 0
        if zeros >= 2:
            return True
        await asyncio.sleep(0.25)
    return False


async def latency_figures(ctx: Ctx, t0_ms: int, t1_ms: int) -> dict[str, Any]:
    streams = await probes.scan_streams(ctx.r, PARTITIONS, t0_ms, t1_ms)
    log = await probes.commit_log(ctx.conn, t0_ms - 5000)
    lat = stats.tick_latencies(streams, probes.commits_by_stream(log))
    ws = ctx.ws.rec
    ws_lat, ws_unmatched, gaps = stats.ws_latencies(lat, ws.committed_at, ws.recv_ms)
    ticks = sum(s.ticks for s in streams.values())
    entries = sum(len(s.keys) for s in streams.values())
    return {
        "ticks_in_redis": ticks,
        "ticks_per_entry": round(ticks / max(entries, 1), 1),
        "ticks_committed": len(lat.ms),
        "ticks_uncommitted": lat.uncommitted,
        "tick_to_commit_ms": stats.percentiles(lat.ms),
        "tick_to_redis_ms": stats.percentiles(stats.arrival_latencies(streams)),
        "tick_to_ws_ms": stats.percentiles(ws_lat),
        "ticks_without_ws_message": ws_unmatched,
        "commit_ack_gap_ms": {k: v for k, v in stats.percentiles(gaps).items()},
    }


def rows_per_s(ctx: Ctx, t0_ms: float, t1_ms: float) -> dict[str, float]:
    idx = ctx.ws.between(t0_ms, t1_ms)
    secs = max((t1_ms - t0_ms) / 1000, 1e-9)
    eq = sum(ctx.ws.rec.rows[i][0] for i in idx)
    return {
        "equity_data": round(eq / secs, 1),
        "indicators": round(eq / secs, 1),
        "option_prices": round(sum(ctx.ws.rec.rows[i][1] for i in idx) / secs, 1),
        "bars_1m": round(sum(ctx.ws.rec.rows[i][2] for i in idx) / secs, 1),
        "commits_per_s": round(len(idx) / secs, 2),
    }


async def measure_load(ctx: Ctx, rate: float) -> dict[str, Any]:
    """One window at ``rate``: warm-up (excluded), window, then load off and drained."""
    p, base = ctx.prof, ctx.pipe.sim_url
    post(base, "/admin/load", {"rate": rate})
    await asyncio.sleep(p.settle)
    b0 = await probes.streamer_beat_after(ctx.r, time.time())
    s0, cpu0, t0 = sim_sent(base), ctx.pipe.procs.cpu(), time.time()
    ctx.pipe.procs.reset_peaks()
    samples: list[tuple[float, float]] = []
    while time.time() < t0 + p.window:
        samples.append((time.time() - t0, float(await probes.backlog_entries(ctx.r, PARTITIONS))))
        await asyncio.sleep(0.25)
    b1 = await probes.streamer_beat_after(ctx.r, time.time())
    s1, cpu1, t1 = sim_sent(base), ctx.pipe.procs.cpu(), time.time()
    rss = ctx.pipe.procs.peak_report()
    ind = await probes.heartbeats(ctx.r, "indicators")
    post(base, "/admin/load", {"rate": OFF})
    ok_drain = await drained(ctx, 30 + rate / 20_000)
    await asyncio.sleep(0.3)  # the last commit's message reaches the WebSocket client
    seconds = t1 - t0
    lat = await latency_figures(ctx, int(t0 * 1000), int(t1 * 1000))
    sent = s1 - s0
    # published over the heartbeats' own timestamps, scaled to the window (beats are ~1 s apart
    # and not aligned with it)
    published = int(
        (b1["ticks_published"] - b0["ticks_published"]) / max(b1["_ts"] - b0["_ts"], 1e-3) * seconds
    )
    conflated = int(b1["conflated"] - b0["conflated"])
    backlog_ticks = [(t, b * lat["ticks_per_entry"]) for t, b in samples]
    verdict = stats.kept_up(
        offered=rate,
        sim_sent=sent,
        published=published,
        conflated=conflated,
        backlog=backlog_ticks,
        max_backlog_s=BATCH_INTERVAL + 2,
    )
    reasons = list(verdict.reasons)
    if not ok_drain:
        reasons.append("backlog not drained 30 s after the load stopped")
    us, pct = cpu_figures(cpu_delta(cpu0, cpu1), sent, seconds)
    out = {
        "window_s": round(seconds, 2),
        "window_epoch_s": [round(t0, 3), round(t1, 3)],
        "sim_sent_per_s": round(sent / seconds, 1),
        "published_per_s": round(published / seconds, 1),
        "sustained_ticks_per_s": round(lat["ticks_committed"] / seconds, 1),
        "conflated": conflated,
        "kept_up": not reasons,
        "not_kept_up_reasons": reasons,
        "backlog_growth_ticks_per_s": round(stats.backlog_growth(backlog_ticks), 1),
        "backlog_end_ticks": round(backlog_ticks[-1][1] if backlog_ticks else 0.0, 1),
        **lat,
        "cpu_us_per_tick": us,
        "cpu_pct": pct,
        "rss_peak_mb": rss,
        "rows_per_s": rows_per_s(ctx, t0 * 1000, t1 * 1000),
        # the writer's own view (its heartbeat at the end of the window): why the latency is
        # what it is (a flush's duration adds to BATCH_INTERVAL)
        "writer_flush_p99_ms": max((b.get("flush_p99_ms") or 0 for b in ind), default=None),
        "writer_commit_latency_p99_ms": max(
            (b.get("commit_latency_p99_ms") or 0 for b in ind), default=None
        ),
    }
    say(
        f"  {rate:>9,.0f}/s: sent {out['sim_sent_per_s']:,.0f}/s, committed "
        f"{out['sustained_ticks_per_s']:,.0f}/s, "
        f"{'kept up' if out['kept_up'] else 'NOT kept up ' + str(reasons)}, tick->commit p99 "
        f"{lat['tick_to_commit_ms']['p99']} ms, ->WS p99 {lat['tick_to_ws_ms']['p99']} ms, "
        f"CPU {us['total']:.2f} us/tick ({pct['total']:.0f} %)"
    )
    return out


def combine(rate: float, reps: list[dict[str, Any]], trades: dict[str, Any]) -> dict[str, Any]:
    """Medians of the repeats (spread where it matters); the first repeat's details."""
    med = stats.median_spread
    p99s = [r["tick_to_commit_ms"]["p99"] for r in reps]

    def med_dict(key: str) -> dict[str, Any]:
        return stats.median_of_dicts([r[key] for r in reps])

    def med_nested(key: str) -> dict[str, Any]:
        flat = stats.median_of_dicts(
            [{k: v for k, v in r[key].items() if k != "by_process"} for r in reps]
        )
        flat["by_process"] = stats.median_of_dicts([r[key]["by_process"] for r in reps])
        return flat

    return {
        "offered_ticks_per_s": rate,
        "repeats": len(reps),
        "sim_sent_per_s": med([r["sim_sent_per_s"] for r in reps])["median"],
        "published_per_s": med([r["published_per_s"] for r in reps])["median"],
        "sustained_ticks_per_s": med([r["sustained_ticks_per_s"] for r in reps]),
        "kept_up": all(r["kept_up"] for r in reps),
        "not_kept_up_reasons": sorted({x for r in reps for x in r["not_kept_up_reasons"]}),
        "backlog_growth_ticks_per_s": med([r["backlog_growth_ticks_per_s"] for r in reps])[
            "median"
        ],
        "tick_to_commit_ms": med_dict("tick_to_commit_ms"),
        "tick_to_commit_p99_spread": {"min": min(p99s), "max": max(p99s)}
        if None not in p99s
        else {"min": None, "max": None},
        "tick_to_ws_ms": med_dict("tick_to_ws_ms"),
        "tick_to_redis_ms": med_dict("tick_to_redis_ms"),
        "commit_ack_gap_ms": med_dict("commit_ack_gap_ms"),
        "ticks_uncommitted": sum(r["ticks_uncommitted"] for r in reps),
        "ticks_without_ws_message": sum(r["ticks_without_ws_message"] for r in reps),
        "cpu_us_per_tick": med_nested("cpu_us_per_tick"),
        "cpu_pct": med_nested("cpu_pct"),
        "rss_peak_mb": {
            k: max(r["rss_peak_mb"].get(k, 0) for r in reps) for k in reps[0]["rss_peak_mb"]
        },
        "rows_per_s": med_dict("rows_per_s"),
        "writer_flush_p99_ms": med([r.get("writer_flush_p99_ms") for r in reps])["median"],
        "trades": trades,
        "runs": reps,
    }


# ----------------------------------------------------------------------------- phases


def services_of(ctx: Ctx, programs: list[str]) -> set[str]:
    """The services the programs run: their names, and those of the combined program
    (``stack``: the services named in ``STACK_COMBINE``)."""
    out = set(programs)
    if "stack" in out:
        out |= {n.strip() for n in ctx.env.get("STACK_COMBINE", "").split(",") if n.strip()}
    return out


async def wait_ready(ctx: Ctx, *, streaming: bool, programs: list[str]) -> None:
    pipe = ctx.pipe
    programs = sorted(services_of(ctx, programs))

    since_ms = time.time() * 1000

    async def ready() -> bool:
        if streaming and "streamer" in programs:
            # streaming: ticks written since we started waiting (quicker than waiting for a
            # heartbeat that says so, HEARTBEAT_INTERVAL is 5 s in the reference phase)
            tails = await probes.stream_tail_ids(ctx.r, PARTITIONS)
            if not any(stats.key_ms(k) >= since_ms for k in tails.values()):
                return False
        for prog, service in (
            ("indicators", "indicators"),
            ("executor", "trade-executor"),
            ("gateway", "gateway"),
        ):
            if prog in programs and not await probes.heartbeats(ctx.r, service):
                return False
        return True

    await pipe.await_until(ready, 90, "the services")


async def phase_loads(ctx: Ctx) -> list[dict[str, Any]]:
    out = []
    for rate in ctx.prof.rates:
        since = time.time()
        ctx.trades.start()
        reps = [await measure_load(ctx, rate) for _ in range(ctx.prof.repeats)]
        await ctx.trades.stop()
        trades = await ctx.trades.report(since, settle_s=3.0 if ctx.prof.mode == "full" else 1.0)
        out.append(combine(rate, reps, trades))
    return out


async def phase_compaction(ctx: Ctx, loads: list[dict[str, Any]]) -> dict[str, Any]:
    """Compaction's cost per row, then per tick of each load (pipeline/compaction.py)."""
    stored = {
        id(run): await compaction.stored_rows(ctx.conn, *run["window_epoch_s"])
        for ld in loads
        for run in ld["runs"]
    }
    result = await compaction.measure(ctx.conn, ctx.pipe.procs, ctx.prof.compaction_sample)
    for ld in loads:
        per_run = [
            compaction.per_tick(result, stored[id(run)], run["sim_sent_per_s"] * run["window_s"])
            for run in ld["runs"]
        ]
        us = ld["cpu_us_per_tick"]
        us["compaction"] = stats.median_spread(per_run)["median"]
        us["total_with_compaction"] = round(us["total"] + us["compaction"], 3)
        ld["stored_rows_per_s"] = stats.median_of_dicts(
            [
                {k: round(v / run["window_s"], 1) for k, v in stored[id(run)].items()}
                for run in ld["runs"]
            ]
        )
    each = ", ".join(f"{k} {v['us_per_row']}" for k, v in result["tables"].items())
    say(f"  {result['rows']:,} rows compacted, {result['us_per_row']} us/row ({each})")
    return result


async def phase_baseline(ctx: Ctx) -> dict[str, Any]:
    """schwab-py StreamClient + one INSERT per tick, alone against the same simulator."""
    pipe, p, base = ctx.pipe, ctx.prof, ctx.pipe.sim_url
    post(base, "/admin/load", {"rate": OFF})
    # from now on market-sim's only client: the streamer and indicators stop (together)
    pipe.stop_all(
        keep=tuple(n for n in pipe.running if not n.startswith(("streamer", "indicators")))
    )
    loads = []
    script = ROOT / "bench" / "pipeline" / "baseline.py"
    for rate in p.baseline_rates:
        await ctx.conn.execute("TRUNCATE baseline_ticks")
        proc = pipe.launch(
            "baseline",
            [
                sys.executable,
                str(script),
                base,
                str(pipe.root / "schwab-token.json"),
                pipe.dsn,
                str(len(ctx.symbols)),
            ],
            pipe.service_env(),
        )
        pipe.wait(
            lambda: "baseline: streaming" in pipe.log_tail("baseline", 10_000), 60, "baseline"
        )
        post(base, "/admin/load", {"rate": rate})
        await asyncio.sleep(p.settle)
        s0, cpu0, t0 = sim_sent(base), pipe.procs.cpu(), time.time()
        await asyncio.sleep(p.baseline_window)
        s1, cpu1, t1 = sim_sent(base), pipe.procs.cpu(), time.time()
        post(base, "/admin/load", {"rate": OFF})
        pipe.stop("baseline")
        assert proc.poll() is not None
        row = await ctx.conn.fetchrow(
            "SELECT count(*) AS n, percentile_disc(0.5) WITHIN GROUP (ORDER BY lat) AS p50, "
            "percentile_disc(0.99) WITHIN GROUP (ORDER BY lat) AS p99, max(lat) AS mx FROM ("
            "SELECT extract(epoch FROM inserted_at - ts) * 1000 AS lat FROM baseline_ticks "
            "WHERE inserted_at BETWEEN to_timestamp($1) AND to_timestamp($2)) x",
            t0,
            t1,
        )
        n = int(row["n"])
        d = cpu_delta(cpu0, cpu1)
        mine = {"baseline": d.get("baseline", 0.0), "postgres": d.get("postgres", 0.0)}
        seconds = t1 - t0
        total = sum(mine.values())
        loads.append(
            {
                "offered_ticks_per_s": rate,
                "sim_sent_per_s": round((s1 - s0) / seconds, 1),
                "inserted_per_s": round(n / seconds, 1),
                "kept_up": n >= 0.98 * (s1 - s0),
                "tick_to_commit_ms": {
                    "p50": _r(row["p50"]),
                    "p99": _r(row["p99"]),
                    "max": _r(row["mx"]),
                },
                "cpu_us_per_tick": {
                    "total": round(total / max(n, 1) * 1e6, 2),
                    "by_process": {k: round(v / max(n, 1) * 1e6, 2) for k, v in mine.items()},
                },
                "cpu_pct": {k: round(v / seconds * 100, 1) for k, v in mine.items()},
            }
        )
        b = loads[-1]
        say(
            f"  baseline at {rate:,.0f}/s: inserted {b['inserted_per_s']:,.0f}/s of "
            f"{b['sim_sent_per_s']:,.0f}/s sent, {b['cpu_us_per_tick']['total']:.1f} us CPU/tick "
            f"(baseline process + PostgreSQL), p99 tick->commit {b['tick_to_commit_ms']['p99']} ms"
        )
    return {"loads": loads}


def _r(v: Any) -> float | None:
    return None if v is None else round(float(v), 1)


def indicators_argv(ctx: Ctx) -> list[str]:
    progs = ctx.pipe.programs(ctx.env)
    return progs.get("indicators") or python_argv("streamdesk_indicators")


async def owned_partitions(ctx: Ctx) -> dict[int, int]:
    """Partitions owned per running indicators process (by its heartbeat; a stopped
    process's heartbeat lingers until its TTL and is left out)."""
    pids = {
        p.pid
        for n, p in ctx.pipe.running.items()
        if n.startswith("indicators") and p.poll() is None
    }
    out = {}
    for b in await probes.heartbeats(ctx.r, "indicators"):
        if b["_pid"] in pids:
            parts = b.get("partitions", 0)
            out[b["_pid"]] = len(parts) if isinstance(parts, list) else int(parts)
    return out


def start_worker(ctx: Ctx, k: int, **env: str) -> str:
    """Indicators worker ``k`` (``INSTANCE_ID=bench-w<k>``), the layout's indicators argv."""
    name = f"indicators-w{k}"
    ctx.pipe.launch(name, indicators_argv(ctx), ctx.env | {"INSTANCE_ID": f"bench-w{k}", **env})
    return name


async def wait_owning(ctx: Ctx, n: int) -> None:
    async def ok() -> bool:
        owned = await owned_partitions(ctx)
        return (
            len(owned) == n
            and sum(owned.values()) == PARTITIONS
            and all(v > 0 for v in owned.values())
        )

    await ctx.pipe.await_until(ok, 60, f"{n} indicators workers owning the partitions")


async def drain_capacity(ctx: Ctx, workers: int) -> dict[str, Any]:
    """Backlog built by the real streamer while the workers are stopped (SIGSTOP), then
    drained by ``workers`` processes resumed at once: committed ticks / drain time."""
    pipe, base, p = ctx.pipe, ctx.pipe.sim_url, ctx.prof
    # Two workers share the partitions by MAX_PARTITIONS (an instance takes free partitions
    # only; there is no rebalancing towards a newcomer): 2 each, as docs/scaling.md says.
    share = str(PARTITIONS // workers) if workers > 1 else "0"
    names = [
        start_worker(ctx, k, LEASE_TTL="120", MAX_PARTITIONS=share) for k in range(1, workers + 1)
    ]
    await wait_owning(ctx, workers)
    await drained(ctx, 30)
    for n in names:
        os.kill(pipe.running[n].pid, signal.SIGSTOP)
    f0 = time.time()
    post(base, "/admin/load", {"rate": p.fill_rate})
    await asyncio.sleep(p.fill_s)
    post(base, "/admin/load", {"rate": OFF})
    await asyncio.sleep(1.0)  # the streamer publishes what it still holds
    f1 = time.time()
    streams = await probes.scan_streams(ctx.r, PARTITIONS, int(f0 * 1000), int(f1 * 1000))
    ticks = sum(s.ticks for s in streams.values())
    cpu0, t0 = pipe.procs.cpu(), time.time()
    for n in names:
        os.kill(pipe.running[n].pid, signal.SIGCONT)
    ok = await drained(ctx, 120)
    t_poll = time.time()
    cpu1 = pipe.procs.cpu()
    log = await probes.commit_log(ctx.conn, t0 * 1000)
    t_end = max((at for _, _, at in log), default=t_poll * 1000) / 1000
    commits = await ctx.conn.fetchval(
        "SELECT count(DISTINCT xmin::text) FROM bench_commit_log WHERE at >= to_timestamp($1)", t0
    )
    for n in names:
        pipe.stop(n)
    seconds = max(t_end - t0, 1e-3)
    us, pct = cpu_figures(cpu_delta(cpu0, cpu1), ticks, t_poll - t0)
    rate = ticks / seconds
    say(
        f"  {workers} worker(s): drained {ticks:,} ticks in {seconds:.2f} s = {rate:,.0f} ticks/s "
        f"in {commits} commits (CPU us/tick {us['by_process']})"
    )
    return {
        "workers": workers,
        "ticks": ticks,
        "seconds": round(seconds, 3),
        "ticks_per_s": round(rate, 1),
        "commits": int(commits),
        "drained": ok,
        "cpu_pct": pct,
        "cpu_us_per_tick": us,
    }


async def _owns(ctx: Ctx, counts: list[int]) -> bool:
    return sorted((await owned_partitions(ctx)).values()) == sorted(counts)


async def handover_check(ctx: Ctx) -> dict[str, Any]:
    """Two workers while ticks flow, partitions moved three ways: w2 (MAX_PARTITIONS=2) is
    killed with SIGKILL and w1 (no limit) takes its partitions once the leases expire
    (LEASE_TTL: the profile's handover_lease_ttl); w2 is started again (it finds nothing free);
    w1 is stopped (SIGTERM: final flush, leases released) so w2 takes two, and w1 is started
    again and takes the rest. Then every tick the simulator sent is compared with Redis and
    the database."""
    pipe, base, p = ctx.pipe, ctx.pipe.sim_url, ctx.prof
    ttl = f"{p.handover_lease_ttl:g}"
    w2 = start_worker(ctx, 2, MAX_PARTITIONS="2", LEASE_TTL=ttl)
    await pipe.await_until(lambda: _owns(ctx, [2]), 60, "worker 2 owning 2 partitions")
    w1 = start_worker(ctx, 1, MAX_PARTITIONS="0", LEASE_TTL=ttl)
    await wait_owning(ctx, 2)
    names = [w1, w2]
    await drained(ctx, 30)
    await asyncio.sleep(0.5)
    beat0 = await probes.streamer_beat_after(ctx.r, time.time())
    post(base, "/admin/sent/reset", {})  # market-sim's per-symbol count of what it sends
    s0, t0 = sim_sent(base), time.time()
    post(base, "/admin/load", {"rate": p.handover_rate})
    step = p.handover_s / 4
    events = []

    def note(what: str) -> None:
        events.append(f"{time.time() - t0:.1f} s {what}")
        say(f"  {events[-1]}")

    await asyncio.sleep(step)
    pipe.kill(w2)
    note(f"kill -9 {w2}")
    await pipe.await_until(lambda: _owns(ctx, [4]), 30, "worker 1 taking every partition")
    note(f"{w1} owns every partition")
    await asyncio.sleep(step)
    start_worker(ctx, 2, MAX_PARTITIONS="2", LEASE_TTL=ttl)
    note(f"{w2} started again")
    await asyncio.sleep(step)
    pipe.stop(w1)
    note(f"{w1} stopped (SIGTERM)")
    # w2 takes two of the released partitions first: w1 (unlimited) would otherwise take all
    # four, and nothing rebalances towards a worker holding none
    await pipe.await_until(lambda: _owns(ctx, [2]), 30, "worker 2 taking two partitions")
    note(f"{w2} owns two partitions")
    start_worker(ctx, 1, MAX_PARTITIONS="0", LEASE_TTL=ttl)
    note(f"{w1} started again")
    await wait_owning(ctx, 2)
    note("two workers own the partitions again")
    await asyncio.sleep(step)
    post(base, "/admin/load", {"rate": OFF})
    await asyncio.sleep(1.0)
    ok = await drained(ctx, 60)
    beat1 = await probes.streamer_beat_after(ctx.r, time.time())
    s1, t1 = sim_sent(base), time.time()
    owned = await owned_partitions(ctx)
    for n in names:
        pipe.stop(n)
    ticks = await probes.equity_ticks(ctx.r, PARTITIONS, int(t0 * 1000), int(t1 * 1000))
    conflated = int(beat1["conflated"] - beat0["conflated"])
    expected = stats.expected_equity_rows(ticks)
    syms = sorted({k[0] for k in expected})
    lo = min(k[1] for k in expected) if expected else 0
    hi = max(k[1] for k in expected) if expected else 0
    db = await ctx.conn.fetch(
        'SELECT ticker, (extract(epoch FROM "timestamp") * 1000)::bigint AS ms, price, volume '
        'FROM equity_data WHERE ticker = ANY($1::text[]) AND "timestamp" BETWEEN '
        "to_timestamp($2::float8 / 1000) AND to_timestamp($3::float8 / 1000)",
        syms,
        lo,
        hi,
    )
    first = {}
    for sym, sec in sorted(expected):
        first.setdefault(sym, sec)
    got: dict[tuple[str, int], tuple[float, int]] = {}
    dup = 0
    for row in db:
        key = (row["ticker"], int(row["ms"]))
        if key[1] < first.get(key[0], hi + 1):
            continue  # a symbol's first second in the window (and before): left out
        dup += key in got
        got[key] = (float(row["price"]), int(row["volume"]))
    missing = [k for k in expected if k not in got]
    extra = [k for k in got if k not in expected]
    vol_bad = [k for k in expected if k in got and got[k][1] != expected[k][1]]
    price_bad = [k for k in expected if k in got and abs(got[k][0] - expected[k][0]) > 1e-9]
    sent = s1 - s0
    result = {
        "workers": 2,
        "kills": 1,
        "graceful_stops": 1,
        "restarts": 2,
        "events": events,
        "window_s": round(t1 - t0, 1),
        "offered_ticks_per_s": p.handover_rate,
        "ticks_sent": sent,
        "ticks_in_redis": len(ticks),
        "conflated": conflated,
        "rows_expected": len(expected),
        "rows_in_db": len(got),
        "rows_missing": len(missing),
        "rows_extra": len(extra),
        "rows_duplicated": dup,
        "volume_mismatch": len(vol_bad),
        "price_mismatch": len(price_bad),
        "drained": ok,
        "partitions_after": sorted(owned.values()),
        "examples": {
            "missing": [list(k) for k in missing[:5]],
            "volume": [list(k) for k in vol_bad[:5]],
        },
    }
    # per symbol: what market-sim says it sent against the ticks in Redis
    sent_by_sym = {
        sym: int(v["count"])
        for sym, v in get(base, "/admin/sent?service=LEVELONE_EQUITIES")
        .get("LEVELONE_EQUITIES", {})
        .items()
    }
    in_redis: dict[str, int] = {}
    for sym, *_ in ticks:
        in_redis[sym] = in_redis.get(sym, 0) + 1
    result["symbols_count_mismatch"] = sum(
        1
        for sym in sent_by_sym.keys() | in_redis.keys()
        if sent_by_sym.get(sym, 0) != in_redis.get(sym, 0)
    )
    result["ok"] = bool(
        ok
        and result["symbols_count_mismatch"] == 0
        and sent == len(ticks) + conflated
        and conflated == 0
        and not missing
        and not extra
        and not dup
        and not vol_bad
        and not price_bad
        and len(expected) > 0
    )
    say(
        f"  handover: sim sent {sent:,}, Redis {len(ticks):,} (+{conflated} conflated, "
        f"{result['symbols_count_mismatch']} symbols differing), rows "
        "expected "
        f"{len(expected):,}, missing {len(missing)}, extra {len(extra)}, volume mismatches "
        f"{len(vol_bad)}, price mismatches {len(price_bad)} -> {'OK' if result['ok'] else 'FAILED'}"
    )
    return result


async def phase_scaleout(ctx: Ctx) -> dict[str, Any]:
    pipe = ctx.pipe
    if "indicators" not in pipe.programs(ctx.env):
        reason = "indicators runs inside the combined program (STACK_COMBINE): no workers to add"
        say(f"  scale-out skipped: {reason}")
        return {"skipped": reason}
    post(pipe.sim_url, "/admin/load", {"rate": OFF})
    for name in [n for n in pipe.running if n.startswith("indicators")]:
        pipe.stop(name)  # the layout's own indicators make way for the workers
    one, two = [], []
    for _ in range(ctx.prof.scale_repeats):
        one.append(await drain_capacity(ctx, 1))
        two.append(await drain_capacity(ctx, 2))
    m1 = stats.median_spread([x["ticks_per_s"] for x in one])
    m2 = stats.median_spread([x["ticks_per_s"] for x in two])
    factor = round(m2["median"] / m1["median"], 3) if m1["median"] and m2["median"] else None
    # each 2-worker drain against the 1-worker drain just before it (the machine's load drifts)
    paired = [round(b["ticks_per_s"] / a["ticks_per_s"], 3) for a, b in zip(one, two, strict=True)]
    handover = await handover_check(ctx)
    return {
        "one_worker_ticks_per_s": m1,
        "two_workers_ticks_per_s": m2,
        "scaling_factor": factor,
        "paired_factors": paired,
        "fill_rate": ctx.prof.fill_rate,
        "fill_s": ctx.prof.fill_s,
        "one_worker_runs": one,
        "two_worker_runs": two,
        "handover": handover,
    }


async def phase_reference(ctx: Ctx) -> dict[str, Any]:
    """5 tickers + 200 option contracts at market-sim's own pace, BATCH_INTERVAL=1."""
    pipe, p = ctx.pipe, ctx.prof
    await asyncio.sleep(p.settle)  # start-up over, every contract quoted
    trades = probes.TradeFlow(pipe.dsn, REF_TICKERS, 1.0)
    since = time.time()
    trades.start()
    cpu0, t0 = pipe.procs.cpu(), time.time()
    pipe.procs.reset_peaks()
    await asyncio.sleep(p.ref_window)
    cpu1, t1 = pipe.procs.cpu(), time.time()
    rss_now = pipe.procs.rss()
    peaks = pipe.procs.peak_report()
    await trades.stop()
    trade_report = await trades.report(since, settle_s=3.0)
    await asyncio.sleep(BATCH_INTERVAL + 1)  # the window's last ticks committed
    lat = await latency_figures(ctx, int(t0 * 1000), int(t1 * 1000))
    _, pct = cpu_figures(cpu_delta(cpu0, cpu1), lat["ticks_in_redis"], t1 - t0)
    grouped = by_process(rss_now)
    contracts = await ctx.conn.fetchval(
        "SELECT count(DISTINCT (ticker, option_type, strike_price, expiration_date)) FROM "
        "option_prices "
        'WHERE "timestamp" >= to_timestamp($1)',
        t0,
    )
    out = {
        "tickers": len(REF_TICKERS),
        "option_contracts_seen": int(contracts or 0),
        "window_s": round(t1 - t0, 1),
        "ticks_per_s": round(lat["ticks_in_redis"] / (t1 - t0), 1),
        **lat,
        "cpu_pct": pct,
        "rss_mb": {
            "by_process": {k: round(v, 1) for k, v in sorted(grouped.items())},
            "total_live_stack": round(live_total(grouped), 1),
            "total_all": round(sum(grouped.values()), 1),
        },
        "rss_peak_mb": peaks,
        "rows_per_s": rows_per_s(ctx, t0 * 1000, t1 * 1000),
        "trades": trade_report,
        "targets": {
            "tick_to_commit_p99_ms": 1100,
            "tick_to_ws_p99_ms": 1200,
            "rss_live_stack_mb": 250,
        },
    }
    say(
        f"  reference: {out['ticks_per_s']:,.0f} ticks/s, {out['option_contracts_seen']} "
        "contracts, p99 "
        f"tick->commit {lat['tick_to_commit_ms']['p99']} ms, ->WS {lat['tick_to_ws_ms']['p99']} "
        "ms, CPU "
        f"{pct['total']:.1f} % (live stack {pct['total_live_stack']:.1f} %), RSS live stack "
        f"{out['rss_mb']['total_live_stack']:.0f} MB {out['rss_mb']['by_process']}"
    )
    return out


def closed_offset() -> str:
    """libfaketime offset to the next Saturday, 17:00 UTC (the market closed all day)."""
    now = datetime.now(UTC)
    sat = (now + timedelta(days=(5 - now.weekday()) % 7 or 7)).replace(
        hour=17, minute=0, second=0, microsecond=0
    )
    return f"+{int((sat - now).total_seconds())}"


async def phase_idle(ctx: Ctx) -> dict[str, Any]:
    """Market closed: market-sim (SIM_CLOCK=nyse) and every service (MARKET_HOURS=regular)
    under libfaketime on a Saturday; Redis and PostgreSQL as they are."""
    pipe, p = ctx.pipe, ctx.prof
    pipe.stop_all()
    env = ctx.env | {"SIM_CLOCK": "nyse", "MARKET_HOURS": "regular", "SIM_LOAD_SYMBOLS": "0"}
    offset = closed_offset()
    progs = pipe.start_all(env, faketime=offset)
    await wait_ready(ctx, streaming=False, programs=progs)
    await asyncio.sleep(p.settle + 1)  # start-up work (imports, first checks) is over
    state = get(pipe.sim_url, "/admin/state")
    cpu0, t0 = pipe.procs.cpu(), time.time()
    await asyncio.sleep(p.idle_window)
    cpu1, t1 = pipe.procs.cpu(), time.time()
    _, pct = cpu_figures(cpu_delta(cpu0, cpu1), 1, t1 - t0)
    beats = await probes.heartbeats(ctx.r, "streamer")
    out = {
        "window_s": round(t1 - t0, 1),
        "faketime_offset_s": int(offset),
        "market_open": state.get("market_open"),
        "streamer_state": beats[0].get("state") if beats else None,
        "cpu_pct": pct,
        "target_pct": 1.0,
    }
    say(
        f"  idle: market open {out['market_open']}, streamer {out['streamer_state']}, CPU "
        f"{pct['total']:.2f} % of one core (live stack {pct['total_live_stack']:.2f} %) "
        f"{pct['by_process']}"
    )
    return out


def summarize(doc: dict[str, Any]) -> None:
    bound = (BATCH_INTERVAL + 0.25) * 1000
    if not doc.get("loads"):
        return  # a partial run (--only) without the load phase
    ok = [
        ld
        for ld in doc["loads"]
        if ld["kept_up"]
        and ld["tick_to_commit_ms"]["p99"] is not None
        and ld["tick_to_commit_ms"]["p99"] <= bound
    ]
    best = max(ok, key=lambda ld: ld["offered_ticks_per_s"], default=None)
    kept = [ld for ld in doc["loads"] if ld["kept_up"]]
    # CPU per tick where the bound holds; else at the highest load kept up; else the lowest.
    at = (
        best or max(kept, key=lambda ld: ld["offered_ticks_per_s"], default=None) or doc["loads"][0]
    )
    doc["summary"] = {
        "bound_ms": bound,
        "highest_sustained_within_bound_offered": best["offered_ticks_per_s"] if best else 0,
        "highest_sustained_within_bound_ticks_per_s": best["sustained_ticks_per_s"]["median"]
        if best
        else 0,
        "highest_kept_up_offered": max((ld["offered_ticks_per_s"] for ld in kept), default=0),
        "cpu_us_per_tick_total_at_highest": at["cpu_us_per_tick"]["total"],
        "cpu_us_per_tick_at_offered": at["offered_ticks_per_s"],
        # the compaction the load's rows cost later, in the background (pipeline/compaction.py)
        "cpu_us_per_tick_with_compaction_at_highest": at["cpu_us_per_tick"].get(
            "total_with_compaction"
        ),
        "targets": {"ticks_per_s": 100_000, "stretch_ticks_per_s": 150_000, "cpu_us_per_tick": 10},
    }
    base = doc.get("baseline", {})
    if base.get("loads"):
        # Ratios at the same offered load (the highest both ran), each per tick it processed.
        ours = {ld["offered_ticks_per_s"]: ld for ld in doc["loads"]}
        common = [b for b in base["loads"] if b["offered_ticks_per_s"] in ours]
        if common:
            b = max(common, key=lambda x: x["offered_ticks_per_s"])
            ld = ours[b["offered_ticks_per_s"]]
            base["ratios_at_offered"] = b["offered_ticks_per_s"]
            base["throughput_ratio"] = round(
                ld["sustained_ticks_per_s"]["median"] / max(b["inserted_per_s"], 1e-9), 2
            )
            base["cpu_per_tick_ratio"] = round(
                ld["cpu_us_per_tick"]["total"] / b["cpu_us_per_tick"]["total"], 4
            )
        else:
            base["throughput_ratio"] = base["cpu_per_tick_ratio"] = None


def git_commit() -> str:
    """HEAD of the checkout (``BENCH_GIT_COMMIT`` when run from an exported tree)."""
    if os.environ.get("BENCH_GIT_COMMIT"):
        return os.environ["BENCH_GIT_COMMIT"]
    res = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return res.stdout.strip() or "unknown"


async def main_async(prof: Profile, args: argparse.Namespace) -> int:
    n_sym = prof.symbols or max(2000, int(max([*prof.rates, prof.fill_rate]) / 50) + 1)
    symbols = [f"LD{i:05d}" for i in range(n_sym)]
    root = Path(tempfile.mkdtemp(prefix="sd-pipe-"))
    if os.geteuid() == 0:
        root.chmod(0o755)
    base_env = {
        "LOG_LEVEL": "WARNING",
        "LOG_FORMAT": "text",
        "SIM_LOG_LEVEL": "WARNING",
        "SIM_LOG_FORMAT": "text",
        "SIM_SEED": str(SEED),
        "SIM_CLOCK": "always",
        "MARKET_HOURS": "always",
        "BATCH_INTERVAL": str(BATCH_INTERVAL),
        "STREAM_PARTITIONS": str(PARTITIONS),
        "OPTION_STRIKES": "10",
        "OPTION_EXPIRATIONS": "2",
        "SIM_LOAD_SYMBOLS": str(n_sym),
        "SIM_LOAD_RATE": "1",
        "SIM_MAX_SYMBOLS": str(max(5000, n_sym)),
        "SIM_SEND_QUEUE": "20000",
        "SIM_WS_DEFLATE_LEVEL": "1",
        "SIM_INITIAL_CASH": "1000000000",
        "RISK_ALLOW_MARKET_ORDERS": "true",
        "RISK_DUPLICATE_WINDOW": "0",
        "RISK_MAX_ORDERS_PER_MINUTE": "100000",
        "RISK_MAX_DAILY_NOTIONAL": "1000000000",
        "RISK_MAX_ORDER_NOTIONAL": "1000000000",
        "RISK_MAX_POSITION_NOTIONAL": "1000000000",
        "MIGRATIONS_DIR": str(ROOT / "migrations"),
    }
    pipe = Pipeline(root, base_env)
    started = time.time()
    doc: dict[str, Any] = {
        "schema": 1,
        "mode": prof.mode,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
    }
    r: aioredis.Redis | None = None
    conn = None
    ctx = None
    #: wall seconds of each phase (and of the start and the teardown): where a run's time goes
    phase_s: dict[str, float] = {}
    doc["phase_seconds"] = phase_s

    async def timed(name: str, coro: Awaitable[T]) -> T:
        t = time.time()
        try:
            return await coro
        finally:
            phase_s[name] = round(time.time() - t, 1)

    try:
        say(f"starting PostgreSQL (durable) and Redis in {root}")
        await pipe.start_servers()
        r = aioredis.Redis.from_url(pipe.redis.url)
        conn = await asyncpg.connect(pipe.dsn)
        doc["machine"] = {
            "cores": os.cpu_count(),
            "load_avg_1m": round(os.getloadavg()[0], 2),
            "note": "2 vCPUs shared with other work: absolute figures are pessimistic",
        }
        # 1. the reference workload on fresh processes (default heartbeat and lease settings)
        await set_universe(conn, REF_TICKERS, REF_TICKERS)
        ref_env = pipe.service_env(
            TICKERS=",".join(REF_TICKERS), OPTION_UNDERLYINGS=",".join(REF_TICKERS)
        )
        if args.reference_layout == "small":
            ref_env["STACK_COMBINE"] = SMALL_VM_COMBINE
        layout = pipe.start_all(ref_env)
        say(f"layout of the reference and idle phases: {layout}")
        ws = probes.WsClient(pipe.ports["gateway"], pipe.token)
        ctx = Ctx(
            prof,
            pipe,
            r,
            conn,
            symbols,
            ref_env,
            ws,
            probes.TradeFlow(pipe.dsn, symbols[:100], prof.trade_rate),
        )
        await wait_ready(ctx, streaming=True, programs=layout)
        post(pipe.sim_url, "/admin/broker/reset", {"cash": 1e9})
        ws.start()
        await asyncio.wait_for(ws.connected.wait(), 30)
        only = args.only
        phase_s["start"] = round(time.time() - started, 1)
        if "reference" in only:
            say("reference workload (5 tickers + 200 option contracts)")
            doc["reference"] = await timed("reference", phase_reference(ctx))
        # 2. idle: market closed (every program restarted under libfaketime)
        if "idle" in only:
            say("idle (market closed)")
            doc["idle"] = await timed("idle", phase_idle(ctx))
        # 3. load mode
        pipe.stop_all()
        # market-sim was restarted for the idle phase: its broker starts afresh and its order
        # ids start again, so the trades of the reference phase must not stay behind them
        await conn.execute("TRUNCATE trades, trade_events, positions CASCADE")
        await set_universe(conn, symbols, [])
        # one process per service (per-process figures; the scale-out phase adds workers),
        # unless STACK_COMBINE came with the environment
        # compaction off: measured on its own after the loads (pipeline/compaction.py)
        ctx.env = pipe.service_env(
            HEARTBEAT_INTERVAL="1",
            LEASE_TTL="4",
            TICKERS=",".join(symbols),
            STORAGE_COMPACT_INTERVAL="0",
        )
        load_layout = pipe.start_all(ctx.env)
        say(f"layout of the load phases: {load_layout}")
        post(pipe.sim_url, "/admin/load", {"rate": 1000})
        await wait_ready(ctx, streaming=True, programs=load_layout)
        post(pipe.sim_url, "/admin/broker/reset", {"cash": 1e9})
        await asyncio.wait_for(ws.connected.wait(), 30)
        doc["config"] = {
            "batch_interval_s": BATCH_INTERVAL,
            "partitions": PARTITIONS,
            "load_symbols": n_sym,
            "window_s": prof.window,
            "settle_s": prof.settle,
            "repeats": prof.repeats,
            "seed": SEED,
            "layout": load_layout,
            "reference_layout": layout,
            "reference_stack_combine": ref_env.get("STACK_COMBINE", ""),
            "rates": prof.rates,
            "trade_rate_per_s": prof.trade_rate,
            "postgres": "local, durable (fsync on)",
        }
        say(
            f"offered loads {prof.rates} ({prof.repeats} x {prof.window:.0f} s after "
            f"{prof.settle:.0f} s warm-up)"
        )
        doc["loads"] = await timed("loads", phase_loads(ctx)) if "loads" in only else []
        if doc["loads"]:
            say("compaction of the rows the loads stored (one day back: closed chunks)")
            doc["compaction"] = await timed("compaction", phase_compaction(ctx, doc["loads"]))
        if "scaleout" in only:
            say("scale-out: indicators workers sharing the partitions")
            doc["scaleout"] = await timed("scaleout", phase_scaleout(ctx))
        if "baseline" in only:
            say("baseline: schwab-py StreamClient, one INSERT per tick")
            doc["baseline"] = await timed("baseline", phase_baseline(ctx))
    finally:
        t_down = time.time()
        if ctx is not None:
            await ctx.ws.stop()
        pipe.stop_all(timeout=3)  # nothing is measured any more: a slow stop is cut short
        if conn is not None:
            await conn.close()
        if r is not None:
            await r.aclose()
        # the data is thrown away: no shutdown checkpoint (kept with --keep)
        pipe.stop_servers(pg_mode="fast" if args.keep else "immediate")
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        phase_s["teardown"] = round(time.time() - t_down, 1)
    summarize(doc)
    doc["duration_s"] = round(time.time() - started, 1)
    missing = stats.missing_keys(doc)
    doc["missing_keys"] = missing
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = Path(args.out) if args.out else RESULTS / "latest.json"
    out.write_text(json.dumps(doc, indent=1, default=_json_default) + "\n")
    from pipeline.plot import plot

    png = plot(doc, out.with_name("pipeline.png") if not args.out else out.with_suffix(".png"))
    print()
    print(stats.markdown_table(doc))
    print(f"\nwrote {out} and {png} in {doc['duration_s']:.0f} s")
    if missing:
        print(f"bench: keys missing or null: {missing}", file=sys.stderr)
        return 1
    return 0


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    return str(o)


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="the short profile (make bench-quick)")
    ap.add_argument(
        "--rates", type=lambda v: [float(x) for x in v.split(",")], help="offered ticks/s"
    )
    ap.add_argument("--window", type=float, help="measurement window per load, s")
    ap.add_argument("--repeats", type=int, help="windows per load (medians reported)")
    ap.add_argument("--out", help="result file (default bench/results/latest.json)")
    ap.add_argument("--keep", action="store_true", help="keep the working directory (logs)")
    ap.add_argument(
        "--services",
        help="the stack runner's STACK_SERVICES (default: its own, from the environment: all)",
    )
    ap.add_argument(
        "--only",
        type=lambda v: set(v.split(",")),
        default=set(PHASES),
        help=f"run only these phases (comma-separated, of {','.join(PHASES)}); a partial run's "
        "file lacks the other phases' keys, so it exits 1",
    )
    ap.add_argument(
        "--reference-layout",
        choices=("small", "separate"),
        default="small",
        help="layout of the reference and idle phases: the small-VM one (default: "
        f"STACK_COMBINE={SMALL_VM_COMBINE}, the executor apart) or one process per service",
    )
    args = ap.parse_args()
    if not args.only <= set(PHASES):
        ap.error(f"--only: unknown phase(s) {sorted(args.only - set(PHASES))}")
    prof = QUICK if args.quick or os.environ.get("BENCH_QUICK") else FULL
    if args.rates:
        prof = replace(prof, rates=args.rates)
    if args.window:
        prof = replace(prof, window=args.window)
    if args.repeats:
        prof = replace(prof, repeats=args.repeats)
    if args.services:
        os.environ["STACK_SERVICES"] = args.services
    return asyncio.run(main_async(prof, args))


if __name__ == "__main__":
    sys.exit(main())
