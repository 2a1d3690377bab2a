"""What each live service's entry module imports: the heavy libraries stay where they are used.

Every process of the live stack pays for what it imports (docs/deploy.md, "Memory budget"):
schwab-py with httpx and authlib is ~33 MB, FastAPI ~22 MB, PyJWT with cryptography ~14 MB.
Each entry module is imported (three fresh interpreters, in parallel; see ``ORDERS``) and the
libraries it must not pull in are looked up in ``sys.modules``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

WEB = ["fastapi", "starlette", "uvicorn"]
SCHWAB = ["schwab", "authlib", "httpx", "httpx2"]
NEVER = ["numpy", "pandas", "matplotlib"]

#: module -> libraries absent after ``import module``
CASES: dict[str, list[str]] = {
    # The group runner itself: services are imported by name, only those asked for.
    "streamdesk.multiservice": [
        *WEB, *SCHWAB, "redis", "asyncpg", "jwt", "websockets",
        "streamdesk_streamer", "streamdesk_indicators", "streamdesk_health",
        "streamdesk_gateway", "streamdesk_strategy", "streamdesk_executor",
    ],
    "streamdesk_indicators.__main__": [*WEB, *SCHWAB, "jwt"],
    "streamdesk_health.__main__": [*SCHWAB, "jwt"],
    # schwab-py only for a re-auth, PyJWT only with SUPABASE_URL.
    "streamdesk_gateway.__main__": [*SCHWAB, "jwt"],
    "streamdesk_streamer.__main__": [*WEB, "jwt"],
    "streamdesk_executor.__main__": [*WEB, "jwt"],
    # schwab-py only once it backfills (after start-up, from the broker's price history).
    "streamdesk_strategy.__main__": [*WEB, *SCHWAB, "jwt"],
}  # fmt: skip

#: Three interpreters, each importing its modules in this order and listing ``sys.modules``
#: after each: a library absent after a module was not imported by it (nor by those
#: before it). The order puts the lighter services first so that no earlier module loads
#: what a later one must not.
ORDERS = [
    [
        "streamdesk.multiservice",
        "streamdesk_indicators.__main__",
        "streamdesk_strategy.__main__",
        "streamdesk_health.__main__",
    ],
    ["streamdesk_gateway.__main__"],
    ["streamdesk_streamer.__main__", "streamdesk_executor.__main__"],
]
#: Bytecode cached across runs (this machine sets PYTHONDONTWRITEBYTECODE): the imports are
#: the same, only faster than compiling every module again.
PYCACHE = Path(tempfile.gettempdir()) / "streamdesk-pycache"

_CODE = (
    "import importlib, json, sys\n"
    "out = {}\n"
    "for name in sys.argv[1:]:\n"
    "    importlib.import_module(name)\n"
    "    out[name] = sorted({m.split('.')[0] for m in sys.modules})\n"
    "print(json.dumps(out))\n"
)


@pytest.fixture(scope="module")
def imported() -> dict[str, set[str]]:
    """Top-level packages in ``sys.modules`` after importing each module (see ORDERS)."""
    assert sorted(m for order in ORDERS for m in order) == sorted(CASES)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CODE, *order],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for order in ORDERS
    ]
    out: dict[str, set[str]] = {}
    for order, proc in zip(ORDERS, procs, strict=True):
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, f"import of {order} failed:\n{stderr[-2000:]}"
        out.update({k: set(v) for k, v in json.loads(stdout).items()})
    return out


@pytest.mark.parametrize("module", list(CASES))
def test_entry_module_leaves_heavy_libraries_out(
    module: str, imported: dict[str, set[str]]
) -> None:
    present = sorted(set(CASES[module] + NEVER) & imported[module])
    assert not present, f"import {module} (or one imported before it) pulls in {present}"


def test_the_check_sees_an_import(imported: dict[str, set[str]]) -> None:
    # The lookup is not vacuous: what each service does need is there.
    assert {"redis", "asyncpg", "pydantic"} <= imported["streamdesk_indicators.__main__"]
    assert {"schwab", "httpx"} <= imported["streamdesk_executor.__main__"]
    assert {"fastapi", "uvicorn"} <= imported["streamdesk_gateway.__main__"]
