"""The gateway's /ws fan-out forwards a real committed message byte for byte, and what its
clients receive decodes with the shared schema (``streamdesk.messages``)."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from streamdesk.constants import COMMITTED_CHANNEL
from streamdesk.messages import COMMITTED_VERSION, decode_committed
from streamdesk_gateway.live import Fanout
from streamdesk_indicators.reference_universe import reference_message

pytestmark = pytest.mark.integration


async def test_a_real_committed_message_is_forwarded_untouched_and_decodes(
    redis_url: str,
) -> None:
    raw = reference_message()  # built by the writer's own code: 5 tickers, 200 contracts
    r = aioredis.Redis.from_url(redis_url)
    fanout = Fanout(r, bound=4)
    client = fanout.add()
    task = asyncio.create_task(fanout.run())
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10.0
        while await r.publish(COMMITTED_CHANNEL, raw) == 0:  # until subscribed
            assert loop.time() < deadline, "fan-out never subscribed"
            await asyncio.sleep(0.05)
        text = await asyncio.wait_for(client.queue.get(), 5.0)
    finally:
        fanout.stop()
        await asyncio.wait_for(task, 5.0)
        await r.aclose()
    assert text.encode() == raw  # no re-encoding on the hot path
    msg = decode_committed(text)
    assert msg["v"] == COMMITTED_VERSION
    assert len(msg["equity"]) == 5 and len(msg["options"]) == 200
    assert msg["rows"]["options"] == 200 and msg["options_truncated"] is False
