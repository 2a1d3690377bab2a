"""The pipeline a user would otherwise write (issue 16, item 2), as its own process.

schwab-py's ``StreamClient`` subscribed to the same load symbols and fields as the streamer,
with a level-one handler that INSERTs every tick into PostgreSQL (asyncpg, autocommit: one
statement, one transaction, one COMMIT per tick) and awaits it, the way schwab-py's examples
write handlers. ``baseline_ticks.inserted_at`` defaults to ``clock_timestamp()``, so the
benchmark reads throughput and tick -> commit latency from the table itself.

    python bench/pipeline/baseline.py SIM_URL TOKEN_PATH DSN SYMBOLS
"""

from __future__ import annotations

import asyncio
import signal
import sys
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from streamdesk.config import CommonSettings
from streamdesk.schwab import ensure_paper_token, make_client, make_stream_client
from streamdesk_streamer import fields as F

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from schwab.streaming import StreamClient  # noqa: F401 - the client make_stream_client builds

INSERT = (
    "INSERT INTO baseline_ticks (ticker, ts, price, bid, ask, volume) "
    "VALUES ($1, $2, $3, $4, $5, $6)"
)


async def run(sim_url: str, token: Path, dsn: str, symbols: list[str]) -> None:
    settings = CommonSettings(schwab_base_url=sim_url, schwab_token_path=token)
    ensure_paper_token(settings)
    client = make_client(settings, asyncio=True)
    stream = make_stream_client(client)
    conn = await asyncpg.connect(dsn)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)

    async def on_equity(msg: dict[str, Any]) -> None:
        for item in msg["content"]:
            ms = item.get("TRADE_TIME_MILLIS") or item.get("QUOTE_TIME_MILLIS")
            if ms is None:
                continue
            await conn.execute(
                INSERT,
                item["key"],
                datetime.fromtimestamp(ms / 1000, UTC),
                item.get("LAST_PRICE"),
                item.get("BID_PRICE"),
                item.get("ASK_PRICE"),
                item.get("TOTAL_VOLUME"),
            )

    await stream.login()
    stream.add_level_one_equity_handler(on_equity)
    fields = F.equity_fields()
    for i in range(0, len(symbols), 300):
        chunk = symbols[i : i + 300]
        if i == 0:
            await stream.level_one_equity_subs(chunk, fields=fields)
        else:
            await stream.level_one_equity_add(chunk, fields=fields)
    print("baseline: streaming", flush=True)
    stopped = asyncio.ensure_future(stop.wait())
    while True:
        step = asyncio.ensure_future(stream.handle_message())
        done, _ = await asyncio.wait({step, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if step not in done:
            step.cancel()
            break
        step.result()
    await conn.close()
    await client.close_async_session()


def main() -> int:
    sim_url, token, dsn, n = sys.argv[1:5]
    symbols = [f"LD{i:05d}" for i in range(int(n))]
    asyncio.run(run(sim_url, Path(token), dsn, symbols))
    return 0


if __name__ == "__main__":
    sys.exit(main())
