"""Seeds: how every random path derives from ``SIM_SEED`` (the simulator's determinism).

Every symbol owns a ``numpy`` generator seeded from ``(seed, symbol)`` and draws a fixed number
of variates per step, so step ``k`` of a symbol depends only on the seed, the symbol and ``k``
(never on wall time, subscriptions or other symbols).
"""

from __future__ import annotations

import hashlib


def symbol_seed(seed: int, symbol: str) -> list[int]:
    """Seed material of one symbol's generator."""
    digest = hashlib.sha256(symbol.encode()).digest()
    return [seed & 0xFFFFFFFF, int.from_bytes(digest[:8], "little")]
