"""``streamdesk operators``: add, remove, list, the anon switch, and clear refusals."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid

import asyncpg
import pytest
from streamdesk_dev.localservers import free_port

from streamdesk.cli import main as cli_main

pytestmark = pytest.mark.integration

ALICE = uuid.UUID("0c000000-0000-4000-8000-00000000a11c")
BOB = uuid.UUID("0c000000-0000-4000-8000-000000000b0b")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli_main(["operators", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _fetch(url: str, sql: str) -> list[asyncpg.Record]:
    """Run ``sql`` as the owner (the CLI runs its own event loop: these tests are sync)."""

    async def go() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(url)
        try:
            return await conn.fetch(sql)
        finally:
            await conn.close()

    return asyncio.run(go())


@pytest.fixture
def url(db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DATABASE_URL", db_url)
    return db_url


def test_add_list_remove(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "list")[1].startswith("no operators")
    code, out, _ = run(capsys, "add", str(ALICE), "--note", "owner, laptop")
    assert code == 0 and out.strip() == f"{ALICE} is now an operator"
    code, out, _ = run(capsys, "add", "--user-id", str(BOB))
    assert code == 0
    code, out, _ = run(capsys, "add", str(ALICE))  # again: kept, note unchanged
    assert code == 0 and "was an operator already" in out

    code, out, _ = run(capsys, "list")
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ["USER_ID", "EMAIL", "ADDED_AT", "ADDED_BY", "NOTE"]
    assert [line.split()[0] for line in lines[1:]] == [str(ALICE), str(BOB)]
    assert lines[1].rstrip().endswith("owner, laptop")
    code, out, _ = run(capsys, "list", "--json")
    listed = json.loads(out)
    assert [o["user_id"] for o in listed] == [str(ALICE), str(BOB)]
    assert listed[0]["note"] == "owner, laptop" and listed[0]["email"] is None
    assert listed[0]["added_by"] == "postgres (streamdesk operators add)"

    code, out, _ = run(capsys, "remove", str(BOB))
    assert code == 0 and out.strip() == f"{BOB} is no longer an operator"
    code, out, err = run(capsys, "remove", "--user-id", str(BOB))
    assert code == 1 and err.strip() == f"streamdesk operators: {BOB} is not an operator"
    rows = _fetch(url, "SELECT user_id FROM operators")
    assert [r[0] for r in rows] == [ALICE]


def test_email_needs_supabase_auth_users(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "add", "--email", "alice@example.test")
    assert code == 1 and "auth.users does not exist" in err and "--email works on Supabase" in err
    # what Supabase has: auth.users(id, email, ...)
    _fetch(url, "CREATE TABLE auth.users (id uuid PRIMARY KEY, email text)")
    _fetch(
        url,
        f"INSERT INTO auth.users VALUES ('{ALICE}', 'Alice@Example.test'), ('{BOB}', NULL)",
    )
    code, out, _ = run(capsys, "add", "alice@example.test")  # case-insensitive, positional
    assert code == 0 and out.strip() == f"{ALICE} (Alice@Example.test) is now an operator"
    code, _, err = run(capsys, "add", "--email", "nobody@example.test")
    assert code == 1 and "no Supabase user with email 'nobody@example.test'" in err
    stray = uuid.UUID(int=7)
    code, _, err = run(capsys, "add", str(stray))
    assert code == 1 and f"no Supabase user with id {stray}" in err
    code, out, _ = run(capsys, "remove", "--email", "ALICE@example.test")
    assert code == 0 and "is no longer an operator" in out
    assert _fetch(url, "SELECT * FROM operators") == []


def test_anon_switch(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    version = (_fetch(url, "SELECT version FROM control_state"))[0][0]
    assert run(capsys, "anon", "status")[1].strip() == "market data is open to the anon key"
    code, out, _ = run(capsys, "anon", "off")
    assert code == 0 and out.strip() == "market data is closed to the anon key"
    state = (_fetch(url, "SELECT anon_market_data, version FROM control_state"))[0]
    assert state["anon_market_data"] is False and state["version"] == version + 1
    assert json.loads(run(capsys, "anon", "status", "--json")[1]) == {"anon_market_data": False}
    assert run(capsys, "anon", "on")[0] == 0
    assert (_fetch(url, "SELECT streamdesk_anon_market_data()"))[0][0] is True


def test_bad_usage_exits_2_without_a_traceback(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv, message in (
        (["add", "not-a-uuid"], "is not a user id"),
        (["add", "--user-id", "1234"], "is not a user id"),
        (["add", "--email", "no at sign"], "is not an email address"),
        (["anon", "maybe"], "invalid choice"),
    ):
        with pytest.raises(SystemExit) as exc:
            cli_main(["operators", *argv])
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (argv, err)
    for argv in (["add"], ["remove", str(ALICE), "--email", "a@b.c"]):
        code, _, err = run(capsys, *argv)
        assert code == 2 and "name exactly one user" in err


def test_unmigrated_database(
    empty_db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", empty_db_url)
    code, _, err = run(capsys, "list")
    assert code == 1 and "run `streamdesk migrate` first" in err


def test_database_unreachable_in_a_real_process() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["DATABASE_URL"] = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
    for argv, code, message in (
        (["operators", "list"], 1, "streamdesk operators: database error:"),
        (["operators", "add", "zzz"], 2, "'zzz' is not a user id"),
    ):
        res = subprocess.run(
            [sys.executable, "-m", "streamdesk.cli", *argv],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert res.returncode == code, res.stderr
        assert message in res.stderr and "Traceback" not in res.stderr, res.stderr
