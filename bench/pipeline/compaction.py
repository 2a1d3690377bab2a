"""The compaction phase: what packing the load phases' rows costs, per row and per tick.

The indicators service compacts every ``STORAGE_COMPACT_INTERVAL`` (60 s) the 5-minute chunks
that have closed. A 10 s load window catches a random share of that: nothing, or a whole
chunk's worth of all 3,001 load symbols at once (a 10k ticks/s window that a chunk boundary fell
into measured 81 instead of 47 us/tick, and its writer waited on the storage lock). So the load
phases run with compaction off (``STORAGE_COMPACT_INTERVAL=0``) and this phase measures it
alone, on the rows those phases left behind:

1. the rows each load window stored (per table, in the hot tables) are counted;
2. what has closed is compacted first (unmeasured), then a sample of the hot rows is copied one
   day back, so each instrument's copy sits in closed chunks (a chunk is compacted once its
   instrument has a row in a later one; the originals are the later ones), as full chunks,
   the way a steady session fills them (see :func:`copy_back_one_day`);
3. :func:`streamdesk.storage_compact.compact` runs table by table on one connection, as the
   service's task does: CPU of this process plus that of every PostgreSQL process (autovacuum
   and the VACUUM after the round included) over the rows moved is the cost per row;
4. per load: that cost times the rows its windows stored per tick sent is the CPU per tick
   that compaction adds later, in the background (``cpu_us_per_tick.compaction``), and
   ``total_with_compaction`` the sum with the streaming figure.

The stack stays up (load off), so PostgreSQL's figure includes its idle queries (health's round,
heartbeats): well under 1 % of a core, against compaction's seconds of CPU.
"""

from __future__ import annotations

import time
from typing import Any

import asyncpg

from streamdesk.storage_compact import compact
from streamdesk.storage_layout import ALL_SPECS, BARS, SPECS

from .procs import ProcSet, cpu_delta


async def _columns(conn: asyncpg.Connection, table: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 "
        "AND NOT attisdropped ORDER BY attnum",
        table,
    )
    return [r["attname"] for r in rows]


async def stored_rows(conn: asyncpg.Connection, t0: float, t1: float) -> dict[str, float]:
    """Rows stored with a time in [t0, t1) (epoch s) per table; bars: one per active
    instrument per minute, pro rata (a 10 s window holds a bucket start or not)."""
    out: dict[str, float] = {}
    for spec in SPECS:
        out[spec.view] = float(
            await conn.fetchval(
                f'SELECT count(*) FROM {spec.hot} WHERE "{spec.time_col}" >= to_timestamp($1) '
                f'AND "{spec.time_col}" < to_timestamp($2)',
                t0,
                t1,
            )
        )
    active = await conn.fetchval(
        'SELECT count(DISTINCT ticker) FROM equity_data_hot WHERE "timestamp" >= to_timestamp($1) '
        'AND "timestamp" < to_timestamp($2)',
        t0,
        t1,
    )
    out[BARS.view] = float(active) * (t1 - t0) / 60.0
    return out


#: Instruments per table in the sample that is compacted (the first by name that have rows).
SAMPLE_INSTRUMENTS = 200
#: Rows per instrument in the sample: a full chunk of seconds; bars: a regular session.
SESSION_BARS = 390


async def copy_back_one_day(
    conn: asyncpg.Connection, instruments: int = SAMPLE_INSTRUMENTS
) -> dict[str, int]:
    """Copy a sample of the hot rows one day back as full chunks; return the rows per table.

    Full: the load phases touch each symbol for a few minutes, so its rows sit in sparse chunks
    (~60 of 300 seconds, a few of 480 minutes), and packing costs per slot as much as per row.
    In a steady session a traded symbol has a row every second (the loads stored one per active
    symbol per second) and a bar every minute, so each of :data:`SAMPLE_INSTRUMENTS`
    instruments gets one chunk of consecutive slots from one day back, filled by repeating its
    own rows in order (a whole chunk of seconds; :data:`SESSION_BARS` bars). The values are the
    run's own; only their times move.
    """
    copied: dict[str, int] = {}
    for spec in ALL_SPECS:
        cols = await _columns(conn, spec.hot)
        ts = spec.time_col
        fill = SESSION_BARS if spec is BARS else spec.chunk_slots
        slot = (
            f"{spec.chunk_start_fn}(now() - interval '1 day') "
            f"+ g.i * interval '{spec.slot_seconds} s'"
        )
        sel = [slot if c == ts else f'src."{c}"' for c in cols]
        names = ", ".join(f'"{c}"' for c in cols)
        status = await conn.execute(
            f"""
            WITH pick AS (SELECT DISTINCT ticker FROM {spec.hot} ORDER BY ticker LIMIT $1),
                 src AS (SELECT h.*, row_number() OVER w - 1 AS k, count(*) OVER w AS n
                         FROM {spec.hot} h JOIN pick USING (ticker)
                         WINDOW w AS (PARTITION BY h.ticker ORDER BY h."{ts}"
                                      ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING))
            INSERT INTO {spec.hot} ({names})
            SELECT {", ".join(sel)} FROM src JOIN generate_series(0, $2 - 1) AS g(i)
              ON g.i % src.n = src.k
            """,
            instruments,
            fill,
        )
        copied[spec.view] = int(status.split()[-1])
    return copied


async def measure(
    conn: asyncpg.Connection, procs: ProcSet, instruments: int = SAMPLE_INSTRUMENTS
) -> dict[str, Any]:
    """Steps 2 and 3 of the module docstring: per table and in total."""
    t = time.perf_counter()
    # what the service would have compacted by now (a chunk boundary during the loads): so
    # that the measured rounds move the sample only
    await compact(conn)
    copied = await copy_back_one_day(conn, instruments)
    await conn.execute("ANALYZE")  # as autovacuum would have by the time the chunks close
    copy_s = time.perf_counter() - t
    tables: dict[str, Any] = {}
    for spec in ALL_SPECS:
        # this thread runs the event loop (compaction, asyncpg); ProcSet samples in another
        pg0, py0, w0 = procs.cpu(), time.thread_time(), time.perf_counter()
        stats = await compact(conn, tables=(spec,))
        seconds = time.perf_counter() - w0
        py = time.thread_time() - py0
        pg = cpu_delta(pg0, procs.cpu()).get("postgres", 0.0)
        tables[spec.view] = {
            "rows": stats.rows,
            "chunks": stats.chunks,
            "skipped_chunks": stats.skipped,
            "seconds": round(seconds, 2),
            "cpu_s": {"bench_process": round(py, 3), "postgres": round(pg, 3)},
            "us_per_row": round((py + pg) / stats.rows * 1e6, 3) if stats.rows else None,
        }
    rows = sum(v["rows"] for v in tables.values())
    cpu = sum(v["cpu_s"]["bench_process"] + v["cpu_s"]["postgres"] for v in tables.values())
    return {
        "sample_instruments": instruments,
        "copied_rows": copied,
        "copy_s": round(copy_s, 2),
        "tables": tables,
        "rows": rows,
        "cpu_s": round(cpu, 3),
        "us_per_row": round(cpu / rows * 1e6, 3) if rows else None,
    }


def per_tick(result: dict[str, Any], stored: dict[str, float], ticks: float) -> float:
    """Compaction CPU (us) per tick sent, for a window that stored ``stored`` rows and was
    sent ``ticks`` ticks (step 4)."""
    cost = 0.0
    for view, t in result["tables"].items():
        if t["us_per_row"] is not None:
            cost += t["us_per_row"] * stored.get(view, 0.0)
    return round(cost / max(ticks, 1.0), 3)
