"""The Prometheus text exposition format (version 0.0.4), written by hand.

The health service is the one process that runs all day next to everything else on a 512 MB
VM; ``prometheus_client`` cost it 1.3 MB of resident memory for what is, here, string
formatting of a few dozen samples built at scrape time. The tests parse this output with
``prometheus_client``'s own parser, so the format stays checked by an independent reader.
"""

from __future__ import annotations

import math
import os
import resource
from collections.abc import Iterable, Sequence

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Family:
    """One metric family: a name, its help text, its type and its samples."""

    def __init__(self, name: str, doc: str, kind: str, labels: Sequence[str] = ()) -> None:
        self.name = name
        self.doc = doc
        self.kind = kind
        self.labels = tuple(labels)
        self.samples: list[tuple[tuple[str, ...], float]] = []

    def add_metric(self, values: Sequence[str], value: float) -> None:
        """Add one sample with these label ``values`` (in the order of ``labels``)."""
        if len(values) != len(self.labels):
            raise ValueError(f"{self.name}: {len(self.labels)} labels, {len(values)} values")
        self.samples.append((tuple(values), float(value)))


def counter(name: str, doc: str, labels: Sequence[str] = ()) -> Family:
    """A counter family; its samples are exposed as ``<name>_total``."""
    return Family(name, doc, "counter", labels)


def gauge(name: str, doc: str, labels: Sequence[str] = ()) -> Family:
    """A gauge family."""
    return Family(name, doc, "gauge", labels)


def _value(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(v)


def _label(v: str) -> str:
    return v.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def render(families: Iterable[Family]) -> bytes:
    """The families in the text format, one HELP and TYPE line each, then the samples."""
    out: list[str] = []
    for fam in families:
        doc = fam.doc.replace("\\", r"\\").replace("\n", r"\n")
        # As prometheus_client writes 0.0.4: a counter's HELP and TYPE name its _total series.
        sample = fam.name + "_total" if fam.kind == "counter" else fam.name
        out.append(f"# HELP {sample} {doc}")
        out.append(f"# TYPE {sample} {fam.kind}")
        for values, value in fam.samples:
            if values:
                pairs = ",".join(
                    f'{k}="{_label(v)}"' for k, v in zip(fam.labels, values, strict=True)
                )
                out.append(f"{sample}{{{pairs}}} {_value(value)}")
            else:
                out.append(f"{sample} {_value(value)}")
    out.append("")
    return "\n".join(out).encode()


def _boot_time() -> float | None:
    try:
        with open("/proc/stat", "rb") as f:
            for line in f:
                if line.startswith(b"btime "):
                    return float(line.split()[1])
    except OSError:
        pass
    return None


def process_families() -> list[Family]:
    """This process's CPU, memory, start time and file descriptors (Linux /proc; on other
    systems, only what ``resource`` knows)."""
    fams: list[Family] = []
    try:
        with open("/proc/self/stat", "rb") as f:
            stat = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        stat = []
    ticks = os.sysconf("SC_CLK_TCK")
    if len(stat) > 22:
        # Fields after "(comm)": index 0 is field 3 (state) in proc(5).
        cpu = counter("process_cpu_seconds", "Total user and system CPU time spent in seconds.")
        cpu.add_metric([], (int(stat[11]) + int(stat[12])) / ticks)
        vms = gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.")
        vms.add_metric([], float(stat[20]))
        rss = gauge("process_resident_memory_bytes", "Resident memory size in bytes.")
        rss.add_metric([], float(int(stat[21]) * resource.getpagesize()))
        fams += [cpu, vms, rss]
        if (boot := _boot_time()) is not None:
            start = gauge(
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
            )
            start.add_metric([], boot + int(stat[19]) / ticks)
            fams.append(start)
    try:
        fds = gauge("process_open_fds", "Number of open file descriptors.")
        fds.add_metric([], float(len(os.listdir("/proc/self/fd"))))
        fams.append(fds)
    except OSError:
        pass
    limit = gauge("process_max_fds", "Maximum number of open file descriptors.")
    limit.add_metric([], float(resource.getrlimit(resource.RLIMIT_NOFILE)[0]))
    fams.append(limit)
    return fams
