"""Run-time self-check of decoded data: refuse to publish ticks from a wrong field map.

The field numbers in :mod:`.fields` are checked against schwab-py's enums at start-up; these
invariants check them against the data. The :class:`~.decode.Decoder` checks the first
complete update of every symbol (:func:`check_equity`, :func:`check_option`): event time in
epoch milliseconds within a sane range, finite non-negative prices, an equity's last within 3x
of its quote, an option's delta of the sign of its call/put. Every option update carrying
them must agree with the OCC symbol on strike, call/put, underlying and expiration
(:func:`check_option_static`). Each returns the reason of a violation, or ``""``; the decoder
refuses the whole service (equities or options) on the first one.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

from . import fields as F

_NUM = frozenset({int, float})
#: Event times must be epoch milliseconds after 2000-01-01 ...
_MIN_TS = 946_684_800_000
#: ... and not more than a day in the future.
_FUTURE_SLACK_MS = 86_400_000


class OccContract(Protocol):
    """What an OCC option symbol says about its contract."""

    underlying: str
    put_call: str
    strike: float
    expiration: str  # ISO date


def check_ts(ts: Any, now_ms: int) -> bool:
    """Whether ``ts`` is epoch milliseconds after 2000 and at most a day after ``now_ms``."""
    return type(ts) is int and _MIN_TS <= ts <= now_ms + _FUTURE_SLACK_MS


def check_equity(key: str, st: list[Any], ts: int, now_ms: int) -> str:
    """Check an equity's first complete state ``[last, bid, ask, volume, ...]``."""
    if not check_ts(ts, now_ms):
        return f"{key}: event time {ts} is not epoch milliseconds"
    for name, v in (("last", st[0]), ("bid", st[1]), ("ask", st[2])):
        if not math.isfinite(v) or v < 0:
            return f"{key}: {name} {v!r} is not a price"
    if st[3] < 0:
        return f"{key}: volume {st[3]} is negative"
    if st[1] > 0 and st[2] > 0 and not (st[1] / 3 <= st[0] <= st[2] * 3):
        return f"{key}: last {st[0]} far outside bid {st[1]} / ask {st[2]}"
    return ""


def check_option_static(key: str, s: OccContract, item: dict[str, Any]) -> str:
    """Check the contract fields an option update carries against its OCC symbol."""
    strike: Any = item.get(F.OPT_STRIKE)
    # Field 20 is the strike price (Schwab's documentation and market-sim; schwab-py
    # labels it STRIKE_TYPE). A non-numeric value cannot be compared and is let through.
    if type(strike) in _NUM and abs(strike - s.strike) > 1e-6:
        return f"{key}: strike field {F.OPT_STRIKE} is {strike!r}, OCC symbol says {s.strike}"
    ctype = item.get(F.OPT_CONTRACT_TYPE)
    if ctype is not None and ctype != s.put_call:
        return f"{key}: contract type field is {ctype!r}, OCC symbol says {s.put_call}"
    und = item.get(F.OPT_UNDERLYING)
    if und is not None and und != s.underlying:
        return f"{key}: underlying field is {und!r}, OCC symbol says {s.underlying}"
    y, m, d = item.get(F.OPT_EXP_YEAR), item.get(F.OPT_EXP_MONTH), item.get(F.OPT_EXP_DAY)
    if y is not None and m is not None and d is not None:
        got = f"{y:04d}-{m:02d}-{d:02d}" if all(type(v) is int for v in (y, m, d)) else None
        if got != s.expiration:
            return f"{key}: expiration fields {y}/{m}/{d}, OCC symbol says {s.expiration}"
    return ""


def check_option(key: str, s: OccContract, st: list[Any], ts: int, now_ms: int) -> str:
    """Check an option's first complete state ``[last, bid, ask, ..., delta, ...]``."""
    if not check_ts(ts, now_ms):
        return f"{key}: event time {ts} is not epoch milliseconds"
    for name, v in (("bid", st[1]), ("ask", st[2])):
        if not math.isfinite(v) or v < 0:
            return f"{key}: {name} {v!r} is not a price"
    if not math.isnan(st[0]) and (not math.isfinite(st[0]) or st[0] < 0):
        return f"{key}: last {st[0]!r} is not a price"
    delta = st[7]
    if not math.isnan(delta):
        if s.put_call == "C" and not (-1e-9 <= delta <= 1 + 1e-9):
            return f"{key}: call delta {delta} outside [0, 1]"
        if s.put_call == "P" and not (-1 - 1e-9 <= delta <= 1e-9):
            return f"{key}: put delta {delta} outside [-1, 0]"
    return ""
