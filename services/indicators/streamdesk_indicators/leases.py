"""Partition ownership: one Redis lease per tick-stream partition.

``sd:indicators:lease:{p}`` holds the owner's ``INSTANCE_ID`` with a TTL of ``LEASE_TTL``,
renewed every TTL/3 by a compare-and-expire script, so a restarted instance with the same id
re-takes its leases at once and a dead one's expire. An owner that sees a free partition (an
instance left) ends its session so that the partitions are re-balanced.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection

import redis.asyncio as aioredis

from streamdesk import constants
from streamdesk.errors import REDIS_ERRORS

log = logging.getLogger(__name__)

_RENEW_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Restart(Exception):
    """Leave the current session and rebuild from the checkpoints (lease lost, rebalance)."""


class Leases:
    """Takes, renews and releases the partition leases of one instance (``owner``)."""

    def __init__(
        self,
        redis: aioredis.Redis,
        owner: str,
        *,
        partitions: int,
        ttl: float,
        max_partitions: int = 0,
    ) -> None:
        self.redis = redis
        self.owner = owner
        self.partitions = partitions
        self.ttl = ttl
        self.max_partitions = max_partitions
        self._ttl_ms = int(ttl * 1000)
        self._renew = redis.register_script(_RENEW_LUA)
        self._release = redis.register_script(_RELEASE_LUA)

    async def _try(self, partition: int) -> bool:
        key = constants.indicators_lease_key(partition)
        if await self.redis.set(key, self.owner, nx=True, px=self._ttl_ms):
            return True
        return bool(await self._renew(keys=[key], args=[self.owner, self._ttl_ms]))

    async def acquire(self) -> list[int]:
        """Take every partition that is free or already ours, up to ``max_partitions``."""
        owned: list[int] = []
        for p in range(self.partitions):
            if self.max_partitions and len(owned) >= self.max_partitions:
                break
            if await self._try(p):
                owned.append(p)
        return owned

    async def keep(self, owned: Callable[[], Collection[int]], done: Callable[[], bool]) -> bool:
        """Renew the ``owned()`` leases every TTL/3 until ``done()``.

        Raises :class:`Restart` if one was lost; returns True as soon as a partition nobody
        holds is seen (time to re-balance), False when ``done()``.
        """
        while not done():
            await asyncio.sleep(self.ttl / 3)
            mine = owned()
            for p in mine:
                key = constants.indicators_lease_key(p)
                ok = await asyncio.wait_for(
                    self._renew(keys=[key], args=[self.owner, self._ttl_ms]), timeout=5.0
                )
                if not ok:
                    raise Restart(f"lease of partition {p} lost")
            if not self.max_partitions or len(mine) < self.max_partitions:
                for p in range(self.partitions):
                    if p in mine:
                        continue
                    if await self.redis.exists(constants.indicators_lease_key(p)) == 0:
                        log.info("partition %d is free: rebalancing", p)
                        return True
        return False

    async def release(self, partitions: Collection[int]) -> None:
        """Give the leases back (best effort, 2 s each): the next owner need not wait."""
        for p in partitions:
            key = constants.indicators_lease_key(p)
            try:
                await asyncio.wait_for(self._release(keys=[key], args=[self.owner]), 2.0)
            except REDIS_ERRORS as exc:  # best effort: never fail a stop
                log.warning("could not release lease of partition %d: %s", p, exc)
