"""Supabase Realtime within the free plan: quotas, the degrade ladder and monthly projections.

Pure functions (no I/O, no clock of their own: "now" is a parameter). The indicators service's
broadcast publisher uses them to pick its degrade level, ``streamdesk budget`` to print the
table; docs/supabase.md ("Realtime and the free plan") explains the figures.

How Supabase counts (free plan, https://supabase.com/docs/guides/realtime/limits and the
pricing page): a Broadcast counts **once when sent plus once per receiver**; the messages sent
to each receiver are also egress. One REST broadcast per writer flush is the unit here:

- broadcasts/month = streamed seconds / (``BATCH_INTERVAL`` x the level's ``every``);
- messages/month   = broadcasts x (1 + receivers);
- egress/month     = receivers x sum over broadcasts of (payload bytes + the Phoenix envelope
  and WebSocket frame header each receiver gets around the payload).

A level fits when messages, egress (the Realtime share of it) and the peak message rate stay
within ``margin`` of the quota. Payload bytes per level come from the real committed message
(measured by ``streamdesk_indicators.reference_universe``), never from a guess.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from .config import MarketHoursMode

#: Topic and event of the market-data broadcast (docs/supabase.md, contract).
TOPIC = "streamdesk:market"
EVENT = "flush"
#: Receivers (dashboards open) assumed when ``SUPABASE_DASHBOARDS`` is not set.
DEFAULT_DASHBOARDS = 2
#: Trading days in a month (NYSE: 19 to 23, 21 on average); regular session 09:30-16:00,
#: extended hours 04:00-20:00 New York. ``always`` (the demo default) streams every hour of
#: the longest month.
TRADING_DAYS_PER_MONTH = 21
HOURS_PER_DAY = {
    MarketHoursMode.REGULAR: 6.5,
    MarketHoursMode.EXTENDED: 16.0,
    MarketHoursMode.ALWAYS: 24.0,
}
ALWAYS_DAYS_PER_MONTH = 31


@dataclass(frozen=True, slots=True)
class Plan:
    """Realtime quotas of a Supabase plan and the share of them StreamDesk plans to use.

    ``realtime_egress_share``: the project's egress quota is shared with REST (PostgREST
    history reads of the dashboard: a chart load, a CSV export); Realtime may use this share.
    ``margin``: a level must fit within this fraction of each quota (trading days per month
    vary by +-10%, the flush rate a little above ``1 / BATCH_INTERVAL``).
    Sizes in decimal units (1 KB = 1,000 bytes, 1 GB = 10^9): the stricter reading.
    """

    messages_per_month: int = 2_000_000
    messages_per_second: int = 100
    payload_bytes: int = 256_000
    connections: int = 200
    egress_bytes_per_month: int = 5_000_000_000
    realtime_egress_share: float = 0.8
    margin: float = 0.8

    @property
    def message_limit(self) -> float:
        """Messages a month may use, margin applied."""
        return self.messages_per_month * self.margin

    @property
    def egress_limit(self) -> float:
        """Realtime egress bytes a month may use, share and margin applied."""
        return self.egress_bytes_per_month * self.realtime_egress_share * self.margin

    @property
    def rate_limit(self) -> float:
        """Messages per second the peak may reach, margin applied."""
        return self.messages_per_second * self.margin


FREE_PLAN = Plan()


@dataclass(frozen=True, slots=True)
class Level:
    """One step of the degrade ladder.

    ``every``: one broadcast per this many writer flushes (0 = paused: no broadcast at all);
    the rows of the flushes in between are merged into it (latest row per ticker/contract).
    ``options_every``: option rows ride along once per this many flushes (0 = never; they are
    held, merged, until then); ``greeks``: whether option rows keep ``delta`` and ``iv``.
    """

    number: int
    every: int
    options_every: int
    greeks: bool

    @property
    def paused(self) -> bool:
        """No broadcast at this level."""
        return self.every == 0

    def describe(self, flush_interval: float = 1.0) -> str:
        """One line for humans, in seconds at ``flush_interval``."""
        if self.paused:
            return "paused: no broadcast (REST history only)"
        eq = f"every {_secs(self.every * flush_interval)}"
        if not self.options_every:
            return f"{eq}, no options"
        opts = "options" if self.greeks else "options without greeks"
        return f"{eq}, {opts} every {_secs(self.options_every * flush_interval)}"


#: The degrade ladder, 0 = everything on every flush. Each step cuts what costs most first:
#: the option rows (96% of the reference payload) and their greeks, then the broadcast rate
#: (the message quota), keeping equity rows every second as long as the quotas allow.
LADDER: tuple[Level, ...] = (
    Level(0, 1, 1, True),
    Level(1, 1, 2, False),
    Level(2, 1, 5, False),
    Level(3, 1, 15, False),
    Level(4, 1, 30, False),
    Level(5, 2, 30, False),
    Level(6, 2, 60, False),
    Level(7, 3, 60, False),
    Level(8, 5, 60, False),
    Level(9, 10, 120, False),
    Level(10, 30, 0, False),
    Level(11, 0, 0, False),
)
PAUSED = LADDER[-1].number
#: Option fields dropped at levels without greeks.
GREEK_FIELDS = ("delta", "iv")


def level(number: int) -> Level:
    """The ladder step ``number``; ValueError if there is none."""
    if not 0 <= number < len(LADDER):
        raise ValueError(f"degrade level must be 0..{len(LADDER) - 1}, got {number}")
    return LADDER[number]


@dataclass(frozen=True, slots=True)
class LevelSize:
    """Payload bytes of one broadcast at a level: with the option rows, and without them."""

    with_options: int
    equity_only: int


def envelope_bytes(topic: str = TOPIC, event: str = EVENT) -> int:
    """Bytes each receiver gets around a payload: Phoenix's JSON envelope of a broadcast.

    Realtime pushes ``{"event":"broadcast","payload":{"event":..,"payload":..,"type":
    "broadcast"},"ref":null,"topic":"realtime:<topic>"}`` (supabase/realtime
    ``BroadcastController``, serializer 1.0.0, the larger of the two), in one WebSocket
    frame whose header is counted by :func:`frame_bytes`.
    """
    shell = {
        "event": "broadcast",
        "payload": {"event": event, "payload": None, "type": "broadcast"},
        "ref": None,
        "topic": f"realtime:{topic}",
    }
    return len(json.dumps(shell, separators=(",", ":"))) - len("null")


def frame_bytes(message_bytes: int) -> int:
    """Header of an unmasked server-to-client WebSocket frame of ``message_bytes``."""
    return 2 if message_bytes < 126 else 4 if message_bytes < 65_536 else 10


def per_receiver_bytes(payload_bytes: int) -> int:
    """Egress of one broadcast to one receiver: payload, envelope and frame header."""
    body = payload_bytes + envelope_bytes()
    return body + frame_bytes(body)


def streamed_seconds_per_month(
    hours: MarketHoursMode, trading_days: int = TRADING_DAYS_PER_MONTH
) -> int:
    """Seconds a month during which flushes carry data, for a ``MARKET_HOURS`` mode."""
    if trading_days < 1:
        raise ValueError("trading_days must be at least 1")
    days = ALWAYS_DAYS_PER_MONTH if hours is MarketHoursMode.ALWAYS else trading_days
    return round(HOURS_PER_DAY[hours] * 3600 * days)


@dataclass(frozen=True, slots=True)
class Projection:
    """A month at one level with ``receivers`` dashboards open."""

    level: int
    receivers: int
    broadcasts: int
    messages: int
    egress_bytes: int
    peak_messages_per_second: float
    max_payload_bytes: int
    fits_messages: bool
    fits_egress: bool
    fits_rate: bool

    @property
    def fits(self) -> bool:
        """Within every quota, margin applied."""
        return self.fits_messages and self.fits_egress and self.fits_rate

    def as_dict(self) -> dict[str, object]:
        """JSON-friendly form (``streamdesk budget --json``)."""
        return {
            "level": self.level,
            "receivers": self.receivers,
            "broadcasts": self.broadcasts,
            "messages": self.messages,
            "egress_bytes": self.egress_bytes,
            "peak_messages_per_second": round(self.peak_messages_per_second, 2),
            "max_payload_bytes": self.max_payload_bytes,
            "fits_messages": self.fits_messages,
            "fits_egress": self.fits_egress,
            "fits_rate": self.fits_rate,
            "fits": self.fits,
        }


def project(
    step: Level,
    size: LevelSize,
    receivers: int,
    seconds_per_month: float,
    flush_interval: float = 1.0,
    plan: Plan = FREE_PLAN,
) -> Projection:
    """Project one month at ``step`` (see the module docstring for the arithmetic).

    The peak rate assumes flushes as close as the writer allows (half a ``BATCH_INTERVAL``).
    """
    if not 0 <= receivers <= plan.connections:
        raise ValueError(f"receivers must be 0..{plan.connections} (concurrent connections)")
    if flush_interval <= 0 or seconds_per_month < 0:
        raise ValueError("flush_interval must be > 0 and seconds_per_month >= 0")
    if step.paused:
        return Projection(step.number, receivers, 0, 0, 0, 0.0, 0, True, True, True)
    flushes = seconds_per_month / flush_interval
    broadcasts = flushes / step.every
    with_options = flushes / step.options_every if step.options_every else 0.0
    equity_only = broadcasts - with_options
    egress = receivers * (
        with_options * per_receiver_bytes(size.with_options)
        + equity_only * per_receiver_bytes(size.equity_only)
    )
    messages = broadcasts * (1 + receivers)
    peak = (1 + receivers) / (step.every * flush_interval / 2)
    largest = size.with_options if step.options_every else size.equity_only
    return Projection(
        level=step.number,
        receivers=receivers,
        broadcasts=round(broadcasts),
        messages=round(messages),
        egress_bytes=round(egress),
        peak_messages_per_second=peak,
        max_payload_bytes=largest,
        fits_messages=messages <= plan.message_limit,
        fits_egress=egress <= plan.egress_limit,
        fits_rate=peak <= plan.rate_limit,
    )


def project_all(
    sizes: Mapping[int, LevelSize],
    receivers: int,
    seconds_per_month: float,
    flush_interval: float = 1.0,
    plan: Plan = FREE_PLAN,
) -> list[Projection]:
    """:func:`project` for every ladder step (``sizes`` keyed by level number)."""
    paused = LevelSize(0, 0)
    return [
        project(s, sizes.get(s.number, paused), receivers, seconds_per_month, flush_interval, plan)
        for s in LADDER
    ]


def choose(projections: Iterable[Projection], minimum: int = 0) -> int:
    """The first level at or above ``minimum`` whose projection fits (paused always fits)."""
    for p in projections:
        if p.level >= minimum and p.fits:
            return p.level
    return PAUSED


@dataclass(frozen=True, slots=True)
class Usage:
    """What this month has used so far: accepted broadcasts and their payload bytes."""

    broadcasts: int = 0
    payload_bytes: int = 0

    def messages(self, receivers: int) -> int:
        """Messages counted by Supabase: each broadcast once, plus once per receiver."""
        return self.broadcasts * (1 + receivers)

    def egress_bytes(self, receivers: int) -> int:
        """Egress to ``receivers``, with the average payload of the broadcasts."""
        if not self.broadcasts:
            return 0
        avg = self.payload_bytes / self.broadcasts
        return round(receivers * self.broadcasts * per_receiver_bytes(round(avg)))


def month_key(now: datetime) -> str:
    """The calendar month (UTC) of ``now`` as ``YYYY-MM``: the Redis usage key's suffix."""
    return _utc(now).strftime("%Y-%m")


