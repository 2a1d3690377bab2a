"""What the simulator actually sent, per service and symbol (for acceptance tests)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any


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
    """

    def __init__(self, maxlen: int, total: int = 100_000) -> None:
        self.maxlen = maxlen
        self.total = total  # entries remembered over all symbols (memory bound)
        self.stored = 0
        self.logs: dict[tuple[str, str], SymbolLog] = {}

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
        return out

    def entries(self, service: str, symbol: str, since: int = 0) -> dict[str, Any]:
        """Entries of one symbol with ``seq > since`` (as many as are still remembered)."""
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
