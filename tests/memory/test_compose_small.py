"""Static checks of docker-compose.small.yml, the small-VM layout (no Docker engine here).

The override runs the grouped services in one ``stack`` container and moves their own
containers to the ``split`` profile; the trade-executor and Redis stay alone.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from streamdesk.multiservice import parse_names

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
VM_MB, OS_HEADROOM_MB = 512, 48


def _mb(limit: str) -> int:
    m = re.fullmatch(r"(\d+)m", limit)
    assert m, limit
    return int(m[1])


@pytest.fixture(scope="module")
def files() -> tuple[dict, dict]:
    base = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    small = yaml.safe_load((ROOT / "docker-compose.small.yml").read_text())
    return base, small


def _group(stack: dict) -> list[str]:
    command = stack["command"]
    assert command[0] == "streamdesk-stack" and len(command) == 2
    spec = re.fullmatch(r"\$\{STACK_GROUP:-([a-z,-]+)\}", command[1])
    assert spec, command
    return parse_names(spec[1])  # refuses the trade-executor


def test_grouped_services_run_once_and_the_executor_alone(files: tuple[dict, dict]) -> None:
    base, small = files
    stack = small["services"]["stack"]
    group = _group(stack)
    assert {"streamer", "indicators", "health", "gateway"} <= set(group)
    for name in group:
        if name in base["services"]:
            assert small["services"][name] == {"profiles": ["split"]}, name
    overridden = set(small["services"]) - {"stack"}
    assert overridden == {n for n in group if n in base["services"]}
    assert "trade-executor" in base["services"] and "redis" in base["services"]
    # The image holds every grouped package; the gateway's target brings the dashboard.
    args = stack["build"]["args"]
    packages = {args["SERVICE"], *args["EXTRA_PACKAGES"].split()}
    assert packages == {f"streamdesk-{n}" for n in group}
    assert stack["build"]["target"] == "gateway"
    assert "EXTRA_PACKAGES" in (ROOT / "docker" / "Dockerfile").read_text()


def test_small_layout_fits_the_vm_and_keeps_the_hardening(files: tuple[dict, dict]) -> None:
    base, small = files
    stack = small["services"]["stack"]
    running = {
        name: svc
        for name, svc in base["services"].items()
        if not svc.get("profiles") and name != "migrate" and name not in small["services"]
    }
    assert set(running) == {"redis", "trade-executor"}
    total = _mb(stack["mem_limit"]) + sum(_mb(s["mem_limit"]) for s in running.values())
    assert total <= VM_MB - OS_HEADROOM_MB, total
    assert stack["restart"] == "unless-stopped" and stack["read_only"] is True
    assert stack["cap_drop"] == ["ALL"] and "no-new-privileges:true" in stack["security_opt"]
    assert all(str(p).startswith("127.0.0.1:") for p in stack["ports"])
    assert stack["healthcheck"]["test"][1:3] == ["streamdesk", "health-check"]
    assert stack["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert "${DATABASE_URL:?Variable not set}" in stack["environment"]["DATABASE_URL"]
    # What the executor reaches by name (HEALTH_URL) still resolves: the group answers it.
    assert "health" in stack["networks"]["default"]["aliases"]
