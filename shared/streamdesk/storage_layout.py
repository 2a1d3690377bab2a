"""Packed storage of the per-second tables: layout, encoder and the SQL that decodes it.

Each of ``equity_data``, ``indicators`` and ``option_prices`` is a view (see
``migrations/0060_storage_layout.sql``, generated from :func:`migration_sql`):

* ``<table>_hot``: the recent rows, in the original row layout (daily partitions named
  ``<table>_pYYYYMMDD``); the writer inserts here;
* ``<table>_packed``: one row per instrument and :data:`CHUNK_SECONDS` window, daily
  partitions by window start ``t0``;
* ``storage_grid(ts, t0, pos)``: one row per second that has rows (hot or compacted), shared
  by all instruments: the views' time axis (see streamdesk.storage_sql).

A chunk is dense: slot ``pos`` (1-based) is second ``t0 + pos - 1``. Every column (slot 0 is
"present") is frame-of-reference encoded on two levels: value = ``base + block + v``, with
``block`` the base of the value's :data:`BLOCK_SLOTS`-second block (``bwidth`` bits, relative
to ``base``) and ``v`` a ``width``-bit offset in it; ``63 // width`` consecutive codes share one
``int8`` word of ``w`` (the block bases follow the offsets, from word ``bstart``). A
float column is stored as ``v / 10**scale`` with the smallest ``scale`` (0..9) that gives
back every value bit for bit, else losslessly in the ``float8[]`` array ``f``. A nullable
column reserves the all-ones code for NULL. A column whose values only change every
``stride`` slots (load shedding: greeks every 5 s) stores one value per ``stride`` slots.

Per column the meta array ``m`` holds two ``int8``: ``base`` (or the 1-based start in ``f``)
and ``info`` = width | k << 6 | start << 12 | bwidth << 28 | scale << 34 | nullable << 39 |
stride << 40 | bstart << 48; ``k`` = values per word, ``start`` = 1-based first word in ``w``,
scale 31 = float in ``f``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import Any

#: Seconds per packed chunk (a divisor of 86400: chunks never cross a UTC day).
CHUNK_SECONDS = 300
#: Seconds per block of the second frame-of-reference level (a divisor of CHUNK_SECONDS).
BLOCK_SLOTS = 60
FLOAT_SCALE = 31
MAX_SCALE = 9
_BITS = 63
_MAX_WIDTH = 62  # (1 << width) - 1 must fit a bigint


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # "f" (double precision) | "i" (bigint) | "e" (text, one of ``labels``)
    labels: tuple[str, ...] = ()  # "e": the closed set of values, stored as their index


@dataclass(frozen=True)
class TableSpec:
    """One logical table: its view, hot table, packed table and columns.

    The per-second tables use the defaults; ``bars_1m`` (:data:`BARS`) packs a UTC day of
    minutes per chunk on its own time axis, and its hot rows fill the slots a packed chunk
    does not have (a backfill healing a gap in an already packed day), where the per-second
    tables' chunks are either hot or packed.
    """

    view: str
    packed: str
    static: tuple[tuple[str, str], ...]  # per-instrument columns stored once per chunk
    values: tuple[Column, ...]
    time_col: str = "timestamp"
    slot_seconds: int = 1  # seconds per slot
    chunk_slots: int = CHUNK_SECONDS  # slots per chunk
    grid: str = "storage_grid"  # the time axis: one row per slot that has rows
    chunk_origin: int = 0  # chunks start at this many seconds past the epoch (mod chunk)
    hot_fills: bool = False  # hot rows fill a packed chunk's absent slots (else: one or other)
    order: tuple[str, ...] = ()  # the view's column order when not the default

    @property
    def hot(self) -> str:
        return f"{self.view}_hot"

    @property
    def chunk_seconds(self) -> int:
        return self.slot_seconds * self.chunk_slots

    @property
    def chunk_start_fn(self) -> str:
        """SQL function mapping a time to its chunk start."""
        return "storage_chunk_start" if self.grid == "storage_grid" else f"{self.grid}_chunk_start"

    @property
    def pos_fn(self) -> str:
        """SQL function mapping a time to its 1-based slot (NULL off the slot grid)."""
        return "storage_grid_pos" if self.grid == "storage_grid" else f"{self.grid}_pos"

    @property
    def columns(self) -> list[str]:
        """Columns of the view, in the original table's order."""
        if self.order:
            return list(self.order)
        return [
            "ticker",
            self.time_col,
            *[s for s, _ in self.static],
            *[c.name for c in self.values],
        ]


def _f(*names: str) -> tuple[Column, ...]:
    return tuple(Column(n, "f") for n in names)


