"""``streamdesk health-check``: ask the health service, print a table, exit 0/1/2.

Exit codes: 0 ok, 1 degraded, 2 down (or unreachable). Usable as a Docker healthcheck per
service (``streamdesk health-check --component streamer``). When the health service itself
is unreachable and the component is a service heartbeat, the heartbeat key is read straight
from Redis, so one service's healthcheck does not depend on another container.

Imports stay light (stdlib HTTP client; Redis only on the fallback path): this runs every few
seconds in every container.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from typing import Any

from pydantic import Field

from .clock import SYSTEM_CLOCK, Clock
from .config import CommonSettings, load_settings

EXIT_CODES = {"ok": 0, "degraded": 1, "down": 2}
#: Components computed only by the health service (no direct fallback for them).
CORE_COMPONENTS = frozenset({"redis", "postgres", "freshness", "token", "executor"})


class HealthCheckSettings(CommonSettings):
    """Settings of ``streamdesk health-check``."""

    health_url: str = Field(
        default="http://127.0.0.1:8081", description="Base URL of the health service."
    )


class Unreachable(Exception):
    """The health service did not answer."""


def fetch_health(base_url: str, component: str | None, timeout: float) -> dict[str, Any]:
    """GET ``/health`` (or ``/health/{component}``) and return the JSON body (also on 503)."""
    url = base_url.rstrip("/") + "/health" + (f"/{component}" if component else "")
    if not url.startswith(("http://", "https://")):
        raise Unreachable(f"not an http(s) URL: {url}")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - checked above
            body = resp.read()
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise ValueError(f"unknown component {component!r}") from None
        body = exc.read()
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise Unreachable(f"{url}: {getattr(exc, 'reason', exc)}") from None
    try:
        value = json.loads(body)
    except ValueError:
        raise Unreachable(f"{url}: answer is not JSON") from None
    if not isinstance(value, dict):
        raise Unreachable(f"{url}: unexpected answer")
    return value


async def heartbeat_status(
    settings: CommonSettings, service: str, *, clock: Clock = SYSTEM_CLOCK
) -> dict[str, Any]:
    """Status of ``service`` from its heartbeat key(s) in Redis (the fallback path)."""
    from .heartbeat import read_heartbeats
    from .redisutil import create_redis

    redis = create_redis(settings.redis_url, socket_timeout=3.0, socket_connect_timeout=3.0)
    try:
        beats = [hb for hb in await read_heartbeats(redis) if hb.get("service") == service]
    finally:
        await redis.aclose()
    now = clock.time()
    live = [hb for hb in beats if now - float(hb.get("ts", 0)) <= settings.heartbeat_ttl]
    if not live:
        return {"status": "down", "reason": "no live heartbeat (read from Redis)"}
    bad = [hb for hb in live if hb.get("status", "ok") != "ok"]
    if bad:
        return {"status": "degraded", "reason": str(bad[0].get("reason") or "degraded")}
    return {"status": "ok", "reason": f"{len(live)} instance(s) alive (read from Redis)"}


def _scalar_figures(body: dict[str, Any]) -> list[tuple[str, str]]:
    skip = {"status", "reason", "component", "checked_at", "duration_s"}
    out = []
    for key, value in body.items():
        if key in skip:
            continue
        if isinstance(value, dict | list):
            value = json.dumps(value, default=str, separators=(",", ":"))
            if len(value) > 100:
                value = value[:97] + "..."
        out.append((key, str(value)))
    return out


def render_table(body: dict[str, Any], component: str | None) -> str:
    """A readable table of the overall status and each component (or one component)."""
    rows: list[tuple[str, str, str]] = []
    if component:
        rows.append((component, str(body.get("status")), str(body.get("reason", ""))))
    else:
        rows.append(("OVERALL", str(body.get("status")), str(body.get("reason", ""))))
        for name, comp in (body.get("components") or {}).items():
            rows.append((name, str(comp.get("status")), str(comp.get("reason", ""))))
    width = max(len(r[0]) for r in rows)
    lines = [f"{'COMPONENT':<{width}}  {'STATUS':<8}  REASON"]
    lines += [f"{n:<{width}}  {s.upper():<8}  {r}" for n, s, r in rows]
    if component:
        lines += [f"  {k}: {v}" for k, v in _scalar_figures(body)]
    return "\n".join(lines)


def check_live(base_url: str, timeout: float) -> bool:
    """True if the health service itself answers ``/livez`` with 200."""
    url = base_url.rstrip("/") + "/livez"
    if not url.startswith(("http://", "https://")):
        return False
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - checked above
            return int(resp.status) == 200
    except (urllib.error.URLError, OSError, TimeoutError):
        return False


def run(args: argparse.Namespace) -> int:
    """Run the check; return 0 ok, 1 degraded, 2 down/unreachable."""
    settings = load_settings(HealthCheckSettings)
    url = args.url or settings.health_url
    if args.self:
        alive = check_live(url, args.timeout)
        if not args.quiet:
            print(f"health service {'alive' if alive else 'NOT alive'} at {url}")
        return 0 if alive else 2
    component = args.component
    try:
        body = fetch_health(url, component, args.timeout)
    except ValueError as exc:
        print(f"health-check: {exc}", file=sys.stderr)
        return 2
    except Unreachable as exc:
        if not component or component in CORE_COMPONENTS or args.no_fallback:
            print(f"health-check: health service unreachable: {exc}", file=sys.stderr)
            return 2
        import asyncio

        try:
            body = asyncio.run(asyncio.wait_for(heartbeat_status(settings, component), 10))
        except Exception as redis_exc:  # any failure here means "down"
            print(
                f"health-check: health service unreachable ({exc}) and Redis failed: "
                f"{type(redis_exc).__name__}",
                file=sys.stderr,
            )
            return 2
    status = str(body.get("status", "down"))
    if args.json:
        print(json.dumps(body, indent=2, default=str))
    elif not args.quiet:
        print(render_table(body, component))
    return EXIT_CODES.get(status, 2)


def register(subparsers: Any) -> None:
    """Add ``health-check`` to the ``streamdesk`` CLI."""
    p = subparsers.add_parser(
        "health-check",
        help="print the stack's health; exit 0 ok, 1 degraded, 2 down",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--component", default=None, help="one component (e.g. streamer, redis)")
    p.add_argument("--url", default=None, help="health service URL (default HEALTH_URL)")
    p.add_argument("--timeout", type=float, default=5.0, help="HTTP timeout in seconds")
    p.add_argument("--json", action="store_true", help="print the JSON answer")
    p.add_argument(
        "--self",
        action="store_true",
        help="only check that the health service itself is alive (its own Docker healthcheck)",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="print nothing; exit code only")
    p.add_argument(
        "--no-fallback",
        action="store_true",
        help="do not read the heartbeat from Redis when the health service is unreachable",
    )
    p.set_defaults(func=run)
