#!/usr/bin/env bash
# `make run`: the whole stack on this machine with embedded defaults (local Postgres and
# Redis, market-sim as market and broker, paper trading, dashboard on :8080), every service
# under supervisord: a crashed one is restarted, a crash loop is given up (docs/deploy.md).
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -m streamdesk.stack
