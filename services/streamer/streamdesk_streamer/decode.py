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
- Self-check (:mod:`.selfcheck`): the first complete update of every symbol is checked
  against invariants (epoch milliseconds in a sane range, positive finite prices; for options:
  strike, call/put and expiration fields equal those in the OCC symbol, delta sign matches
  call/put). A violation means the field map is wrong: that service is refused (no more rows)
  and the reason kept.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from streamdesk.models import parse_occ

from . import fields as F
from .selfcheck import check_equity, check_option, check_option_static
from .wire import EquityItem

log = logging.getLogger(__name__)

_NUM = frozenset({int, float})
_NAN = float("nan")
_I64 = 2**63

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

    def forget(self, symbol: str) -> None:
        """Drop the state of ``symbol`` (after it was unsubscribed)."""
        self._eq.pop(symbol, None)
        self._opt.pop(symbol, None)
        self._opt_static.pop(symbol, None)

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
                reason = check_equity(key, st, ts, self._now_ms())
                if reason:
                    self._refuse(F.LEVELONE_EQUITIES, reason)
                    refused = True
                st[7] = True
            if refused:
                c.refused += 1
                continue
            out.append((key, ts, st[0], st[1], st[2], st[3], st[4]))

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
            reason = check_option_static(key, static, item)
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
                reason = check_option(key, static, st, ts, self._now_ms())
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
