"""CPU and RSS of named process trees (psutil), sampled in a background thread.

A *root* is a process the benchmark started (a service, Redis, the postmaster); its figures
include every descendant: CPU of live children plus ``children_user/system`` of the reaped
ones (PostgreSQL backends that came and went), RSS summed over the live tree. Peak RSS is the
maximum of those sums over the samples (every ``interval`` s), per root and in total.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterable

import psutil

#: Roots that are not part of the live stack (the simulator stands in for Schwab, PostgreSQL
#: for Supabase; the baseline and the benchmark's own clients are not StreamDesk).
NOT_LIVE = ("market-sim", "postgres", "baseline")


def tree_cpu_s(root: psutil.Process) -> float:
    """CPU seconds of ``root``, its reaped children and its live descendants."""
    total = 0.0
    with contextlib.suppress(psutil.Error):
        t = root.cpu_times()
        total += t.user + t.system + t.children_user + t.children_system
        for child in root.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                c = child.cpu_times()
                total += c.user + c.system
    return total


def tree_rss_mb(root: psutil.Process) -> float:
    """RSS (MB) of ``root`` and its live descendants."""
    total = 0
    with contextlib.suppress(psutil.Error):
        total += root.memory_info().rss
        for child in root.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                total += child.memory_info().rss
    return total / 2**20


class ProcSet:
    """The named roots being measured; ``snapshot()`` for CPU deltas, ``peaks`` for RSS."""

    def __init__(self, interval: float = 0.25) -> None:
        self.roots: dict[str, psutil.Process] = {}
        self.interval = interval
        self.peaks: dict[str, float] = {}
        self.peak_total_live = 0.0
        self.peak_total_all = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def set(self, name: str, pid: int) -> None:
        with self._lock:
            self.roots[name] = psutil.Process(pid)

    def drop(self, name: str) -> None:
        with self._lock:
            self.roots.pop(name, None)

    def names(self) -> list[str]:
        with self._lock:
            return list(self.roots)

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far per root."""
        with self._lock:
            roots = dict(self.roots)
        return {name: tree_cpu_s(p) for name, p in roots.items()}

    def rss(self) -> dict[str, float]:
        """Current RSS (MB) per root."""
        with self._lock:
            roots = dict(self.roots)
        return {name: tree_rss_mb(p) for name, p in roots.items()}

    def reset_peaks(self) -> None:
        with self._lock:
            self.peaks = {}
            self.peak_total_live = self.peak_total_all = 0.0

    def _sample(self) -> None:
        rss = self.rss()
        live = sum(v for k, v in rss.items() if not k.startswith(NOT_LIVE))
        with self._lock:
            for k, v in rss.items():
                self.peaks[k] = max(self.peaks.get(k, 0.0), v)
            self.peak_total_live = max(self.peak_total_live, live)
            self.peak_total_all = max(self.peak_total_all, sum(rss.values()))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def peak_report(self) -> dict[str, float]:
        """Peak RSS per root and the totals (live stack; every measured process)."""
        self._sample()
        with self._lock:
            out = {k: round(v, 1) for k, v in sorted(self.peaks.items())}
            out["total_live_stack"] = round(self.peak_total_live, 1)
            out["total_all"] = round(self.peak_total_all, 1)
        return out


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds per root between two :meth:`ProcSet.cpu` readings (roots in both)."""
    return {k: max(0.0, after[k] - before[k]) for k in after if k in before}


def group(values: dict[str, float], prefixes: Iterable[str]) -> dict[str, float]:
    """Sum the values of roots sharing a prefix (``indicators``, ``indicators-2`` ...)."""
    out: dict[str, float] = {}
    for p in prefixes:
        out[p] = sum(v for k, v in values.items() if k == p or k.startswith(p + "-"))
    return out


def live_total(values: dict[str, float]) -> float:
    return sum(v for k, v in values.items() if not k.startswith(NOT_LIVE))


def wait_gone(pids: Iterable[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            psutil.Process(pid).wait(max(0.1, deadline - time.monotonic()))
