"""Every Redis key and stream name StreamDesk uses, in one place.

Keys are namespaced with ``sd:``. Streams are partitioned by symbol (see
:func:`partition_for`) so that several consumers can share the work while each symbol
stays ordered within one stream.
"""

from __future__ import annotations

import zlib

PREFIX = "sd"

#: Raw tick streams: ``sd:ticks:{partition}``; each entry carries a batch of ticks
#: encoded with :mod:`streamdesk.codec` in the field :data:`TICK_FIELD`.
TICK_STREAM_FMT = PREFIX + ":ticks:{partition}"
TICK_FIELD = b"d"
#: Consumer group of the indicators service on the tick streams.
INDICATORS_GROUP = "indicators"

#: Committed updates, one message per writer flush, for live fan-out (gateway websocket,
#: Supabase Realtime broadcast). A stream, bounded by MAXLEN, plus a pub/sub channel.
COMMITTED_STREAM = PREFIX + ":committed"
COMMITTED_CHANNEL = PREFIX + ":committed:live"

#: Heartbeats: ``sd:hb:{service}:{instance}`` JSON with a TTL (see heartbeat.py).
HEARTBEAT_FMT = PREFIX + ":hb:{service}:{instance}"
HEARTBEAT_PATTERN = PREFIX + ":hb:*"

#: Latest quote per symbol (hash: last, bid, ask, ts), written by the streamer and read by
#: risk checks for the price collar and quote freshness.
LAST_QUOTE_FMT = PREFIX + ":quote:{symbol}"

#: Streamer connection state (JSON: state, since, symbols, gap_open).
STREAMER_STATE_KEY = PREFIX + ":streamer:state"

#: Executor: NOTIFY channel on the ``trades`` table (Postgres, not Redis) and last
#: reconciliation summary (Redis JSON).
TRADES_NOTIFY_CHANNEL = "streamdesk_trades"
EXECUTOR_RECONCILE_KEY = PREFIX + ":executor:reconcile"

#: Control plane (streamdesk.control): published with the new version after every change of
#: the kill switch, the universe or a pause flag; services re-read Postgres on a message (and
#: poll as a fallback).
CONTROL_CHANNEL = PREFIX + ":control:changed"
#: Pending browser logins of the operations panel: ``sd:ops:auth:{state}`` (JSON, short TTL).
OPS_AUTH_FMT = PREFIX + ":ops:auth:{state}"

#: Health service: last overall status, for alert de-duplication across restarts.
HEALTH_STATE_KEY = PREFIX + ":health:state"
#: Health service: every round's statuses ``{"components": {name: status, "overall": ...},
#: "at": epoch s}``, with a TTL of a few rounds (read by the gateway's status bar).
HEALTH_SUMMARY_KEY = PREFIX + ":health:summary"


def tick_stream(partition: int) -> str:
    """Name of the tick stream for ``partition``."""
    return TICK_STREAM_FMT.format(partition=partition)


def tick_streams(partitions: int) -> list[str]:
    """Names of all tick streams for a configuration with ``partitions`` partitions."""
    return [tick_stream(p) for p in range(partitions)]


def partition_for(symbol: str, partitions: int) -> int:
    """Stable partition of ``symbol`` (CRC32, the same in every process and language)."""
    return zlib.crc32(symbol.encode()) % partitions


def heartbeat_key(service: str, instance: str) -> str:
    """Heartbeat key of one service instance."""
    return HEARTBEAT_FMT.format(service=service, instance=instance)


def last_quote_key(symbol: str) -> str:
    """Key of the latest quote hash of ``symbol``."""
    return LAST_QUOTE_FMT.format(symbol=symbol)


#: Indicators service: lease of one tick-stream partition (value = owner instance id, PX TTL).
INDICATORS_LEASE_FMT = PREFIX + ":indicators:lease:{partition}"


def indicators_lease_key(partition: int) -> str:
    """Lease key of tick-stream ``partition`` for the indicators service."""
    return INDICATORS_LEASE_FMT.format(partition=partition)


def ops_auth_key(state: str) -> str:
    """Key of a pending browser login (the OAuth ``state`` it was started with)."""
    return OPS_AUTH_FMT.format(state=state)


#: Supabase Realtime usage of one calendar month (UTC, ``YYYY-MM``): a hash with
#: ``broadcasts`` (accepted by Supabase) and ``bytes`` (their payloads), written by the
#: indicators broadcast publisher, read by its budget check and by ``streamdesk budget``.
REALTIME_USAGE_FMT = PREFIX + ":realtime:usage:{month}"


def realtime_usage_key(month: str) -> str:
    """Key of the Realtime usage hash of ``month`` (``YYYY-MM``)."""
    return REALTIME_USAGE_FMT.format(month=month)
