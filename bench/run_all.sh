#!/usr/bin/env bash
# `make bench`: run every benchmark in bench/ one after the other (they are noisy on shared
# machines, so each reports ratios against a baseline measured in the same run).
# BENCH=name runs only bench/bench_<name>.py (`make bench BENCH=storage`).
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
for script in bench/bench_${BENCH:-*}.py; do
    [[ -e "$script" ]] || { echo "bench: no benchmark matches ${BENCH:-*}" >&2; exit 1; }
    echo "=== $script"
    if ! .venv/bin/python "$script"; then
        echo "bench: $script failed" >&2
        status=1
    fi
done
exit $status
