"""Partial level-one updates -> complete, normalized tick rows.

Schwab's level-one messages carry only the fields that changed. :class:`Decoder` keeps the last
value of every field we use per symbol and, for each content item that changes one of them,
emits a complete row: the tuple of :class:`~streamdesk.models.EquityTick` /
:class:`~streamdesk.models.OptionTick` fields in declaration order (what
:func:`streamdesk.codec.encode_rows` takes), without building dataclass instances on the hot
path.

Rules (documented in docs/streamer.md):

- ``ts`` is the event time: the later of Schwab's quote time and trade time fields; while a
  symbol has neither (a snapshot before its first trade), the data message's timestamp.
- Every content item that carries at least one of the fields we use (prices, volume, sizes,
  greeks, quote/trade time) is one tick; items with none of them are counted ``unchanged``.
- A symbol emits nothing until it has bid, ask, cumulative volume, a time and (equities) a
  last price; such updates are counted as ``incomplete``. Volume is never fabricated. An
  option that has not traded yet has ``last`` NaN (Schwab sends no last price for it);
  greeks, IV and underlying price are NaN and open interest 0 until first received.
- A value of the wrong type makes the whole content item ``malformed`` (counted, skipped,
  state unchanged).
- Self-check: the first complete update of every symbol is checked against invariants (epoch
  milliseconds in a sane range, positive finite prices; for options: strike, call/put and
  expiration fields equal those in the OCC symbol, delta sign matches call/put). A violation
  means the field map is wrong: that service is refused (no more rows) and the reason kept.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from streamdesk.models import parse_occ

from . import fields as F
from .wire import EquityItem

log = logging.getLogger(__name__)

_NUM = frozenset({int, float})
_NAN = float("nan")
_I64 = 2**63
#: Event times must be epoch milliseconds after 2000-01-01 ...
_MIN_TS = 946_684_800_000
#: ... and not more than a day in the future.
_FUTURE_SLACK_MS = 86_400_000

Row = tuple[Any, ...]


@dataclass
class DecodeCounters:
    """Counters of the decoder (read by the heartbeat)."""

    items: int = 0
    ticks: int = 0
    malformed: int = 0
    incomplete: int = 0
    unchanged: int = 0
    unknown_symbol: int = 0
    refused: int = 0
    samples: dict[str, str] = field(default_factory=dict)


class _OptStatic:
    __slots__ = ("expiration", "put_call", "strike", "underlying")

    def __init__(self, underlying: str, put_call: str, strike: float, expiration: str) -> None:
        self.underlying = underlying
        self.put_call = put_call
        self.strike = strike
        self.expiration = expiration


class Decoder:
    """Per-symbol last-value state for LEVELONE_EQUITIES and LEVELONE_OPTIONS."""

    def __init__(
        self,
        *,
        known_symbols: Callable[[str], bool] | None = None,
        now_ms: Callable[[], int] | None = None,
    ) -> None:
        # equity state: [last, bid, ask, volume, last_size, quote_ts, trade_ts, checked]
        self._eq: dict[str, list[Any]] = {}
        # option state: [last, bid, ask, volume, last_size, quote_ts, trade_ts, delta, gamma,
        #                theta, vega, rho, iv, open_interest, underlying_price, checked]
        self._opt: dict[str, list[Any]] = {}
        self._opt_static: dict[str, _OptStatic] = {}
        self._known = known_symbols
        self._now_ms = now_ms or (lambda: int(time.time() * 1000))
        self.counters = DecodeCounters()
        #: service name -> reason, once a self-check failed for it.
        self.refused: dict[str, str] = {}

    # ------------------------------------------------------------------ helpers
    def _malformed(self, service: str, item: Any, why: str) -> None:
        c = self.counters
        c.malformed += 1
        if c.malformed <= 20 or c.malformed % 10_000 == 0:
            log.warning(
                "malformed %s item (%s): %.200r (total %d)", service, why, item, c.malformed
            )

    def _refuse(self, service: str, reason: str) -> None:
        if service not in self.refused:
            self.refused[service] = reason
            log.error(
                "self-check failed for %s: %s; refusing to publish its data (field map wrong?)",
                service,
                reason,
            )

    def _check_ts(self, ts: Any) -> bool:
        return type(ts) is int and _MIN_TS <= ts <= self._now_ms() + _FUTURE_SLACK_MS

    def forget(self, symbol: str) -> None:
        """Drop the state of ``symbol`` (after it was unsubscribed)."""
        self._eq.pop(symbol, None)
        self._opt.pop(symbol, None)
        self._opt_static.pop(symbol, None)

    def reset(self) -> None:
        """Forget every symbol's state (a new session sends full snapshots again)."""
        self._eq.clear()
        self._opt.clear()
        self._opt_static.clear()

    # ------------------------------------------------------------------ equities
    def equities(self, content: Any, out: list[Row], msg_ts: Any = 0) -> None:
        """Decode a LEVELONE_EQUITIES ``content`` list; append complete rows to ``out``.

        ``msg_ts`` is the data message's own timestamp, the event time of a symbol that has
        no quote or trade time yet (e.g. a snapshot before the first trade of the session).
        This is the per-item path: each item is checked on its own, and a malformed one is
        counted and skipped. Frames that validate as a whole take :meth:`equity_items`.
        """
        if type(content) is not list:
            self._malformed(F.LEVELONE_EQUITIES, content, "content is not a list")
            return
        items: list[EquityItem] = []
        for item in content:
            parsed = self._equity_item(item)
            if parsed is not None:
                items.append(parsed)
        self.counters.items += len(content) - len(items)  # the malformed ones
        self.equity_items(items, out, msg_ts)

    def _equity_item(self, item: Any) -> EquityItem | None:
        """``item`` as an :class:`EquityItem`, or ``None`` (counted as malformed).

        The same type rules as the fast path (``wire.EQUITY_CONTENT``), applied to one item.
        """
        try:
            return msgspec.convert(item, EquityItem)
        except msgspec.ValidationError as exc:
            self._malformed(F.LEVELONE_EQUITIES, item, str(exc))
            return None

    def equity_items(self, items: list[EquityItem], out: list[Row], msg_ts: Any = 0) -> None:
        """Apply well-typed LEVELONE_EQUITIES items; append complete rows to ``out``."""
        c = self.counters
        c.items += len(items)
        emitted = len(out)
        try:
            self._equity_items(items, out, msg_ts)
        finally:
            c.ticks += len(out) - emitted

    def _equity_items(self, items: list[EquityItem], out: list[Row], msg_ts: Any) -> None:
        c = self.counters
        refused = F.LEVELONE_EQUITIES in self.refused
        states = self._eq
        known = self._known
        for item in items:
            key = item.key
            st = states.get(key)
            if st is None:
                if known is not None and not known(key):
                    c.unknown_symbol += 1
                    if c.unknown_symbol <= 20:
                        log.warning("update for unsubscribed equity %r ignored", key)
                    continue
                st = states[key] = [None, None, None, None, 0, 0, 0, False]
            changed = False
            v = item.last
            if v is not None:
                st[0] = v
                changed = True
            v = item.bid
            if v is not None:
                st[1] = v
                changed = True
            v = item.ask
            if v is not None:
                st[2] = v
                changed = True
            v = item.volume
            if v is not None:
                st[3] = int(v)
                changed = True
            v = item.last_size
            if v is not None:
                st[4] = int(v)
                changed = True
            v = item.quote_time
            if v is not None:
                st[5] = v
                changed = True
            v = item.trade_time
            if v is not None:
                st[6] = v
                changed = True
            if not changed:
                c.unchanged += 1
                continue
            if st[0] is None or st[1] is None or st[2] is None or st[3] is None:
                c.incomplete += 1
                continue
            ts = st[5] if st[5] >= st[6] else st[6]
            if ts == 0:
                if type(msg_ts) is not int or msg_ts <= 0:
                    c.incomplete += 1
                    continue
                ts = msg_ts
            if not st[7]:
                reason = self._check_equity(key, st, ts)
                if reason:
                    self._refuse(F.LEVELONE_EQUITIES, reason)
                    refused = True
                st[7] = True
            if refused:
                c.refused += 1
                continue
            out.append((key, ts, st[0], st[1], st[2], st[3], st[4]))

    def _check_equity(self, key: str, st: list[Any], ts: int) -> str:
        if not self._check_ts(ts):
            return f"{key}: event time {ts} is not epoch milliseconds"
        for name, v in (("last", st[0]), ("bid", st[1]), ("ask", st[2])):
            if not math.isfinite(v) or v < 0:
                return f"{key}: {name} {v!r} is not a price"
        if st[3] < 0:
            return f"{key}: volume {st[3]} is negative"
        if st[1] > 0 and st[2] > 0 and not (st[1] / 3 <= st[0] <= st[2] * 3):
            return f"{key}: last {st[0]} far outside bid {st[1]} / ask {st[2]}"
        return ""

    # ------------------------------------------------------------------ options
    def _static(self, key: str) -> _OptStatic | None:
        s = self._opt_static.get(key)
        if s is None:
            try:
                occ = parse_occ(key)
            except ValueError:
                return None
            s = _OptStatic(occ.root, occ.put_call, float(occ.strike), occ.expiration.isoformat())
            self._opt_static[key] = s
        return s

    def options(self, content: Any, out: list[Row], msg_ts: Any = 0) -> None:
        """Decode a LEVELONE_OPTIONS ``content`` list; append complete rows to ``out``."""
        c = self.counters
        service = F.LEVELONE_OPTIONS
        if type(content) is not list:
            self._malformed(service, content, "content is not a list")
            return
        c.items += len(content)
        emitted = len(out)
        try:
            self._options(content, out, msg_ts)
        finally:
            c.ticks += len(out) - emitted

    def _options(self, content: list[Any], out: list[Row], msg_ts: Any) -> None:
        c = self.counters
        service = F.LEVELONE_OPTIONS
        refused = service in self.refused
        states = self._opt
        known = self._known
        num = _NUM
        for item in content:
            if type(item) is not dict:
                self._malformed(service, item, "item is not an object")
                continue
            key = item.get("key")
            if type(key) is not str:
                self._malformed(service, item, "no key")
                continue
            static = self._static(key)
            if static is None:
                self._malformed(service, item, "key is not an OCC option symbol")
                continue
            vals = (
                item.get(F.OPT_LAST),
                item.get(F.OPT_BID),
                item.get(F.OPT_ASK),
                item.get(F.OPT_VOLUME),
                item.get(F.OPT_LAST_SIZE),
                item.get(F.OPT_QUOTE_TIME),
                item.get(F.OPT_TRADE_TIME),
                item.get(F.OPT_DELTA),
                item.get(F.OPT_GAMMA),
                item.get(F.OPT_THETA),
                item.get(F.OPT_VEGA),
                item.get(F.OPT_RHO),
                item.get(F.OPT_VOLATILITY),
                item.get(F.OPT_OPEN_INTEREST),
                item.get(F.OPT_UNDERLYING_PRICE),
            )
            bad = False
            for v in vals:
                # numbers only, and within int64 (volumes, sizes and times become integers)
                if v is not None and (type(v) not in num or not -_I64 <= v < _I64):
                    bad = True
                    break
            if (
                bad
                or (vals[5] is not None and type(vals[5]) is not int)
                or (vals[6] is not None and type(vals[6]) is not int)
            ):
                self._malformed(service, item, "field of the wrong type")
                continue
            # Invariants against the OCC symbol, whenever these fields are present.
            reason = self._check_option_static(key, static, item)
            if reason:
                self._refuse(service, reason)
                refused = True
            st = states.get(key)
            if st is None:
                if known is not None and not known(key):
                    c.unknown_symbol += 1
                    if c.unknown_symbol <= 20:
                        log.warning("update for unsubscribed option %r ignored", key)
                    continue
                st = states[key] = [
                    _NAN, None, None, None, 0, 0, 0,
                    _NAN, _NAN, _NAN, _NAN, _NAN, _NAN, 0, _NAN, False,
                ]  # fmt: skip
            changed = False
            for i, v in enumerate(vals):
                if v is not None:
                    st[i] = v
                    changed = True
            if not changed:
                c.unchanged += 1
                continue
            if st[1] is None or st[2] is None or st[3] is None:
                c.incomplete += 1
                continue
            ts = st[5] if st[5] >= st[6] else st[6]
            if ts == 0:
                if type(msg_ts) is not int or msg_ts <= 0:
                    c.incomplete += 1
                    continue
                ts = msg_ts
            if not st[15]:
                reason = self._check_option(key, static, st, ts)
                if reason:
                    self._refuse(service, reason)
                    refused = True
                st[15] = True
            if refused:
                c.refused += 1
                continue
            out.append(
                (
                    key, ts, st[0], st[1], st[2], int(st[3]), int(st[4]),
                    static.underlying, static.put_call, static.strike, static.expiration,
                    st[7], st[8], st[9], st[10], st[11], st[12], int(st[13]), st[14],
                )
            )  # fmt: skip

    def _check_option_static(self, key: str, s: _OptStatic, item: dict[str, Any]) -> str:
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

    def _check_option(self, key: str, s: _OptStatic, st: list[Any], ts: int) -> str:
        if not self._check_ts(ts):
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

    # ------------------------------------------------------------------ queries
    def last_price(self, symbol: str) -> float | None:
        """The last trade price seen for an equity symbol (for the option universe)."""
        st = self._eq.get(symbol)
        return None if st is None else st[0]

    def has_state(self, symbol: str) -> bool:
        """Whether any update of ``symbol`` was received."""
        return symbol in self._eq or symbol in self._opt

    @property
    def symbols_with_state(self) -> int:
        """How many symbols currently have state."""
        return len(self._eq) + len(self._opt)
