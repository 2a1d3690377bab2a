"""Prometheus metrics, generated at scrape time from the latest snapshot.

Built afresh on every scrape: no global state, no stale label sets when a component or
stream disappears. The text format is written by ``exposition``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from streamdesk.constants import INDICATORS_GROUP

from .exposition import CONTENT_TYPE, Family, counter, gauge, process_families
from .exposition import render as render_families
from .monitor import HealthMonitor

__all__ = ["CONTENT_TYPE", "SnapshotCollector", "build_registry", "render"]


def _num(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


class SnapshotCollector:
    """Turns the monitor's latest snapshot into metric families."""

    def __init__(self, monitor: HealthMonitor) -> None:
        self.monitor = monitor

    def collect(self) -> Iterator[Family]:
        """Yield every metric family of the latest snapshot."""
        mon = self.monitor
        snap = mon.snapshot
        rounds = counter("streamdesk_health_check_rounds", "Check rounds run.")
        rounds.add_metric([], mon.rounds)
        yield rounds
        if mon.alerter is not None:
            for name, value, doc in (
                ("sent", mon.alerter.sent, "Webhook POSTs delivered."),
                ("failed", mon.alerter.failed, "Webhook POSTs that failed."),
                ("dropped", mon.alerter.dropped, "Alerts dropped (queue full)."),
            ):
                alerts = counter(f"streamdesk_health_alerts_{name}", doc)
                alerts.add_metric([], value)
                yield alerts
        if snap is None:
            return
        overall = gauge("streamdesk_health_status", "Overall status: 0 ok, 1 degraded, 2 down.")
        overall.add_metric([], snap.status.level)
        yield overall
        comp = gauge(
            "streamdesk_component_status",
            "Component status: 0 ok, 1 degraded, 2 down.",
            labels=["component"],
        )
        dur = gauge(
            "streamdesk_component_check_seconds",
            "Duration of the component's last check.",
            labels=["component"],
        )
        for name, result in snap.components.items():
            comp.add_metric([name], result.status.level)
            dur.add_metric([name], result.duration_s)
        yield comp
        yield dur
        last = gauge(
            "streamdesk_health_last_check_timestamp_seconds", "Time of the last check round."
        )
        last.add_metric([], snap.checked_at)
        yield last

        hb_age = gauge(
            "streamdesk_heartbeat_age_seconds",
            "Age of the newest heartbeat.",
            labels=["service"],
        )
        uptime = gauge(
            "streamdesk_service_uptime_seconds", "Uptime from the heartbeat.", labels=["service"]
        )
        counters = gauge(
            "streamdesk_service_counter",
            "Numeric counters published in service heartbeats.",
            labels=["service", "instance", "counter"],
        )
        for service in mon.settings.health_expected_services:
            hb = snap.components.get(service)
            instances = hb.figures.get("instances", []) if hb else []
            if instances:
                hb_age.add_metric([service], instances[0]["age_s"])
                if (u := _num(instances[0].get("uptime_s"))) is not None:
                    uptime.add_metric([service], u)
            for inst in instances:
                for key, value in (inst.get("counters") or {}).items():
                    if (v := _num(value)) is not None:
                        counters.add_metric([service, inst["instance"], str(key)], v)
        yield hb_age
        yield uptime
        yield counters

        redis = snap.components.get("redis")
        if redis and redis.figures:
            mem = gauge("streamdesk_redis_used_memory_bytes", "Redis used_memory.")
            mem.add_metric([], redis.figures.get("used_memory_bytes", 0))
            yield mem
            length = gauge(
                "streamdesk_redis_stream_length", "Entries in the stream.", labels=["stream"]
            )
            lag = gauge(
                "streamdesk_redis_group_lag",
                "Entries not yet delivered to the consumer group.",
                labels=["stream", "group"],
            )
            pending = gauge(
                "streamdesk_redis_group_pending",
                "Entries delivered but not acknowledged.",
                labels=["stream", "group"],
            )
            for stream, entry in redis.figures.get("streams", {}).items():
                length.add_metric([stream], entry.get("length", 0))
                if (v := _num(entry.get("lag"))) is not None:
                    lag.add_metric([stream, INDICATORS_GROUP], v)
                if (v := _num(entry.get("pending"))) is not None:
                    pending.add_metric([stream, INDICATORS_GROUP], v)
            yield length
            yield lag
            yield pending

        pg = snap.components.get("postgres")
        if pg and pg.figures:
            size = gauge(
                "streamdesk_postgres_database_size_bytes", "pg_database_size of the database."
            )
            size.add_metric([], pg.figures.get("database_size_bytes", 0))
            yield size
            budget = gauge("streamdesk_postgres_database_budget_bytes", "Configured size budget.")
            budget.add_metric([], pg.figures.get("budget_bytes", 0))
            yield budget
            age = gauge(
                "streamdesk_table_last_row_age_seconds",
                "Age of the newest row in the table.",
                labels=["table"],
            )
            for table, value in pg.figures.get("last_row_age_s", {}).items():
                if (v := _num(value)) is not None:
                    age.add_metric([table], v)
            yield age

        fresh = snap.components.get("freshness")
        if fresh and fresh.figures:
            open_ = gauge("streamdesk_market_open", "1 when the market is open.")
            open_.add_metric([], 1.0 if fresh.figures.get("market_open") else 0.0)
            yield open_
            tage = gauge(
                "streamdesk_ticker_data_age_seconds",
                "Age of the newest tick of the ticker.",
                labels=["ticker"],
            )
            for ticker, entry in fresh.figures.get("tickers", {}).items():
                if (v := _num(entry.get("age_s"))) is not None:
                    tage.add_metric([ticker], v)
            yield tage

        streamer = snap.components.get("streamer")
        if streamer and "open_gaps" in streamer.figures:
            gaps = gauge("streamdesk_stream_open_gaps", "Open data gaps.")
            gaps.add_metric([], streamer.figures["open_gaps"])
            yield gaps

        token = snap.components.get("token")
        if token and (left := _num(token.figures.get("refresh_expires_in_s"))) is not None:
            tok = gauge(
                "streamdesk_token_refresh_expires_in_seconds",
                "Seconds until the Schwab refresh token expires.",
            )
            tok.add_metric([], left)
            yield tok

        ex = snap.components.get("executor")
        if ex and (n_unknown := _num(ex.figures.get("unknown_orders"))) is not None:
            unknown = gauge(
                "streamdesk_executor_unknown_orders", "Orders whose outcome is unknown."
            )
            unknown.add_metric([], n_unknown)
            yield unknown
            if (r := _num(ex.figures.get("last_reconcile_age_s"))) is not None:
                rec = gauge(
                    "streamdesk_executor_last_reconcile_age_seconds",
                    "Seconds since the executor's last reconciliation.",
                )
                rec.add_metric([], r)
                yield rec


def build_registry(monitor: HealthMonitor) -> SnapshotCollector:
    """What /metrics renders: the snapshot's families, then this process's own."""
    return SnapshotCollector(monitor)


def render(collector: SnapshotCollector) -> bytes:
    """The latest snapshot and the process metrics in Prometheus text format."""
    return render_families([*collector.collect(), *process_families()])
