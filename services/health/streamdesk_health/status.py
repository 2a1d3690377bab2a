"""Component states and the result of one check round."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """Health of a component or of the whole stack, ordered ok < degraded < down."""

    OK = "ok"
    DEGRADED = "degraded"
    DOWN = "down"

    @property
    def level(self) -> int:
        """0 ok, 1 degraded, 2 down (also the exit code of ``streamdesk health-check``)."""
        return _LEVELS[self]


_LEVELS = {Status.OK: 0, Status.DEGRADED: 1, Status.DOWN: 2}


def worst(statuses: list[Status]) -> Status:
    """The most severe of ``statuses`` (ok if empty)."""
    return max(statuses, key=lambda s: s.level, default=Status.OK)


@dataclass
class ComponentResult:
    """Outcome of one component check: status, a readable reason and figures."""

    name: str
    status: Status
    reason: str = ""
    figures: dict[str, Any] = field(default_factory=dict)
    checked_at: float = 0.0
    duration_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """The JSON shape served by ``/health``."""
        return {
            "status": self.status.value,
            "reason": self.reason,
            "checked_at": datetime.fromtimestamp(self.checked_at, UTC).isoformat(),
            "duration_s": round(self.duration_s, 4),
            **self.figures,
        }


class Problems:
    """Collects degraded/down findings of one check and turns them into a result."""

    def __init__(self) -> None:
        self.status = Status.OK
        self.reasons: list[str] = []

    def add(self, status: Status, reason: str) -> None:
        """Record one finding; the component takes the worst status seen."""
        self.status = worst([self.status, status])
        self.reasons.append(reason)

    def result(self, name: str, figures: dict[str, Any], ok_reason: str = "") -> ComponentResult:
        """A result with the worst status and the joined reasons."""
        reason = "; ".join(self.reasons) if self.reasons else ok_reason
        return ComponentResult(name, self.status, reason, figures)
