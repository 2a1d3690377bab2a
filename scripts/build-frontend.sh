#!/usr/bin/env bash
# Build the dashboard (frontend/ -> frontend/dist) when its sources changed since the last
# build: `npm ci` when package-lock.json changed, then `npm run build` (tsc + vite build).
# Used by `make run`, `make frontend` and the test-suite's e2e tests; the gateway serves
# frontend/dist. Needs Node.js >= 20 and npm.
set -euo pipefail
cd "$(dirname "$0")/../frontend"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "frontend: Node.js >= 20 and npm are needed to build the dashboard (apt-get install nodejs npm, or https://nodejs.org)" >&2
    exit 2
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if ((major < 20)); then
    echo "frontend: Node.js $(node --version) is too old; the dashboard needs Node.js >= 20" >&2
    exit 2
fi

# A short hash of the named files and directories' contents (those that exist).
hash_of() {
    local existing=()
    for path in "$@"; do [[ -e "$path" ]] && existing+=("$path"); done
    find "${existing[@]}" -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16
}

deps=$(hash_of package.json package-lock.json)
if [[ ! -d node_modules || "$(cat node_modules/.sd-deps 2>/dev/null)" != "$deps" ]]; then
    echo "frontend: npm ci"
    npm ci --no-audit --no-fund --loglevel=error
    echo "$deps" >node_modules/.sd-deps
fi

src=$(hash_of package.json package-lock.json index.html tsconfig.json vite.config.ts src public)
if [[ -f dist/index.html && "$(cat dist/.sd-build 2>/dev/null)" == "$src" && "${FRONTEND_FORCE_BUILD:-0}" != 1 ]]; then
    echo "frontend: dist/ is up to date"
    exit 0
fi
echo "frontend: building dist/"
npm run --silent build
echo "$src" >dist/.sd-build
