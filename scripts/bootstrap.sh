#!/usr/bin/env bash
# Install uv if missing and sync the workspace into .venv with the system Python.
set -euo pipefail
cd "$(dirname "$0")/.."
export UV_PYTHON_DOWNLOADS=never
if ! command -v uv >/dev/null 2>&1 && ! python3 -m uv --version >/dev/null 2>&1; then
    echo "bootstrap: installing uv with pip" >&2
    python3 -m pip install --quiet --disable-pip-version-check uv \
        || { echo "bootstrap: could not install uv; install it: python3 -m pip install uv" >&2; exit 1; }
fi
UV="$(command -v uv || echo 'python3 -m uv')"
$UV sync --frozen --quiet
