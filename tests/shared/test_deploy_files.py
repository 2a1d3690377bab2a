"""Static checks of docker-compose.yml and the Dockerfile (no Docker engine runs here)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
VM_MB = 512
# Limits are ceilings, not reservations: measured use is ~345 MB (docs/deploy.md); the
# ceilings must still leave the kernel and the Docker daemon room on a 512 MB VM.
OS_HEADROOM_MB = 48


def _mb(limit: str) -> float:
    m = re.fullmatch(r"(\d+)([mg])", limit)
    assert m, f"unparsable mem_limit {limit!r}"
    return int(m[1]) * (1024 if m[2] == "g" else 1)


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_every_service_is_bounded_restartable_and_known(compose: dict) -> None:
    services = compose["services"]
    expected = {"market-sim", "streamer", "indicators", "trade-executor", "health", "gateway"}
    assert expected <= set(services)
    for name, svc in services.items():
        assert "mem_limit" in svc, f"{name} has no memory limit"
        assert svc.get("restart") in ("unless-stopped", "no"), name
        if name in expected:
            assert svc["build"]["args"]["SERVICE"].startswith("streamdesk-"), name
            assert svc["command"][0] in (name, "trade-executor", "market-sim"), name


def test_default_stack_fits_the_vm(compose: dict) -> None:
    # Live production: no simulator, no bundled Postgres (Supabase), one-shot migrate exits.
    always = [
        svc
        for name, svc in compose["services"].items()
        if not svc.get("profiles") and name != "migrate"
    ]
    total = sum(_mb(svc["mem_limit"]) for svc in always)
    assert total <= VM_MB - OS_HEADROOM_MB, f"{total} MB of limits on a {VM_MB} MB VM"


def test_required_variables_and_ordering(compose: dict) -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    assert "${DATABASE_URL:?Variable not set}" in text
    streamer = compose["services"]["streamer"]
    assert streamer["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert streamer["depends_on"]["redis"]["condition"] == "service_healthy"
    for name in ("streamer", "indicators", "trade-executor"):
        test = compose["services"][name]["healthcheck"]["test"]
        assert test[1:4] == ["streamdesk", "health-check", "--component"], name
    for name, svc in compose["services"].items():
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} publicly"


def test_dockerfile_is_multistage_slim_and_non_root() -> None:
    text = (ROOT / "docker" / "Dockerfile").read_text()
    assert text.count("FROM ") >= 2 and "slim" in text
    assert "uv sync --frozen --no-dev --package" in text
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and all(not u.startswith(("root", "0")) for u in users)
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".env" in ignored and ".data" in ignored


def test_gateway_image_builds_the_dashboard_in_a_node_stage(compose: dict) -> None:
    text = (ROOT / "docker" / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+) AS (\S+)", text, re.M)
    names = [name for _, name in stages]
    # The default target (the last stage) stays the plain runtime for the other services.
    assert names[-1] == "runtime" and "gateway" in names
    node = [image for image, name in stages if name == "frontend"]
    assert node and node[0].startswith("node:20"), stages
    gateway = text.split("AS gateway", 1)[1].split("\nFROM ", 1)[0]
    assert "COPY --from=frontend" in gateway and "GATEWAY_STATIC_DIR=/app/frontend" in gateway
    assert compose["services"]["gateway"]["build"]["target"] == "gateway"
    for name, svc in compose["services"].items():
        if name != "gateway" and "build" in svc:
            assert svc["build"].get("target", "runtime") == "runtime", name
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert "frontend/node_modules" in ignored and "frontend/dist" in ignored