EQUITY = TableSpec(
    "equity_data",
    "equity_data_packed",
    (),
    (Column("price", "f"), Column("volume", "i"), *_f("bid", "ask"), Column("cum_volume", "i")),
)
INDICATORS = TableSpec("indicators", "indicators_packed", (), _f("sma9", "vwap", "ema9"))
OPTIONS = TableSpec(
    "option_prices",
    "option_prices_packed",
    (
        ("underlying", "text"),
        ("option_type", "text"),
        ("strike_price", "double precision"),
        ("expiration_date", "date"),
    ),
    (
        *_f("last_price", "bid", "ask", "delta", "gamma", "theta", "vega", "rho"),
        Column("implied_volatility", "f"),
        Column("volume", "i"),
        Column("open_interest", "i"),
        Column("underlying_price", "f"),
    ),
)
SPECS = (EQUITY, INDICATORS, OPTIONS)
BY_VIEW = {s.view: s for s in SPECS}
#: Bar chunks: 8 hours of 1-minute slots from 13:00 UTC (migration 0110, ``bars_grid``), so
#: the regular session (13:30-20:00 UTC in summer, 14:30-21:00 in winter) is one chunk and a
#: chunk (its exact-double vwap included) fits a page.
BAR_SLOT_SECONDS = 60
BAR_CHUNK_SLOTS = 480
BAR_CHUNK_ORIGIN = 13 * 3600
BARS = TableSpec(
    "bars_1m",
    "bars_1m_packed",
    (),
    (
        *_f("open", "high", "low", "close"),
        Column("volume", "i"),
        Column("vwap", "f"),
        Column("source", "e", ("stream", "backfill")),
    ),
    time_col="bucket",
    slot_seconds=BAR_SLOT_SECONDS,
    chunk_slots=BAR_CHUNK_SLOTS,
    grid="bars_grid",
    chunk_origin=BAR_CHUNK_ORIGIN,
    hot_fills=True,
)
#: Every packed table, per-second ones first (compaction's order).
ALL_SPECS = (*SPECS, BARS)
GREEKS = ("delta", "gamma", "theta", "vega", "rho", "implied_volatility")


# --------------------------------------------------------------------------- encoding


def _scale_of(values: list[float]) -> int:
    """Smallest decimal scale at which every value round-trips exactly, or FLOAT_SCALE."""
    k = 0
    div = 1.0
    for v in values:
        while True:
            if v - v == 0.0 and abs(v) < 1e15:
                q = round(v * div)
                back = q / div
                if back == v and math.copysign(1.0, back) == math.copysign(1.0, v):
                    break
            k += 1
            if k > MAX_SCALE:
                return FLOAT_SCALE
            div = 10.0**k
    return k


@dataclass
class Packed:
    """One encoded chunk, ready for the packed table."""

    n: int
    meta: list[int]
    words: list[int]
    floats: list[float] | None


def _stride_of(vals: list[Any], present: list[bool], stride: int) -> bool:
    """True if ``vals`` only change at multiples of ``stride`` (absent slots ignored)."""
    for s in range(0, len(vals), stride):
        seen = None
        first = True
        for i in range(s, min(s + stride, len(vals))):
            if not present[i]:
                continue
            if first:
                seen, first = vals[i], False
            elif vals[i] != seen or (vals[i] is None) != (seen is None):
                return False
    return True


def _pack_ints(ints: list[int], width: int, words: list[int]) -> tuple[int, int]:
    """Append ``ints`` packed ``63 // width`` per word; return (k, 1-based start)."""
    if width == 0:
        return _BITS, 1  # never read: the mask is 0
    k = _BITS // width
    start = len(words) + 1
    for s in range(0, len(ints), k):
        word = 0
        for j, v in enumerate(ints[s : s + k]):
            word |= v << (j * width)
        words.append(word)
    return k, start


