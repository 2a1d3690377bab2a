"""The broadcast payload: committed messages merged between broadcasts, shaped by the level.

The publisher feeds every committed message it takes (``streamdesk.messages.CommittedMessage``,
format ``v`` 1, decoded with the shared schema) into a :class:`Shaper`. At degrade level 0
each one goes out alone; at higher levels the messages of the flushes in between are merged
(latest row per ticker / contract, ``rows`` summed, ``from_ts``/``to_ts`` widened) and option
rows are held until their turn. The payload
is the committed message's format plus:

- ``degrade``: the level it was shaped at (0 = everything);
- ``flushes``: how many writer flushes it covers (a gap in ``seq`` larger than that means
  messages were conflated away while Supabase was slow: fetch ``from_ts``.. from REST);
- ``options_included``: false when option rows were held back at this level (an empty
  ``options`` then means "not this time", not "no change").

Memory is bounded by the universe: one row per ticker and per contract (capped at
``max_options``, as the committed message is).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from streamdesk.messages import CommittedMessage, encode_json
from streamdesk.realtime_budget import GREEK_FIELDS, Level


class Shaper:
    """Accumulates committed messages; :meth:`take` builds the next payload."""

    def __init__(self, max_options: int) -> None:
        self.max_options = max_options
        self._equity: dict[str, Mapping[str, Any]] = {}
        self._options: dict[str, Mapping[str, Any]] = {}
        self._rows = {"equity": 0, "options": 0, "bars": 0}
        self._from: int | None = None
        self._to: int | None = None
        self._truncated = False
        self._seq = 0
        self._committed_at = 0
        self._flushes = 0  # flushes merged since the last broadcast
        self._since_options = 0  # flushes since option rows last went out
        self._options_owed = False  # restored option rows: send with the next payload
        self.pending = False

    def add(self, msg: CommittedMessage) -> None:
        """Merge one committed message (a decoded ``v`` 1 message)."""
        seq = int(msg.get("seq", 0))
        # seq restarts at 1 with the process; conflated messages leave gaps that still count
        step = seq - self._seq if 0 < self._seq < seq else 1
        self._seq = seq
        self._committed_at = int(msg.get("committed_at", 0))
        self._flushes += step
        self._since_options += step
        rows: Mapping[str, Any] = msg.get("rows") or {}
        for kind in self._rows:
            self._rows[kind] += int(rows.get(kind, 0))
        self._from = _min(self._from, msg.get("from_ts"))
        self._to = _max(self._to, msg.get("to_ts"))
        self._truncated |= bool(msg.get("options_truncated"))
        _merge(self._equity, msg.get("equity") or [], None)
        if _merge(self._options, msg.get("options") or [], self.max_options):
            self._truncated = True
        self.pending = True

    def due(self, level: Level) -> bool:
        """A broadcast is due at ``level`` (enough flushes merged since the last one)."""
        return self.pending and not level.paused and self._flushes >= level.every

    def take(self, level: Level, *, options: bool | None = None) -> dict[str, Any]:
        """The payload at ``level``; resets what it carries (options only if included).

        ``options`` forces the option rows in or out (default: the level's cadence).
        """
        include = (
            options
            if options is not None
            else level.options_every > 0
            and (self._options_owed or self._since_options >= level.options_every)
        )
        held: list[Mapping[str, Any]] = []
        if include:
            held = list(self._options.values())
            if not level.greeks:
                held = [{k: v for k, v in o.items() if k not in GREEK_FIELDS} for o in held]
        payload = {
            "v": 1,
            "seq": self._seq,
            "committed_at": self._committed_at,
            "rows": dict(self._rows),
            "from_ts": self._from,
            "to_ts": self._to,
            "equity": list(self._equity.values()),
            "options": held,
            "options_truncated": self._truncated and include,
            "degrade": level.number,
            "flushes": self._flushes,
            "options_included": include,
        }
        self._equity = {}
        self._rows = {"equity": 0, "options": 0, "bars": 0}
        self._from = self._to = None
        self._flushes = 0
        if include:
            self._options = {}
            self._truncated = False
            self._since_options = 0
            self._options_owed = False
        self.pending = False
        return payload

    def restore(self, payload: dict[str, Any]) -> None:
        """Put back a payload that was not delivered, under anything merged since."""
        _merge(self._equity, payload.get("equity") or [], None, keep_newer=True)
        if payload.get("options_included"):
            _merge(self._options, payload.get("options") or [], self.max_options, keep_newer=True)
            self._options_owed = True
            self._truncated |= bool(payload.get("options_truncated"))
        for kind, n in (payload.get("rows") or {}).items():
            if kind in self._rows:
                self._rows[kind] += int(n)
        self._from = _min(self._from, payload.get("from_ts"))
        self._to = _max(self._to, payload.get("to_ts"))
        self._flushes += int(payload.get("flushes", 1))
        self.pending = True


def encode(payload: Mapping[str, Any]) -> bytes:
    """Compact JSON, encoded as the committed message is (``streamdesk.messages``)."""
    return encode_json(payload)


def fit(payload: dict[str, Any], limit: int) -> tuple[bytes, int]:
    """Encode ``payload`` within ``limit`` bytes: trim option rows first, then equity rows.

    Returns the bytes and how many rows were trimmed (``options_truncated`` /
    ``equity_truncated`` are set on the payload when rows were cut). Raises ValueError if
    even an empty payload is over ``limit``.
    """
    data = encode(payload)
    trimmed = 0
    for key, flag in (("options", "options_truncated"), ("equity", "equity_truncated")):
        rows = payload[key]
        while len(data) > limit and rows:
            # rows are of similar size: cut proportionally, a little more than needed
            share = (len(data) - limit) / len(data)
            cut = max(1, min(len(rows), int(len(rows) * share * 1.05) + 1))
            del rows[len(rows) - cut :]
            trimmed += cut
            payload[flag] = True
            data = encode(payload)
    if len(data) > limit:
        raise ValueError(f"an empty payload is {len(data)} bytes, over the {limit} limit")
    return data, trimmed


def _merge(
    into: dict[str, Mapping[str, Any]],
    rows: Sequence[Mapping[str, Any]],
    cap: int | None,
    *,
    keep_newer: bool = False,
) -> bool:
    """Latest row per ``ticker`` (by ``ts``); True if rows were dropped by ``cap``."""
    dropped = False
    for row in rows:
        key = row.get("ticker")
        if not isinstance(key, str):
            continue
        prev = into.get(key)
        if prev is None:
            if cap is not None and len(into) >= cap:
                dropped = True
                continue
            into[key] = row
        elif (row.get("ts") or 0) >= (prev.get("ts") or 0) and not (
            keep_newer and (prev.get("ts") or 0) >= (row.get("ts") or 0)
        ):
            into[key] = row
    return dropped


def _min(a: int | None, b: Any) -> int | None:
    if b is None:
        return a
    return int(b) if a is None else min(a, int(b))


def _max(a: int | None, b: Any) -> int | None:
    if b is None:
        return a
    return int(b) if a is None else max(a, int(b))
