"""The two chaos profiles: ``ci`` (collected by plain ``pytest``, <= 2 minutes on 2 cores) and
``long`` (``make chaos``: ~20 minutes, 100k+ ticks, 50+ faults). ``CHAOS_PROFILE`` picks one,
``CHAOS_SEED`` and ``CHAOS_MINUTES`` override the seed and the chaos window of either."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

#: Every fault kind the harness can inject (see docs/chaos.md).
SERVICES = ("streamer", "indicators", "trade-executor", "health", "gateway")
FAULT_KINDS = (
    *(f"kill9:{s}" for s in SERVICES),
    *(f"stop:{s}" for s in (*SERVICES, "market-sim")),
    "redis:kill",
    "postgres:stop",
    "sim:ws_drop",
    "sim:ws_pause",
    "sim:http_delay",
    "sim:order_fault",
    "proxy:pg_latency",
    "proxy:pg_cut",
    "proxy:redis_latency",
    "proxy:redis_cut",
)


@dataclass(frozen=True)
class Profile:
    """Workload and fault schedule of one run."""

    name: str
    seed: int
    chaos_seconds: float  # faults are injected during this window
    faults_per_kind: int  # each kind at least this often (shuffled over the window)
    extra_faults: int  # further faults of random kinds
    tickers: tuple[str, ...]
    tick_interval: float  # market-sim equity step
    trade_interval: float  # mean seconds between trade submissions
    settle_timeout: float  # after the chaos: drain and settle within this
    test_timeout: int  # pytest-timeout of the whole test
    load_symbols: int = 0  # market-sim load mode (counted-only ticks, not checked per tick)
    load_rate: float = 0.0

    @property
    def faults(self) -> int:
        return self.faults_per_kind * len(FAULT_KINDS) + self.extra_faults


CI = Profile(
    name="ci",
    seed=20261201,
    chaos_seconds=65.0,
    faults_per_kind=2,
    extra_faults=0,
    tickers=("SPY", "QQQ", "AAPL", "MSFT", "NVDA", "AMZN"),
    tick_interval=0.05,
    trade_interval=0.8,
    settle_timeout=60.0,
    test_timeout=290,
)

LONG = Profile(
    name="long",
    seed=20261202,
    chaos_seconds=20 * 60.0,
    faults_per_kind=4,
    extra_faults=60,
    tickers=("SPY", "QQQ", "AAPL", "MSFT", "NVDA", "AMZN", "META", "TSLA"),
    tick_interval=0.05,
    trade_interval=1.0,
    settle_timeout=120.0,
    test_timeout=40 * 60,
)


def current() -> Profile:
    """The profile chosen by ``CHAOS_PROFILE`` (default ``ci``), with env overrides."""
    name = os.environ.get("CHAOS_PROFILE", "ci").strip().lower()
    if name not in ("ci", "long"):
        raise ValueError(f"CHAOS_PROFILE must be 'ci' or 'long', not {name!r}")
    prof = CI if name == "ci" else LONG
    if os.environ.get("CHAOS_SEED"):
        prof = replace(prof, seed=int(os.environ["CHAOS_SEED"]))
    if os.environ.get("CHAOS_MINUTES"):
        minutes = float(os.environ["CHAOS_MINUTES"])
        scale = minutes * 60.0 / prof.chaos_seconds
        prof = replace(
            prof,
            chaos_seconds=minutes * 60.0,
            extra_faults=max(0, int(prof.extra_faults * scale)),
            test_timeout=int(prof.test_timeout - prof.chaos_seconds + minutes * 60.0),
        )
    return prof
