#!/usr/bin/env bash
# Run the test-suite with every process's clock moved to a given moment (libfaketime):
# pytest, the services it starts, PostgreSQL and Redis all see the same "now", ticking.
#   scripts/test-at.sh "2026-12-02 16:00:00" [pytest args...]   # a Wednesday, 11:00 New York
# `make test-clock` runs it once inside and once outside market hours.
set -euo pipefail
cd "$(dirname "$0")/.."
if (($# < 1)); then
    echo "usage: scripts/test-at.sh 'YYYY-MM-DD HH:MM:SS' (UTC) [pytest args...]" >&2
    exit 2
fi
at="$1"
shift
if ! command -v faketime >/dev/null 2>&1; then
    echo "test-at: installing faketime (Debian package)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends faketime
fi
export TZ=UTC
target=$(date -u -d "${at}" +%s) || { echo "test-at: cannot read the moment '${at}'" >&2; exit 2; }
# A constant offset, not an absolute start ("@..."): every process the tests start later sees
# the same "now" as pytest (an absolute start would restart each new process's clock at it).
offset=$((target - $(date -u +%s)))
if ((offset >= 0)); then offset="+${offset}"; fi
echo "test-at: running the suite at ${at} UTC (clock offset ${offset} s)"
# Monotonic time is shifted too: libfaketime's sleeps fail (EINVAL) when only the wall clock is.
exec faketime -f "${offset}" .venv/bin/python -m pytest -p no:cacheprovider "$@"