def encode(spec: TableSpec, slots: list[tuple[Any, ...] | None], strides: bool = True) -> Packed:
    """Encode one chunk: ``slots[i]`` = the value tuple of second i (or None if absent)."""
    n_slots = len(slots)
    enums = [(c, col.labels) for c, col in enumerate(spec.values) if col.kind == "e"]
    if enums:
        mapped: list[tuple[Any, ...] | None] = []
        for sl in slots:
            if sl is None:
                mapped.append(None)
                continue
            row = list(sl)
            for c, labels in enums:
                if row[c] is not None:
                    if row[c] not in labels:
                        raise ValueError(f"{spec.view}: {row[c]!r} is not one of {labels}")
                    row[c] = labels.index(row[c])
            mapped.append(tuple(row))
        slots = mapped
    present = [s is not None for s in slots]
    meta: list[int] = []
    words: list[int] = []
    floats: list[float] = []
    columns: list[tuple[Column | None, list[Any]]] = [(None, [1 if p else 0 for p in present])]
    for c, value_col in enumerate(spec.values):
        columns.append((value_col, [s[c] if s is not None else None for s in slots]))
    for col, vals in columns:
        stride = 1
        if strides and col is not None:
            for cand in (60, 15, 5):
                if n_slots % cand == 0 and _stride_of(vals, present, cand):
                    stride = cand
                    break
        if stride > 1:
            # one value per stride block: the first present one (blocks are constant)
            blk: list[Any] = []
            for s in range(0, n_slots, stride):
                v = next((vals[i] for i in range(s, s + stride) if present[i]), None)
                blk.append(v)
            vals = blk
        if stride == 1:
            live = present
        else:
            live = [any(present[s : s + stride]) for s in range(0, n_slots, stride)]
        nullable = col is not None and any(v is None for v, p in zip(vals, live, strict=True) if p)
        known = [v for v in vals if v is not None]
        scale = _scale_of(known) if col is not None and col.kind == "f" else 0
        if scale != FLOAT_SCALE and col is not None and col.kind == "f" and known:
            div = 10.0**scale
            span = round(max(known) * div) - round(min(known) * div)
            if span.bit_length() > _MAX_WIDTH - 1:
                scale = FLOAT_SCALE
        if scale == FLOAT_SCALE:
            fstart = len(floats) + 1
            floats.extend(0.0 if v is None else float(v) for v in vals)
            ints = [1 if v is None else 0 for v in vals]
            width = 1 if nullable else 0
            k, start = _pack_ints(ints, width, words)
            base = fstart
            bwidth, bstart = 0, 1
        else:
            div = 10.0**scale
            if col is None or col.kind != "f":
                q = [None if v is None else int(v) for v in vals]
            else:
                q = [None if v is None else round(v * div) for v in vals]
            qk = [x for x in q if x is not None]
            base = min(qk) if qk else 0
            # two levels: per block of BLOCK_SLOTS seconds a base (relative to the chunk's),
            # per value an offset from its block's base: ranges over a minute, not 5 minutes
            bsz = max(1, BLOCK_SLOTS // stride)
            blocks = [
                min((x for x in q[b : b + bsz] if x is not None), default=base) - base
                for b in range(0, len(q), bsz)
            ]
            offs = [None if x is None else x - base - blocks[i // bsz] for i, x in enumerate(q)]
            top = max((o for o in offs if o is not None), default=0)
            width = (top + (1 if nullable else 0)).bit_length()
            code = (1 << width) - 1
            ints = [code if o is None else o for o in offs]
            k, start = _pack_ints(ints, width, words)
            bwidth = max(blocks).bit_length()
            _, bstart = _pack_ints(blocks, bwidth, words)
        if width > _MAX_WIDTH or bwidth > _MAX_WIDTH or not -(2**62) < base < 2**62:
            raise ValueError(f"{spec.view}: value range too large to pack")
        if len(words) >= 2**15:
            raise ValueError(f"{spec.view}: chunk too large to pack")
        info = (
            width
            | k << 6
            | start << 12
            | bwidth << 28
            | scale << 34
            | int(nullable) << 39
            | stride << 40
            | bstart << 48
        )
        meta += [base, info]
    if not words:
        words.append(0)
    return Packed(sum(present), meta, words, floats or None)


def decode(spec: TableSpec, p: Packed, n_slots: int | None = None) -> list[tuple[Any, ...] | None]:
    """Inverse of :func:`encode` (the view does the same in SQL); used by tests and by the
    re-packing of a bar chunk that a backfill added minutes to."""
    n_slots = n_slots or spec.chunk_slots
    cols: list[list[Any]] = []
    for c in range(len(spec.values) + 1):
        base, info = p.meta[2 * c], p.meta[2 * c + 1]
        width, k, start = info & 63, info >> 6 & 63, info >> 12 & 0xFFFF
        bwidth, bstart = info >> 28 & 63, info >> 48 & 0x7FFF
        scale, nullable, stride = info >> 34 & 31, info >> 39 & 1, info >> 40 & 255
        mask, bmask, bk = (1 << width) - 1, (1 << bwidth) - 1, _BITS // max(bwidth, 1)
        bsz = max(1, BLOCK_SLOTS // stride)
        out: list[Any] = []
        for i in range(n_slots):
            j = i // stride
            idx = start - 1 + j // k
            v = (p.words[idx] if idx < len(p.words) else 0) >> (j % k * width) & mask
            blk = j // bsz
            bidx = bstart - 1 + blk // bk
            bb = (p.words[bidx] if bidx < len(p.words) else 0) >> (blk % bk * bwidth) & bmask
            col = spec.values[c - 1] if c else None
            if scale == FLOAT_SCALE:
                assert p.floats is not None
                out.append(None if nullable and v == 1 else p.floats[base - 1 + j])
            elif nullable and v == mask:
                out.append(None)
            elif col is not None and col.kind == "e":
                out.append(col.labels[base + bb + v])
            elif col is None or col.kind == "i":
                out.append(base + bb + v)
            else:
                out.append((base + bb + v) / 10.0**scale)
        cols.append(out)
    return [
        tuple(cols[c][i] for c in range(1, len(cols))) if cols[0][i] == 1 else None
        for i in range(n_slots)
    ]


def partition_day(t0_epoch_s: int) -> date:
    """UTC day of a chunk start."""
    return date.fromordinal(date(1970, 1, 1).toordinal() + t0_epoch_s // 86400)
