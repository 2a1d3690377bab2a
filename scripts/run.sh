#!/usr/bin/env bash
# `make run`: the whole stack on this machine with embedded defaults (local Postgres and
# Redis, market-sim as market and broker, paper trading, dashboard on :8080), every service
# under supervisord: a crashed one is restarted, a crash loop is given up (docs/deploy.md).
set -euo pipefail
cd "$(dirname "$0")/.."
# The dashboard's login URL, with the gateway token (GATEWAY_TOKEN, or the one generated into
# .data/gateway-token on first run): printed to this terminal only, never logged.
if url=$(.venv/bin/python -m streamdesk_gateway --login-url); then
    echo "stack: log in to the dashboard at ${url}"
fi
exec .venv/bin/python -m streamdesk_dev.stack