def month_bounds(now: datetime) -> tuple[datetime, datetime]:
    """Start of ``now``'s month and of the next one (UTC)."""
    start = _utc(now).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    nxt = start.replace(year=start.year + 1, month=1) if start.month == 12 else None
    return start, nxt or start.replace(month=start.month + 1)


def remaining_fraction(now: datetime) -> float:
    """Fraction of ``now``'s calendar month still ahead (1.0 at its first instant)."""
    start, end = month_bounds(now)
    return (end - _utc(now)) / (end - start)


@dataclass(frozen=True, slots=True)
class Choice:
    """A level chosen for the rest of the month, and why (for the WARNING and the health)."""

    level: int
    reason: str


def choose_paced(
    projections: Sequence[Projection],
    usage: Usage,
    now: datetime,
    minimum: int = 0,
    plan: Plan = FREE_PLAN,
) -> Choice:
    """The first level >= ``minimum`` with which this month's usage plus the rest of the
    month at that level stays within the quotas (margin applied).

    ``projections`` are full-month projections (:func:`project_all`); the rest of the month
    is their ``remaining_fraction(now)`` share. The reason names the quota the lower levels
    would break, or "plan" when the month is on course.
    """
    left = remaining_fraction(now)
    receivers = projections[0].receivers if projections else 0
    used_msgs = usage.messages(receivers)
    used_egress = usage.egress_bytes(receivers)
    rejected: str | None = None
    for p in projections:
        if p.level < minimum:
            continue
        msgs = used_msgs + left * p.messages
        egress = used_egress + left * p.egress_bytes
        over = []
        if msgs > plan.message_limit:
            over.append(f"messages {msgs:,.0f} > {plan.message_limit:,.0f}")
        if egress > plan.egress_limit:
            over.append(f"egress {egress / 1e9:.2f} GB > {plan.egress_limit / 1e9:.2f} GB")
        if not p.fits_rate:
            over.append(f"{p.peak_messages_per_second:.0f} msg/s > {plan.rate_limit:.0f}")
        if not over or p.level == PAUSED:
            if rejected is None:
                return Choice(p.level, "plan")
            return Choice(p.level, rejected)
        if rejected is None:
            rejected = (
                f"level {p.level} would end the month at {'; '.join(over)} "
                f"(used so far: {usage.broadcasts:,} broadcasts = {used_msgs:,} messages, "
                f"{used_egress / 1e9:.3f} GB; {left:.0%} of the month left)"
            )
    return Choice(PAUSED, rejected or "plan")


def _secs(seconds: float) -> str:
    return f"{seconds:g} s"


def _utc(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValueError("the budget needs a timezone-aware datetime")
    return now.astimezone(UTC)
