"""``streamdesk auth``: token status, and the paper login against market-sim."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path
from typing import Any

import pytest

from streamdesk import cli_auth
from streamdesk.cli import build_parser
from streamdesk.config import CommonSettings, load_settings


def settings_for(path: Path, **kw: Any) -> CommonSettings:
    return load_settings(CommonSettings, schwab_token_path=path, **kw)


@pytest.mark.unit
def test_status_missing_fresh_old_expired(tmp_path: Path) -> None:
    path = tmp_path / "token.json"
    s = settings_for(path)
    code, line = cli_auth.token_status(s)
    assert code == 1 and "no Schwab token" in line
    now = time.time()
    for days, want_code, words in [
        (1, 0, "expires in 6.0 days"),
        (5.5, 0, "WARNING"),
        (7.2, 1, "EXPIRED"),
    ]:
        body = {"creation_timestamp": now - days * 86400, "token": {"access_token": "a"}}
        path.write_text(json.dumps(body))
        code, line = cli_auth.token_status(s, now=now)
        assert code == want_code and words in line, line
        assert "access_token" not in line and '"a"' not in line  # never print a token


@pytest.mark.unit
def test_auth_subcommand_is_registered() -> None:
    args = build_parser().parse_args(["auth", "--status"])
    assert args.status is True and args.func is cli_auth._run


@pytest.mark.integration
def test_paper_login_writes_a_private_token(market_sim: Any, tmp_path: Path) -> None:
    s = load_settings(CommonSettings, **market_sim.settings_overrides(tmp_path))
    assert cli_auth._login(s) == 0
    path = Path(s.schwab_token_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = json.loads(path.read_text())
    assert data["token"]["refresh_token"] and data["creation_timestamp"] <= time.time()
    first = data["token"]["access_token"]
    assert cli_auth._login(s) == 0  # logging in again replaces the token
    assert json.loads(path.read_text())["token"]["access_token"] != first
