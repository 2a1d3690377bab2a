"""One chaos run end to end: start the stack, workload + faults, settle, check, report.

Used by the CI profile (``test_chaos_stack.py``), ``make chaos`` (the long profile) and the
checker's own test (a deliberately broken writer must be caught).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from chaos_checker import (
    Report,
    Window,
    check_orders,
    check_replay,
    check_ticks,
    explain_gaps,
    read_tables,
    replay_streams,
)
from chaos_harness import ALL_SERVICES, STREAM_FAULTS, Stack
from chaos_profiles import Profile

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"


@dataclass
class Outcome:
    """What a run produced: the checker's report, the faults, timings, the printable table."""

    profile: Profile
    report: Report
    faults: Counter[str] = field(default_factory=Counter)
    fault_errors: list[str] = field(default_factory=list)
    services: dict[str, Any] = field(default_factory=dict)
    health: dict[str, Any] | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    trade_attempts: int = 0
    trade_failures: int = 0
    fault_log: list[dict[str, Any]] = field(default_factory=list)
    gap_log: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.report.failures and not self.fault_errors

    def table(self) -> str:
        r = self.report
        lines = [
            f"chaos profile {self.profile.name}: seed {self.profile.seed}, "
            f"{self.seconds.get('chaos', 0):.0f} s of faults, {self.seconds.get('total', 0):.0f} s"
            " in all",
            "",
            f"  {'fault kind':<26}{'injected':>9}",
        ]
        for kind in sorted(self.faults):
            lines.append(f"  {kind:<26}{self.faults[kind]:>9}")
        lines.append(f"  {'total':<26}{sum(self.faults.values()):>9}")
        rows = r.rows
        stats = [
            ("updates sent (sim log)", r.updates_sent),
            ("ticks sent (complete)", r.ticks_sent),
            ("seconds with ticks", r.seconds_expected),
            ("tick-stream entries", r.stream_entries),
            ("rows equity_data", rows.get("equity_data", 0)),
            ("rows indicators", rows.get("indicators", 0)),
            ("rows option_prices", rows.get("option_prices", 0)),
            ("rows bars_1m", rows.get("bars_1m", 0)),
            ("trades (rows)", r.trades),
            ("  of them rejected", r.rejected_trades),
            ("broker orders", r.orders),
            ("stream gaps recorded", r.gaps),
            ("seconds lost in explained gaps", r.explained_missing),
            ("LOST", r.lost),
            ("DUPLICATED", r.duplicated),
            ("INDICATOR MISMATCHES", r.indicator_mismatch),
            ("DOUBLE-ORDERED", r.double_ordered),
            ("MISSING ORDERS", r.missing_orders),
            ("UNSETTLED TRADES", r.unsettled),
            ("STATUS MISMATCHES", r.status_mismatch),
            ("ACKED TRADES LOST", r.acked_trades_lost),
            ("UNEXPLAINED GAPS", r.unexplained_gaps),
            ("SENT LOG INCOMPLETE", r.sentlog_incomplete),
        ]
        lines.append("")
        lines += [f"  {name:<32}{value:>10}" for name, value in stats]
        restarts = ", ".join(
            f"{n} {v['starts']}"
            + (f" (own exits {v['unexpected_exits']})" if v["unexpected_exits"] else "")
            for n, v in sorted(self.services.items())
        )
        lines.append("")
        lines.append(f"  service starts: {restarts}")
        if self.health is not None:
            lines.append(f"  health after the run: {self.health.get('status')}")
        lines.append(f"  result: {'PASS' if self.ok else 'FAIL ' + str(self.report.failures)}")
        for kind, examples in self.report.examples.items():
            for ex in examples[:3]:
                lines.append(f"    {kind}: {ex}")
        for err in self.fault_errors[:5]:
            lines.append(f"    fault error: {err}")
        return "\n".join(lines)

    def as_json(self) -> dict[str, Any]:
        return {
            "profile": self.profile.name,
            "seed": self.profile.seed,
            "ok": self.ok,
            "faults": dict(self.faults),
            "fault_errors": self.fault_errors,
            "report": self.report.as_json(),
            "failures": self.report.failures,
            "services": self.services,
            "health": self.health.get("status") if self.health else None,
            "seconds": self.seconds,
            "trade_attempts": self.trade_attempts,
            "trade_failures": self.trade_failures,
            "fault_log": self.fault_log,
            "gap_log": self.gap_log,
        }


