"""``streamer``: Schwab level-one quotes into Redis Streams."""

from __future__ import annotations

import asyncio
import logging
import sys

from streamdesk.config import ConfigError, load_settings
from streamdesk.heartbeat import Heartbeat
from streamdesk.log import setup_logging
from streamdesk.redisutil import create_redis
from streamdesk.shutdown import GracefulShutdown

from .config import SERVICE_NAME, Settings
from .fields import FieldMapError
from .streamer import Streamer

log = logging.getLogger(__name__)


async def run(settings: Settings) -> int:
    """Run the streamer until SIGTERM/SIGINT; return the exit code."""
    shutdown = GracefulShutdown(settings.shutdown_timeout)
    shutdown.install()
    redis = create_redis(settings.redis_url)
    streamer = Streamer(settings, redis, shutdown=shutdown)
    heartbeat = Heartbeat(
        redis,
        SERVICE_NAME,
        interval=settings.heartbeat_interval,
        ttl=settings.heartbeat_ttl,
        counters=streamer.counters,
    )

    def status() -> None:
        refused = streamer.decoder.refused
        if refused:
            reasons = "; ".join(f"{k} refused: {v}" for k, v in refused.items())
            heartbeat.set_status("degraded", f"self-check: {reasons}"[:200])
        elif streamer.state.name in {"streaming", "subscribed"}:
            heartbeat.set_status("ok")
        else:
            state = streamer.state
            heartbeat.set_status("degraded", f"{state.name}: {state.reason}"[:200])

    streamer.state.on_change = status
    original_counters = streamer.counters

    def counters() -> dict[str, object]:
        status()
        return original_counters()

    heartbeat.counters = counters
    hb_task = heartbeat.start()
    try:
        return await streamer.run()
    except FieldMapError as exc:
        log.critical("refusing to start: %s", exc)
        return 3
    finally:
        await heartbeat.stop()
        await asyncio.gather(hb_task, return_exceptions=True)
        try:
            await asyncio.wait_for(redis.aclose(), 2.0)
        except Exception as exc:
            log.debug("redis close: %s", exc)


def main() -> int:
    """Entry point of the ``streamer`` console script."""
    try:
        settings = load_settings(Settings)
    except ConfigError as exc:
        print(f"streamer: {exc}", file=sys.stderr)
        return 2
    setup_logging(SERVICE_NAME, settings.log_level, settings.log_format)
    return asyncio.run(run(settings))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
