"""``streamdesk-stack streamer,indicators,health,gateway``: several services in one interpreter.

For small VMs (docs/deploy.md, "Memory budget"): every StreamDesk service is a Python process
whose RSS is mostly the interpreter and the libraries it imports (pydantic, redis-py, asyncpg,
schwab-py, FastAPI), not its data. Run side by side on one event loop, those pages are paid
once. Each service keeps its own settings, connections, heartbeat and drain; what it gives up
is isolation:

- **fate-sharing**: when one service's main returns or raises before a stop was asked for,
  the others are stopped (each drains within its ``SHUTDOWN_TIMEOUT``) and the process exits
  non-zero, so that its supervisor (compose ``restart: unless-stopped``, supervisord) starts
  the group again. A crash is never absorbed: it is logged with the service's name and it
  ends the process;
- **one core**: the services share one GIL and one event loop; a CPU-heavy moment of one
  delays the others (fine at the reference workload, not at 100k ticks/s);
- **one memory limit** for the group instead of one per service.

The trade-executor is refused: it places real orders and stays in its own process, so that
no bug, overload or out-of-memory kill of the data path can stop it between placing an order
and recording the outcome (it would reconcile, but the point is not to need to).

Log lines carry ``component=<service>`` (a context variable set for each service's task, so
the tasks it starts inherit it). SIGTERM/SIGINT stop every service
(:func:`streamdesk.shutdown.request_all`); exit code 0 after a requested stop in which every
service stopped cleanly, 2 for a configuration error, else the failing service's code (1 if
it returned 0 or raised).
"""

from __future__ import annotations

import asyncio
import contextvars
import importlib
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .config import CommonSettings, ConfigError, load_settings
from .log import setup_logging
from .shutdown import GracefulShutdown, request_all

log = logging.getLogger(__name__)

#: service -> (module, name of its ``async (settings) -> int`` entry). Each module also
#: exposes ``Settings``, the class its console script loads.
SERVICES: dict[str, tuple[str, str]] = {
    "streamer": ("streamdesk_streamer.__main__", "run"),
    "indicators": ("streamdesk_indicators.__main__", "run"),
    "health": ("streamdesk_health.__main__", "serve"),
    "gateway": ("streamdesk_gateway.__main__", "serve"),
    "strategy": ("streamdesk_strategy.__main__", "run"),
}
#: Services that never share a process, and why.
REFUSED: dict[str, str] = {
    "trade-executor": "it places orders and runs in its own process",
    "executor": "it places orders and runs in its own process",
    "market-sim": "it is the market, not a part of the live stack",
}
#: What a service gets beyond its SHUTDOWN_TIMEOUT to finish before it is cancelled.
STOP_GRACE = 10.0

COMPONENT: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "streamdesk_component", default=None
)


class ComponentFilter(logging.Filter):
    """Adds ``component`` (the service whose task logs) to every record that has none."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Tag ``record``; never drops it."""
        if not hasattr(record, "component"):
            record.component = COMPONENT.get() or "stack"
        return True


@dataclass
class Service:
    """One service of the group: its name, loaded settings and async entry point."""

    name: str
    settings: CommonSettings
    entry: Callable[[Any], Awaitable[int]]


def parse_names(spec: str) -> list[str]:
    """The service names of ``spec`` (comma-separated), checked; raises ``ValueError``."""
    names = [n.strip().lower() for n in spec.split(",") if n.strip()]
    if not names:
        raise ValueError("name at least one service")
    for name in names:
        if name in REFUSED:
            raise ValueError(f"{name} cannot share a process: {REFUSED[name]}")
        if name not in SERVICES:
            raise ValueError(f"unknown service {name!r} (one of {', '.join(SERVICES)})")
    if len(set(names)) != len(names):
        raise ValueError("a service is named twice")
    return names


def load(name: str) -> Service:
    """Import ``name``'s entry module and load its settings (``ConfigError`` names it)."""
    module_name, attr = SERVICES[name]
    module = importlib.import_module(module_name)
    try:
        settings = load_settings(module.Settings)
    except ConfigError as exc:
        raise ConfigError(f"{name}: {exc}") from None
    return Service(name, settings, getattr(module, attr))


async def _guarded(service: Service) -> int:
    try:
        return int(await service.entry(service.settings))
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("%s crashed", service.name)
        return 1


async def run_services(services: Sequence[Service]) -> int:
    """Run ``services`` on the running loop until a stop signal or until one of them ends;
    return the process exit code (see the module docstring)."""
    timeout = max(s.settings.shutdown_timeout for s in services)
    stop = GracefulShutdown(timeout)
    stop.install()
    tasks: dict[asyncio.Task[int], str] = {}
    for service in services:
        context = contextvars.copy_context()
        context.run(COMPONENT.set, service.name)
        task = asyncio.create_task(_guarded(service), name=service.name, context=context)
        tasks[task] = service.name
    log.info("running %s in one process", ", ".join(tasks.values()))
    stop_wait = asyncio.create_task(stop.wait(), name="stack-stop")
    code = 0
    try:
        done, _ = await asyncio.wait({*tasks, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
        ended = [t for t in tasks if t in done]
        if ended and not stop.requested:
            first = ended[0]
            rc = first.result()
            code = rc or 1
            others = [n for t, n in tasks.items() if t is not first] or ["nothing else"]
            log.critical(
                "%s exited on its own (exit code %d): stopping %s; the process exits %d so "
                "that its supervisor restarts the group",
                tasks[first],
                rc,
                ", ".join(others),
                code,
            )
            request_all(f"{tasks[first]} exited")
        _, late = await asyncio.wait(tasks, timeout=timeout + STOP_GRACE)
        for task in late:
            log.error("%s did not stop within %.0fs; cancelled", tasks[task], timeout + STOP_GRACE)
            task.cancel()
        if late:
            await asyncio.wait(late, timeout=5.0)
            code = code or 1
        for task, name in tasks.items():
            rc = 1 if task.cancelled() else task.result()
            if rc and not code:
                log.error("%s stopped with exit code %d", name, rc)
                code = rc
    finally:
        stop_wait.cancel()
        await asyncio.gather(stop_wait, return_exceptions=True)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``streamdesk-stack`` (and ``python -m streamdesk.multiservice``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or args[0] in ("-h", "--help"):
        print(
            "usage: streamdesk-stack SERVICE[,SERVICE...]   e.g. streamer,indicators,health,"
            f"gateway\n  services: {', '.join(SERVICES)} (trade-executor always runs alone)",
            file=sys.stderr,
        )
        return 0 if args[:1] in (["-h"], ["--help"]) else 2
    try:
        names = parse_names(args[0])
        services = [load(name) for name in names]
    except (ValueError, ConfigError) as exc:
        print(f"streamdesk-stack: {exc}", file=sys.stderr)
        return 2
    except ImportError as exc:
        print(f"streamdesk-stack: a service is not installed here: {exc}", file=sys.stderr)
        return 2
    first = services[0].settings
    setup_logging("+".join(names), first.log_level, first.log_format)
    for handler in logging.getLogger().handlers:
        handler.addFilter(ComponentFilter())
    return asyncio.run(run_services(services))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