async def run(
    profile: Profile,
    *,
    services: Iterable[str] = ALL_SERVICES,
    indicators_argv: list[str] | None = None,
    extra_env: dict[str, str] | None = None,
    chaos: bool = True,
    during: Callable[[Stack], Any] | None = None,
    say: Callable[[str], None] = print,
) -> Outcome:
    """Run ``profile`` on a fresh stack and check it. ``during(stack)`` (a coroutine function)
    runs instead of the fault schedule when ``chaos`` is false."""
    t0 = time.monotonic()
    stack = Stack(profile, services=services, indicators_argv=indicators_argv, extra_env=extra_env)
    outcome = Outcome(profile, Report())
    stop_trades = asyncio.Event()
    workload: asyncio.Task[None] | None = None
    try:
        await stack.start()
        await stack.wait_streaming(60)
        say(f"chaos: stack up in {time.monotonic() - t0:.1f}s ({stack.root})")
        if "trade-executor" in stack.wanted:
            workload = asyncio.create_task(stack.trade_workload(stop_trades), name="trades")
        await asyncio.sleep(2.0)
        t1 = time.monotonic()
        if chaos:

            def progress(f: Any) -> None:
                if len(stack.faults) % 10 == 0:
                    say(f"chaos: {len(stack.faults)} faults, {stack.sent.count()} updates copied")

            await stack.run_chaos(progress)
        elif during is not None:
            await during(stack)
        else:
            await asyncio.sleep(profile.chaos_seconds)
        outcome.seconds["chaos"] = time.monotonic() - t1
        stop_trades.set()
        if workload is not None:
            await asyncio.wait_for(workload, 30)
        with contextlib.suppress(Exception):
            await stack.admin.acall("POST", "faults/clear", {})
        t2 = time.monotonic()
        await stack.wait_streaming(profile.settle_timeout)
        outcome.health = await stack.wait_health_ok(30.0)
        await stack.final_stop_stream()
        await stack.wait_drained(profile.settle_timeout)
        await asyncio.sleep(1.0)
        await stack.wait_trades_settled(profile.settle_timeout)
        outcome.seconds["settle"] = time.monotonic() - t2
        for name in list(stack.services):
            await stack.stop_service(name)
        await check(stack, outcome)
    finally:
        stop_trades.set()
        if workload is not None and not workload.done():
            workload.cancel()
            await asyncio.gather(workload, return_exceptions=True)
        outcome.services = stack.counts()
        outcome.faults = Counter(f.kind for f in stack.faults if f.kind != "final:stop")
        outcome.fault_errors = list(stack.fault_errors)
        outcome.fault_log = [f.as_json() for f in stack.faults]
        outcome.trade_attempts = stack.trade_attempts
        outcome.trade_failures = stack.trade_failures
        await stack.close()
        outcome.seconds["total"] = time.monotonic() - t0
    return outcome


async def check(stack: Stack, outcome: Outcome) -> None:
    """All checkers on a settled, stopped stack."""
    report = outcome.report
    report.sentlog_incomplete = len(stack.sent.incomplete)
    for text in stack.sent.incomplete[:5]:
        report.note("sentlog_incomplete", text)
    conn = await asyncpg.connect(stack.dsn)
    try:
        gaps = await conn.fetch("SELECT * FROM stream_gaps ORDER BY started_at")
        tables = await read_tables(conn)
        trades = await conn.fetch("SELECT * FROM trades ORDER BY id")
    finally:
        await conn.close()
    outcome.gap_log = [
        {
            "started_at": g["started_at"].timestamp(),
            "ended_at": g["ended_at"].timestamp() if g["ended_at"] else None,
            "reason": g["reason"],
        }
        for g in gaps
    ]
    windows = [
        Window(f.start, f.end or time.time()) for f in stack.faults if f.kind in STREAM_FAULTS
    ]
    explained = explain_gaps(gaps, windows, report)
    check_ticks(
        stack.sent.updates, tables["equity_data"], tables["option_prices"], explained, report
    )
    expected, report.stream_entries = await replay_streams(stack.redis_url, 2)
    check_replay(expected, tables, report)
    if "trade-executor" in stack.wanted:
        orders = await stack.admin.acall("GET", "broker/orders", timeout=10)
        check_orders(trades, orders, stack.trades_acked, report)


def write_json(outcome: Outcome, name: str | None = None) -> Path:
    """The run's table as JSON in ``bench/results/`` (git-ignored)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / (name or ("chaos.json" if outcome.profile.name == "long" else "chaos-ci.json"))
    path.write_text(json.dumps(outcome.as_json(), indent=2, default=str) + "\n")
    return path
