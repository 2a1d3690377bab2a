"""The HTTP API in-process: /health, /health/{component}, /metrics, /livez, /readyz."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest
import redis.asyncio as aioredis
from prometheus_client.parser import text_string_to_metric_families

from streamdesk.constants import HEALTH_SUMMARY_KEY
from streamdesk.heartbeat import Heartbeat
from streamdesk_health.app import create_app
from streamdesk_health.config import Settings
from streamdesk_health.monitor import HealthMonitor

pytestmark = pytest.mark.integration

SettingsFactory = Callable[..., Settings]


async def test_endpoints_and_metrics_parse(make_settings: SettingsFactory, redis_url: str) -> None:
    settings = make_settings(health_expected_services="indicators,streamer")
    client = aioredis.Redis.from_url(redis_url)
    hb = Heartbeat(
        client, "indicators", instance="i1", ttl=30, counters=lambda: {"rows": 12, "lag": 0.5}
    )
    await hb.beat()
    (settings.schwab_token_path).write_text(
        json.dumps({"creation_timestamp": int(datetime.now(UTC).timestamp()), "token": {}})
    )
    mon = HealthMonitor(settings)
    app = create_app(settings, monitor=mon)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://health") as http:
            # Before the first round: not ready, and /health says so.
            assert (await http.get("/readyz")).status_code == 503
            assert (await http.get("/health")).json()["status"] == "down"
            await mon.run_once()
            # Every round is published for the dashboard's status bar (with a TTL), even
            # inside the alert grace period, when no change is tracked yet.
            summary = json.loads(await client.get(HEALTH_SUMMARY_KEY))
            assert summary["components"]["overall"] == "down"
            assert summary["components"]["streamer"] == "down"
            assert 0 < await client.pttl(HEALTH_SUMMARY_KEY) <= 60_000

            resp = await http.get("/health")
            body = resp.json()
            # The streamer never started: the stack is down, 503 for probes.
            assert resp.status_code == 503 and body["status"] == "down"
            assert set(body["components"]) == {
                "indicators",
                "streamer",
                "redis",
                "postgres",
                "freshness",
                "token",
                "executor",
            }
            assert body["components"]["indicators"]["status"] == "ok"
            assert body["components"]["streamer"]["status"] == "down"

            one = await http.get("/health/indicators")
            assert one.status_code == 200
            assert one.json()["component"] == "indicators"
            assert one.json()["instances"][0]["counters"] == {"rows": 12, "lag": 0.5}
            assert (await http.get("/health/streamer")).status_code == 503
            assert (await http.get("/health/nope")).status_code == 404
            assert (await http.get("/readyz")).status_code == 200

            metrics = await http.get("/metrics")
            assert metrics.status_code == 200
            families = {f.name: f for f in text_string_to_metric_families(metrics.text)}
            comp = {
                s.labels["component"]: s.value
                for s in families["streamdesk_component_status"].samples
            }
            assert comp["indicators"] == 0 and comp["streamer"] == 2
            assert families["streamdesk_health_status"].samples[0].value == 2
            counters = {
                s.labels["counter"]: s.value for s in families["streamdesk_service_counter"].samples
            }
            assert counters == {"rows": 12.0, "lag": 0.5}
            size = families["streamdesk_postgres_database_size_bytes"].samples[0].value
            assert size > 1_000_000
            expires = families["streamdesk_token_refresh_expires_in_seconds"].samples[0].value
            assert 6.9 * 86400 < expires <= 7 * 86400
            assert families["process_resident_memory_bytes"].samples[0].value > 0
            assert families["streamdesk_health_check_rounds"].samples[0].value == 1
    finally:
        await mon.stop()
        await hb.stop()
        await client.aclose()


async def test_lifespan_runs_the_loop_and_livez(make_settings: SettingsFactory) -> None:
    settings = make_settings(health_check_interval=0.05)
    app = create_app(settings)
    mon: HealthMonitor = app.state.monitor
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://health") as http:
            assert (await http.get("/livez")).status_code == 200

            for _ in range(100):
                if mon.rounds >= 3:
                    break
                await asyncio.sleep(0.05)
            assert mon.rounds >= 3
            assert (await http.get("/readyz")).json()["status"] == "ok"
    assert not mon.running
