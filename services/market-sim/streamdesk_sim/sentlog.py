"""What the simulator actually sent, per service and symbol (for acceptance tests)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

_EQUITIES = "LEVELONE_EQUITIES"


@dataclass
class SymbolLog:
    """Counters and the last ``maxlen`` entries sent for one (service, symbol)."""

    count: int = 0
    trades: int = 0
    entries: deque[tuple[int, int, dict[str, Any]]] = field(default_factory=deque)


class SentLog:
    """Records every content entry once it has been written to a websocket.

    ``seq`` numbers start at 1 per (service, symbol) and count every entry sent on any
    connection, in send order; the entry is the exact dict that was serialized (numeric keys).

    Load-mode symbols (pre-encoded frames, see ``loadgen``) are only counted: every load
    update is a trade, so their ``trades`` equals ``count``; no entries are remembered.
    """

    def __init__(self, maxlen: int, total: int = 100_000) -> None:
        self.maxlen = maxlen
        self.total = total  # entries remembered over all symbols (memory bound)
        self.stored = 0
        self.logs: dict[tuple[str, str], SymbolLog] = {}
        self._load_index: dict[str, int] = {}
        self._load_sent: np.ndarray[Any, Any] = np.zeros(0, dtype=np.int64)

    def attach_load(self, index: dict[str, int], sent: np.ndarray[Any, Any]) -> None:
        """Report load-mode symbols (``index``: symbol -> position) from the ``sent`` counts."""
        self._load_index = index
        self._load_sent = sent

    def record_load(self, indices: np.ndarray[Any, Any]) -> None:
        """Count one LEVELONE_EQUITIES update of each load symbol at ``indices`` (distinct)."""
        self._load_sent[indices] += 1

    def record(self, service: str, entries: list[dict[str, Any]], sent_ms: int) -> None:
        """Note ``entries`` (content dicts with a ``key``) as sent at ``sent_ms``."""
        for entry in entries:
            key = (service, entry["key"])
            log = self.logs.get(key)
            if log is None:
                log = self.logs[key] = SymbolLog(entries=deque(maxlen=self.maxlen))
            log.count += 1
            if "3" in entry and "9" in entry and service == "LEVELONE_EQUITIES":
                log.trades += 1
            if not self.maxlen:
                continue
            if len(log.entries) == self.maxlen:
                log.entries.append((log.count, sent_ms, entry))  # evicts the oldest
            elif self.stored < self.total:
                log.entries.append((log.count, sent_ms, entry))
                self.stored += 1
            # else: over the global budget, only counted (``complete`` turns False)

    def summary(self, service: str | None = None) -> dict[str, dict[str, dict[str, int]]]:
        """``{service: {symbol: {"count", "trades"}}}``."""
        out: dict[str, dict[str, dict[str, int]]] = {}
        for (svc, sym), log in self.logs.items():
            if service is None or svc == service:
                out.setdefault(svc, {})[sym] = {"count": log.count, "trades": log.trades}
        if self._load_index and service in (None, _EQUITIES):
            counts = self._load_sent.tolist()
            eq = out.setdefault(_EQUITIES, {})
            for sym, i in self._load_index.items():
                if counts[i]:
                    # Plus what went through the dict path (the snapshot on SUBS).
                    logged = eq.get(sym, {"count": 0, "trades": 0})
                    eq[sym] = {
                        "count": logged["count"] + counts[i],
                        "trades": logged["trades"] + counts[i],
                    }
            if not eq:
                del out[_EQUITIES]
        return out

    def entries(self, service: str, symbol: str, since: int = 0) -> dict[str, Any]:
        """Entries of one symbol with ``seq > since`` (as many as are still remembered)."""
        i = self._load_index.get(symbol) if service == _EQUITIES else None
        if i is not None:
            # Load updates are counted, not remembered: only the counters are reported.
            logged = self.logs.get((service, symbol))
            load = int(self._load_sent[i])
            count = load + (logged.count if logged else 0)
            return {
                "service": service,
                "symbol": symbol,
                "count": count,
                "trades": load + (logged.trades if logged else 0),
                "complete": count <= since,
                "updates": [],
            }
        log = self.logs.get((service, symbol))
        if log is None:
            return {"service": service, "symbol": symbol, "count": 0, "trades": 0, "updates": []}
        updates = [
            {"seq": seq, "sent_ms": ms, "fields": entry}
            for seq, ms, entry in log.entries
            if seq > since
        ]
        first = log.entries[0][0] if log.entries else log.count + 1
        last = log.entries[-1][0] if log.entries else since
        return {
            "service": service,
            "symbol": symbol,
            "count": log.count,
            "trades": log.trades,
            "complete": first <= since + 1 and last == log.count,
            "updates": updates,
        }

    def reset(self) -> None:
        """Forget everything."""
        self.logs.clear()
        self.stored = 0
        self._load_sent[:] = 0
