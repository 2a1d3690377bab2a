"""The broadcast publisher's degrade level: planned, paced against the month, never silent.

- **Plan**: the first ladder level (``streamdesk.realtime_budget.LADDER``) whose full-month
  projection fits the free plan's quotas, margin applied, for ``SUPABASE_DASHBOARDS``
  receivers and the streamed hours of ``MARKET_HOURS``. Payload sizes start from the reference
  universe's measured message and follow the payloads actually sent (an exponential average
  of their ratio to the reference, so a smaller universe degrades less, a larger one more).
- **Pace**: this month's actual usage (the Redis usage key, all publishers together) plus the
  rest of the month at a level must fit too; when the month runs ahead of plan the level goes
  up, and stays at least there until the month ends.
- Every change is a WARNING naming the level and the reason; the level and the reason are in
  the heartbeat counters and ``degrade`` is in every payload.

``SUPABASE_DEGRADE=<n>`` pins the level (no automatic change; a WARNING at start when the
plan would choose another).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime

from streamdesk.realtime_budget import (
    FREE_PLAN,
    LevelSize,
    Plan,
    Projection,
    Usage,
    choose,
    choose_paced,
    month_key,
    project_all,
)

log = logging.getLogger(__name__)

#: Weight of each observed payload in the size scale (exponential average).
SCALE_ALPHA = 0.1
#: A level is lowered only when the lower one fits with this fraction of the margin (hysteresis).
LOWER_HEADROOM = 0.9


class DegradeController:
    """Holds the current level and why; see the module docstring."""

    def __init__(
        self,
        sizes: Mapping[int, LevelSize],
        *,
        receivers: int,
        seconds_per_month: float,
        flush_interval: float,
        pinned: int | None = None,
        plan: Plan = FREE_PLAN,
        hours_label: str = "",
    ) -> None:
        self.reference = dict(sizes)
        self.receivers = receivers
        self.seconds_per_month = seconds_per_month
        self.flush_interval = flush_interval
        self.pinned = pinned
        self.plan = plan
        self.hours_label = hours_label
        self.scale_options = 1.0
        self.scale_equity = 1.0
        self._month = ""
        self._floor = 0
        planned = choose(self.projections())
        if pinned is not None:
            self.level, self.reason = pinned, "pinned by SUPABASE_DEGRADE"
            if planned != pinned:
                log.warning(
                    "Realtime degrade level pinned at %d by SUPABASE_DEGRADE; the free-plan "
                    "budget for %d dashboard(s) would choose %d",
                    pinned,
                    receivers,
                    planned,
                )
        else:
            self.level, self.reason = planned, self._plan_reason(planned)

    def sizes(self) -> dict[int, LevelSize]:
        """Payload sizes per level, scaled by what was observed."""
        return {
            n: LevelSize(
                round(s.with_options * self.scale_options), round(s.equity_only * self.scale_equity)
            )
            for n, s in self.reference.items()
        }

    def projections(self, plan: Plan | None = None) -> list[Projection]:
        """Full-month projections at every level with the current sizes."""
        return project_all(
            self.sizes(),
            self.receivers,
            self.seconds_per_month,
            self.flush_interval,
            plan or self.plan,
        )

    def observe(self, level: int, with_options: bool, payload_bytes: int) -> None:
        """Fold one sent payload's size into the scale of its kind."""
        ref = self.reference.get(level)
        if ref is None:
            return
        base = ref.with_options if with_options else ref.equity_only
        if base <= 0:
            return
        ratio = min(20.0, max(0.02, payload_bytes / base))
        if with_options:
            self.scale_options += SCALE_ALPHA * (ratio - self.scale_options)
        else:
            self.scale_equity += SCALE_ALPHA * (ratio - self.scale_equity)

    def evaluate(self, usage: Usage | None, now: datetime) -> bool:
        """Re-choose the level (``usage`` None: Redis unreadable, plan only); True if changed."""
        if self.pinned is not None:
            return False
        month = month_key(now)
        new_month = month != self._month
        if new_month:  # a new month starts on plan
            self._month, self._floor = month, 0
        planned = choose(self.projections())
        if planned < self.level and not new_month and self._floor < self.level:
            # lower only with headroom, so that noise in the sizes does not flap the level
            strict = replace(self.plan, margin=self.plan.margin * LOWER_HEADROOM)
            planned = max(planned, min(self.level, choose(self.projections(strict))))
        level, reason = planned, self._plan_reason(planned)
        if usage is not None:
            paced = choose_paced(
                self.projections(), usage, now, max(planned, self._floor), self.plan
            )
            if paced.level > planned:
                level, reason = paced.level, f"this month runs ahead of plan: {paced.reason}"
                self._floor = max(self._floor, paced.level)
        elif self._floor > level:
            level, reason = self._floor, "held for the rest of the month (usage unreadable)"
        if level == self.level:
            self.reason = reason
            return False
        log.warning("Realtime degrade level %d -> %d: %s", self.level, level, reason)
        self.level, self.reason = level, reason
        return True

    def _plan_reason(self, level: int) -> str:
        margin = f"{self.plan.margin:.0%}"
        hours = f", {self.hours_label}" if self.hours_label else ""
        if level == 0:
            return (
                f"plan: everything fits {margin} of the free plan for "
                f"{self.receivers} dashboard(s){hours}"
            )
        return (
            f"plan: level {level} is the first within {margin} of the free plan's quotas for "
            f"{self.receivers} dashboard(s){hours}"
        )
