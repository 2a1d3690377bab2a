#!/bin/sh
# Regenerate src/api/schema.d.ts from the gateway's OpenAPI document.
# The app is built without a database (openapi() needs no lifespan), so this runs offline.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
root=$(cd "$here/.." && pwd)
py="${PYTHON:-$root/.venv/bin/python}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && "$py" -c '
import json, sys
from streamdesk_gateway.app import create_app
from streamdesk_gateway.config import Settings
app = create_app(Settings(_env_file=None))
json.dump(app.openapi(), sys.stdout, indent=1, sort_keys=True)
' > "$tmp/openapi.json")
npx --no-install openapi-typescript "$tmp/openapi.json" -o "$here/src/api/schema.d.ts"
