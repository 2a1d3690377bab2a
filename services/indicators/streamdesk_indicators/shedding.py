"""Load shedding before the database fills up (Supabase turns read-only at its size limit).

The writer measures ``pg_database_size`` every ``check_interval`` seconds and, against the
storage budget, picks a level. Levels, in the order load is shed (equities and indicators are
never shed):

====== ============= ===================================================================
level  at (default)  what is written
====== ============= ===================================================================
0      below 90 %    everything, every second
1      90 %          option greeks and IV (delta, gamma, theta, vega, rho, IV) only change
                     every 5 s: each 5-s block repeats the block's first values
2      95 %          every option field only changes every 5 s (prices too)
3      98 %          option rows are not written at all
====== ============= ===================================================================

Held values cost almost nothing once compacted: a column that only changes on 5-s marks is
stored with one value per 5 slots (``stride``, see streamdesk.storage_layout). Each change of
level is logged as a warning; the level, the rows shed and the measured size are heartbeat
counters, and a level above 0 makes the heartbeat ``degraded`` with the reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from .engine import OptRow

log = logging.getLogger(__name__)

BLOCK_MS = 5_000
_GREEKS = slice(9, 15)  # delta, gamma, theta, vega, rho, implied_volatility
_ALL = slice(6, 18)  # last_price .. underlying_price
DEFAULT_THRESHOLDS = (0.90, 0.95, 0.98)
DESCRIPTIONS = {
    1: "option greeks every 5 s",
    2: "all option fields every 5 s",
    3: "option rows dropped",
}


def level_for(size_bytes: int, budget_bytes: int, thresholds: tuple[float, ...]) -> int:
    """Shedding level for a database of ``size_bytes`` against ``budget_bytes``."""
    used = size_bytes / budget_bytes if budget_bytes > 0 else 0.0
    return sum(1 for t in thresholds if used >= t)


@dataclass
class Shedder:
    """Applies the current level to the option rows of each batch (bounded state)."""

    level: int = 0
    shed_rows: int = 0
    size_bytes: int = 0
    budget_bytes: int = 0
    _held: dict[str, tuple[int, tuple[Any, ...]]] = field(default_factory=dict)

    def set_size(self, size_bytes: int, budget_bytes: int, thresholds: tuple[float, ...]) -> None:
        """Record a measured size and switch level if needed (logged)."""
        self.size_bytes, self.budget_bytes = size_bytes, budget_bytes
        new = level_for(size_bytes, budget_bytes, thresholds)
        if new != self.level:
            pct = 100 * size_bytes / budget_bytes
            if new > self.level:
                log.warning(
                    "database %.0f MB = %.1f%% of the %.0f MB storage budget: shedding level %d "
                    "(%s)",
                    size_bytes / 2**20,
                    pct,
                    budget_bytes / 2**20,
                    new,
                    DESCRIPTIONS[new],
                )
            else:
                log.warning("database at %.1f%% of its budget: shedding level %d", pct, new)
            self.level = new
            self._held.clear()

    @property
    def reason(self) -> str | None:
        """Heartbeat reason while shedding, else None."""
        if not self.level:
            return None
        pct = 100 * self.size_bytes / self.budget_bytes if self.budget_bytes else 0.0
        what = DESCRIPTIONS[self.level]
        return f"storage {pct:.0f}% of budget: shedding level {self.level} ({what})"

    def apply(self, options: list[OptRow]) -> list[OptRow]:
        """The option rows to write at the current level."""
        if self.level == 0 or not options:
            return options
        if self.level >= 3:
            self.shed_rows += len(options)
            return []
        part = _GREEKS if self.level == 1 else _ALL
        out = []
        for row in options:
            block = row[1] // BLOCK_MS
            held = self._held.get(row[0])
            if held is not None and held[0] == block:
                values = held[1]
                if tuple(row[part]) != values:
                    self.shed_rows += 1
                    row = (*row[: part.start], *values, *row[part.stop :])
            else:
                self._held[row[0]] = (block, tuple(row[part]))
            out.append(row)
        if len(self._held) > 100_000:  # bounded; a lost hold only means one fresh block
            self._held.clear()
        return out
