"""The structure docs/architecture.md promises: every module listed, none too big, no service
importing another."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "architecture.md").read_text()
PACKAGES = [ROOT / "shared" / "streamdesk", *sorted((ROOT / "services").glob("*/streamdesk_*"))]
MODULES = sorted(p for pkg in PACKAGES for p in pkg.glob("*.py") if p.name != "__init__.py")
MAX_LINES = 450


def test_packages_found() -> None:
    assert len(PACKAGES) == 8 and len(MODULES) > 100


@pytest.mark.parametrize("path", MODULES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_module_is_listed_and_small(path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)} has {lines} lines (> {MAX_LINES})"
    assert f"`{path.name}`" in DOC, f"{path.relative_to(ROOT)} is not in docs/architecture.md"


def _imported_packages(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


#: The one sanctioned crossing: ``streamdesk budget`` measures the live message with the
#: indicators' own code (imported lazily, with a clear error when that package is absent).
ALLOWED = {("cli_budget.py", "streamdesk_indicators")}


def test_no_service_imports_another_or_the_dev_tools() -> None:
    services = {pkg.name for pkg in PACKAGES[1:]}
    wrong = []
    for path in MODULES:
        own = path.parent.name
        for name in _imported_packages(path):
            if (path.name, name) in ALLOWED:
                continue
            if (name in services and name != own) or name == "streamdesk_dev":
                wrong.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not wrong, wrong


def test_every_redis_key_comes_from_constants() -> None:
    # A literal "sd:..." key outside constants.py is a second answer to "which keys exist?".
    literal = re.compile(r"""["']sd:[a-z]""")
    offenders = [
        str(p.relative_to(ROOT))
        for p in MODULES
        if p.name != "constants.py" and literal.search(p.read_text())
    ]
    assert not offenders, offenders


@pytest.mark.parametrize(
    ("module", "absent"),
    [
        # schwab-py (~18 MB) only for a re-auth, PyJWT + cryptography (~9 MB) only with
        # SUPABASE_URL: the gateway's 72 MB compose limit depends on it.
        ("streamdesk_gateway.app", ["schwab", "authlib", "jwt"]),
        # health never speaks HTTP as a client (its webhook uses urllib).
        ("streamdesk_health.app", ["httpx", "schwab"]),
    ],
)
def test_heavy_libraries_stay_out_of_processes_that_do_not_need_them(
    module: str, absent: list[str]
) -> None:
    import subprocess
    import sys

    code = f"import sys, {module}; print(sorted(m for m in {absent!r} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]", f"{module} imports {out.stdout.strip()}"
