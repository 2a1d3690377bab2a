"""The packed chunk format: exact round trip of every value, and the generated migration."""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import pytest

from streamdesk.storage_layout import (
    CHUNK_SECONDS,
    EQUITY,
    FLOAT_SCALE,
    INDICATORS,
    OPTIONS,
    decode,
    encode,
)
from streamdesk.storage_sql import migration_sql
from streamdesk.storage_views import bars_migration_sql, reads_migration_sql

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def _same(a: Any, b: Any) -> bool:
    """Bit-for-bit equality of two stored values (NULL, -0.0 and NaN included)."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float):
        return (
            isinstance(b, float)
            and (a == b or (math.isnan(a) and math.isnan(b)))
            and (math.copysign(1.0, a) == math.copysign(1.0, b))
        )
    return bool(a == b) and type(a) is type(b)


def _assert_round_trip(spec: Any, slots: list[Any]) -> Any:
    packed = encode(spec, slots)
    back = decode(spec, packed)
    for i, (a, b) in enumerate(zip(slots, back, strict=True)):
        assert (a is None) == (b is None), i
        if a is not None:
            assert all(_same(x, y) for x, y in zip(a, b, strict=True)), (i, a, b)
    return packed


def test_option_chunk_round_trips_exactly_with_nulls_gaps_and_odd_floats() -> None:
    rng = random.Random(5)
    slots: list[Any] = []
    for i in range(CHUNK_SECONDS):
        if rng.random() < 0.15:
            slots.append(None)  # no change in that second: no row
            continue
        slots.append(
            (
                None if i < 20 else round(rng.uniform(1, 3), 2),  # not traded yet
                round(rng.uniform(1, 3), 2),
                round(rng.uniform(1, 3), 2),
                round(rng.uniform(-1, 1), 4),
                -0.0 if i == 7 else round(rng.random() / 10, 4),  # -0.0 survives
                float("nan") if i == 9 else -0.05,
                rng.random(),  # a full double: kept as a double
                float("inf") if i == 11 else 0.1,
                round(rng.uniform(10, 60), 3),
                10 * i,
                2**40 + i,
                round(500 + rng.gauss(0, 1), 2),
            )
        )
    packed = _assert_round_trip(OPTIONS, slots)
    assert packed.n == sum(s is not None for s in slots)


def test_scales_are_the_smallest_exact_ones() -> None:
    slots = [(round(500.25 + i / 100, 2), i * 100, 500.24, 500.26, 10_000 + i) for i in range(60)]
    slots += [None] * (CHUNK_SECONDS - 60)
    packed = _assert_round_trip(EQUITY, slots)
    scales = [packed.meta[2 * c + 1] >> 34 & 31 for c in range(1, 6)]
    assert scales == [2, 0, 2, 2, 0]
    widths = [packed.meta[2 * c + 1] & 63 for c in range(6)]
    # presence: one block all there, the others absent (block bases); prices 0.59 apart at
    # 2 decimals: 6 bits; constant bid/ask: 0 bits
    assert widths == [0, 6, 13, 0, 0, 6]


def test_indicators_keep_computed_doubles_exactly() -> None:
    rng = random.Random(9)
    slots = [(rng.uniform(400, 500), rng.uniform(400, 500), None) for _ in range(CHUNK_SECONDS)]
    packed = _assert_round_trip(INDICATORS, slots)
    assert packed.meta[3] >> 34 & 31 == FLOAT_SCALE


def test_values_held_for_five_seconds_are_stored_once_per_block() -> None:
    rng = random.Random(3)
    every: list[Any] = []
    held: list[Any] = []
    for i in range(CHUNK_SECONDS):
        row = [round(rng.uniform(1, 3), 2) for _ in range(3)] + [
            round(rng.uniform(-1, 1), 4) for _ in range(6)
        ]
        every.append((*row, i, 100, 500.0))
        if i % 5 == 0:
            block = row[3:9]
        held.append((*row[:3], *block, i, 100, 500.0))
    full = _assert_round_trip(OPTIONS, every)
    shed = _assert_round_trip(OPTIONS, held)
    stride = [shed.meta[2 * c + 1] >> 40 & 255 for c in range(4, 10)]
    assert stride == [5] * 6
    assert len(shed.words) < 0.7 * len(full.words)


def test_migration_file_is_the_generated_sql() -> None:
    path = ROOT / "migrations" / "0060_storage_layout.sql"
    assert path.read_text() == migration_sql(), (
        "regenerate: python -m streamdesk.storage_sql > migrations/0060_storage_layout.sql "
        "(only before it was applied anywhere; afterwards add a new migration)"
    )


@pytest.mark.parametrize(
    ("name", "generate"),
    [("0095_storage_reads", reads_migration_sql), ("0110_storage_bars", bars_migration_sql)],
)
def test_later_storage_migrations_are_the_generated_sql(name: str, generate: Any) -> None:
    path = ROOT / "migrations" / f"{name}.sql"
    assert path.read_text() == generate(), (
        f"regenerate: python -m streamdesk.storage_sql {name[:4]} > migrations/{name}.sql "
        "(only before it was applied anywhere; afterwards add a new migration)"
    )
