"""The PNG of the pipeline benchmark: latency percentiles and CPU against offered load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def plot(doc: dict[str, Any], path: Path) -> Path:
    """Two panels: tick -> commit and tick -> WebSocket p50/p99 (ms), and CPU us per tick
    (total and per process) with CPU % of one core, each against the offered load."""
    loads = doc.get("loads", [])
    x = [ld["offered_ticks_per_s"] / 1000 for ld in loads]
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5))
    for key, label, style in (
        ("tick_to_commit_ms", "tick->commit", "-"),
        ("tick_to_ws_ms", "tick->WebSocket", "--"),
    ):
        for q, marker in (("p50", "o"), ("p99", "s")):
            a.plot(x, [ld[key][q] for ld in loads], style, marker=marker, label=f"{label} {q}")
    bound = doc.get("summary", {}).get("bound_ms")
    if bound:
        a.axhline(bound, color="grey", lw=0.8, ls=":", label=f"bound {bound:.0f} ms")
    a.set_xlabel("offered load (k ticks/s)")
    a.set_ylabel("latency (ms, log)")
    a.set_yscale("log")
    a.set_title("latency from the simulator's event time")
    a.legend(fontsize=8)
    a.grid(alpha=0.3)
    b.plot(
        x,
        [ld["cpu_us_per_tick"]["total"] for ld in loads],
        "-o",
        color="black",
        label="total us/tick",
    )
    procs = sorted(
        {k for ld in loads for k in ld["cpu_us_per_tick"]["by_process"]} - {"market-sim"}
    )
    for name in procs:
        b.plot(
            x,
            [ld["cpu_us_per_tick"]["by_process"].get(name) for ld in loads],
            "-",
            marker=".",
            label=name,
        )
    b.set_xlabel("offered load (k ticks/s)")
    b.set_ylabel("CPU us per tick")
    b.set_yscale("log")
    b.grid(alpha=0.3)
    b2 = b.twinx()
    b2.plot(
        x,
        [ld["cpu_pct"]["total"] for ld in loads],
        ":",
        color="red",
        marker="^",
        label="CPU % total",
    )
    b2.set_ylabel("CPU % of one core", color="red")
    lines = b.get_legend_handles_labels()
    lines2 = b2.get_legend_handles_labels()
    b.legend(lines[0] + lines2[0], lines[1] + lines2[1], fontsize=7, loc="upper right")
    b.set_title("CPU per tick (pipeline processes, simulator excluded)")
    fig.suptitle(
        f"bench_pipeline ({doc.get('mode')}, {doc.get('generated_at')}, {doc.get('git_commit')})",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
