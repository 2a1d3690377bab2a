"""``python -m streamdesk.waitfor HOST:PORT [--timeout S] -- CMD...``: wait for a port, exec CMD.

Used by the local stack runner so that services which need market-sim start after it listens.
"""

from __future__ import annotations

import os
import socket
import sys
import time


def wait_for(host: str, port: int, timeout: float) -> bool:
    """Return True once ``host:port`` accepts a connection, False after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), 0.5):
                return True
        except OSError:
            time.sleep(0.2)
    return False


def main(argv: list[str] | None = None) -> int:
    """Parse ``HOST:PORT [--timeout S] -- CMD...`` and exec CMD once the port listens."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "--" not in args or not args[0] or ":" not in args[0]:
        print(
            "usage: python -m streamdesk.waitfor HOST:PORT [--timeout S] -- CMD...", file=sys.stderr
        )
        return 2
    sep = args.index("--")
    host, _, port = args[0].rpartition(":")
    timeout = float(args[args.index("--timeout") + 1]) if "--timeout" in args[:sep] else 60.0
    cmd = args[sep + 1 :]
    if not wait_for(host, int(port), timeout):
        print(f"waitfor: {host}:{port} not reachable after {timeout:.0f}s", file=sys.stderr)
        return 1
    os.execvp(cmd[0], cmd)  # noqa: S606 - argv from our own Procfile, no shell


if __name__ == "__main__":
    sys.exit(main())
