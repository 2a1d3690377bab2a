"""``streamdesk operators``: who may trade in Supabase mode, and the anon market-data switch.

  streamdesk operators add USER_ID | --user-id UUID | --email EMAIL  [--note TEXT]
  streamdesk operators remove USER_ID | --user-id UUID | --email EMAIL
  streamdesk operators list [--json]
  streamdesk operators anon on | off | status [--json]

Operators are rows of ``public.operators`` (docs/supabase.md): row-level security lets only
them insert trades and read the account, and the executor rejects any other user's trade
(``not_operator``). A removal takes effect at the next statement. ``--email`` looks the user
up in ``auth.users``, which exists on Supabase only. ``anon off`` closes market data (tables
and the ``streamdesk:market`` Realtime topic) to the anon key; signed-in users keep it.

Exit codes: 0 done, 1 refused or failed (unknown user, not an operator, database
unreachable), 2 bad usage or configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from .config import CommonSettings, load_settings


class OperatorsError(Exception):
    """A refusal or failure with a message for the user (exit code 1)."""


class UsageError(OperatorsError):
    """The command line names no user or more than one (exit code 2)."""


@dataclass(frozen=True, slots=True)
class Operator:
    """One row of ``operators``."""

    user_id: uuid.UUID
    email: str | None
    note: str
    added_at: datetime
    added_by: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "user_id": str(self.user_id),
            "email": self.email,
            "note": self.note,
            "added_at": self.added_at.isoformat(),
            "added_by": self.added_by,
        }


_COLUMNS = "user_id, email, note, added_at, added_by"
_AUTH_USERS = "SELECT to_regclass('auth.users') IS NOT NULL"


def _op(row: asyncpg.Record) -> Operator:
    return Operator(row["user_id"], row["email"], row["note"], row["added_at"], row["added_by"])


async def _auth_users(conn: asyncpg.Connection) -> bool:
    return bool(await conn.fetchval(_AUTH_USERS))


async def resolve_user(
    conn: asyncpg.Connection, user_id: uuid.UUID | None, email: str | None
) -> tuple[uuid.UUID, str | None]:
    """The user id and email of the user named by ``user_id`` or ``email``.

    With ``auth.users`` (Supabase) the user must exist there; without it only an id works.
    """
    has_auth = await _auth_users(conn)
    if email is not None:
        if not has_auth:
            raise OperatorsError(
                "auth.users does not exist here (not a Supabase database): "
                "--email works on Supabase only; give the user's id instead"
            )
        rows = await conn.fetch(
            "SELECT id, email FROM auth.users WHERE lower(email) = lower($1) ORDER BY id", email
        )
        if not rows:
            raise OperatorsError(f"no Supabase user with email {email!r}")
        if len(rows) > 1:
            ids = ", ".join(str(r["id"]) for r in rows)
            raise OperatorsError(f"{len(rows)} users have email {email!r} ({ids}); give the id")
        return rows[0]["id"], rows[0]["email"]
    assert user_id is not None
    if not has_auth:
        return user_id, None
    found = await conn.fetchrow("SELECT id, email FROM auth.users WHERE id = $1", user_id)
    if found is None:
        raise OperatorsError(f"no Supabase user with id {user_id} (see Authentication > Users)")
    return found["id"], found["email"]


async def add_operator(
    conn: asyncpg.Connection,
    user_id: uuid.UUID | None = None,
    *,
    email: str | None = None,
    note: str | None = None,
) -> tuple[Operator, bool]:
    """Make a user an operator (or update the note of one); the row, and True if new.

    ``added_by`` records the database user that ran it."""
    uid, mail = await resolve_user(conn, user_id, email)
    row = await conn.fetchrow(
        f"""
        INSERT INTO operators (user_id, email, note, added_by)
        VALUES ($1, $2, coalesce($3, ''), current_user || ' (streamdesk operators add)')
        ON CONFLICT (user_id) DO UPDATE
            SET email = coalesce(EXCLUDED.email, operators.email),
                note = coalesce($3, operators.note)
        RETURNING {_COLUMNS}, (xmax = 0) AS inserted
        """,
        uid,
        mail,
        note,
    )
    assert row is not None
    return _op(row), bool(row["inserted"])


async def remove_operator(
    conn: asyncpg.Connection, user_id: uuid.UUID | None = None, *, email: str | None = None
) -> Operator:
    """Remove an operator; the removed row. :class:`OperatorsError` if they were not one."""
    if email is not None:
        # The stored email first: the user may have been deleted from auth.users already.
        rows = await conn.fetch(
            f"DELETE FROM operators WHERE lower(email) = lower($1) RETURNING {_COLUMNS}", email
        )
        if len(rows) > 1:
            raise OperatorsError(f"{len(rows)} operators have email {email!r}; give the id")
        if rows:
            return _op(rows[0])
        if not await _auth_users(conn):
            raise OperatorsError(f"no operator with email {email!r}")
        user_id, _mail = await resolve_user(conn, None, email)
    row = await conn.fetchrow(
        f"DELETE FROM operators WHERE user_id = $1 RETURNING {_COLUMNS}", user_id
    )
    if row is None:
        raise OperatorsError(f"{user_id} is not an operator")
    return _op(row)


async def list_operators(conn: asyncpg.Connection) -> list[Operator]:
    """Every operator, oldest first."""
    rows = await conn.fetch(f"SELECT {_COLUMNS} FROM operators ORDER BY added_at, user_id")
    return [_op(r) for r in rows]


async def set_anon_market_data(conn: asyncpg.Connection, enabled: bool) -> bool:
    """Open (True) or close the market data to the anon key; the previous value."""
    async with conn.transaction():
        old = await conn.fetchval("SELECT anon_market_data FROM control_state WHERE id FOR UPDATE")
        if old is None:
            raise OperatorsError("control_state has no row; run `streamdesk migrate`")
        # `version` grows with every change of the control plane (migrations/0070).
        await conn.execute(
            "UPDATE control_state SET anon_market_data = $1, version = version + 1 WHERE id",
            enabled,
        )
    return bool(old)


async def anon_market_data(conn: asyncpg.Connection) -> bool:
    """Whether anon may read market data now."""
    value = await conn.fetchval("SELECT anon_market_data FROM control_state WHERE id")
    return bool(value)


def format_table(operators: list[Operator]) -> str:
    """Operators as an aligned text table."""
    if not operators:
        return "no operators (streamdesk operators add --user-id UUID | --email EMAIL)"
    head = ("USER_ID", "EMAIL", "ADDED_AT", "ADDED_BY", "NOTE")
    rows = [
        (
            str(o.user_id),
            o.email or "-",
            o.added_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
            o.added_by,
            o.note,
        )
        for o in operators
    ]
    widths = [max(len(r[i]) for r in (head, *rows)) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    header = "  ".join(c.ljust(w) for c, w in zip(head, widths, strict=True)).rstrip()
    return "\n".join([header, *lines])


def _uuid(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text[:60]!r} is not a user id (a UUID such as 2f1c...-...)"
        ) from None


def _email(text: str) -> str:
    value = text.strip()
    if "@" not in value or len(value) > 320 or any(c.isspace() for c in value):
        raise argparse.ArgumentTypeError(f"{text[:60]!r} is not an email address")
    return value


def _who(text: str) -> uuid.UUID | str:
    return _email(text) if "@" in text else _uuid(text)


def _target(args: argparse.Namespace) -> tuple[uuid.UUID | None, str | None]:
    given = [v for v in (args.who, args.user_id, args.email) if v is not None]
    if len(given) != 1:
        raise UsageError("name exactly one user: USER_ID, --user-id UUID or --email EMAIL")
    if isinstance(args.who, uuid.UUID):
        return args.who, None
    if isinstance(args.who, str):
        return None, args.who
    return args.user_id, args.email


async def _run(args: argparse.Namespace, settings: CommonSettings) -> int:
    from .db import close_connection, connect

    conn = await connect(settings.database_url)
    try:
        action = args.action
        if action == "list":
            ops = await list_operators(conn)
            out = json.dumps([o.as_dict() for o in ops], indent=2) if args.json else None
            print(out if out is not None else format_table(ops))
        elif action == "add":
            uid, email = _target(args)
            op, new = await add_operator(conn, uid, email=email, note=args.note)
            who = f"{op.user_id}" + (f" ({op.email})" if op.email else "")
            print(f"{who} is now an operator" if new else f"{who} was an operator already")
        elif action == "remove":
            uid, email = _target(args)
            op = await remove_operator(conn, uid, email=email)
            who = f"{op.user_id}" + (f" ({op.email})" if op.email else "")
            print(f"{who} is no longer an operator")
        elif action == "anon":
            if args.switch == "status":
                on = await anon_market_data(conn)
            else:
                on = args.switch == "on"
                await set_anon_market_data(conn, on)
            if args.json:
                print(json.dumps({"anon_market_data": on}))
            else:
                state = "open to" if on else "closed to"
                print(f"market data is {state} the anon key")
    finally:
        await close_connection(conn)
    return 0


def run(args: argparse.Namespace) -> int:
    """Entry point of the subcommand: 0, or 1 with a message on stderr."""
    settings = load_settings(CommonSettings)
    try:
        return asyncio.run(_run(args, settings))
    except UsageError as exc:
        print(f"streamdesk operators {args.action}: {exc}", file=sys.stderr)
        return 2
    except OperatorsError as exc:
        print(f"streamdesk operators: {exc}", file=sys.stderr)
        return 1
    except asyncpg.UndefinedTableError as exc:
        print(f"streamdesk operators: {exc}; run `streamdesk migrate` first", file=sys.stderr)
        return 1
    except asyncpg.UndefinedColumnError as exc:
        print(f"streamdesk operators: {exc}; run `streamdesk migrate` first", file=sys.stderr)
        return 1
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        print(f"streamdesk operators: database error: {exc}", file=sys.stderr)
        return 1


def register(subparsers: Any) -> None:
    """Add ``operators`` to the ``streamdesk`` CLI."""
    p = subparsers.add_parser(
        "operators",
        help="who may trade (Supabase users in `operators`); the anon market-data switch",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="action", required=True)
    for name, text in (("add", "make a user an operator"), ("remove", "remove an operator")):
        q = sub.add_parser(name, help=text)
        q.add_argument("who", nargs="?", type=_who, help="the user's id (UUID) or email")
        q.add_argument("--user-id", type=_uuid, help="the user's id (auth.users.id, JWT sub)")
        q.add_argument("--email", type=_email, help="the user's email (Supabase only)")
        if name == "add":
            q.add_argument("--note", default=None, help="a note kept with the row")
        q.set_defaults(func=run)
    q = sub.add_parser("list", help="list the operators")
    q.add_argument("--json", action="store_true", help="print JSON")
    q.set_defaults(func=run)
    q = sub.add_parser("anon", help="open or close market data to the anon key")
    q.add_argument("switch", choices=["on", "off", "status"])
    q.add_argument("--json", action="store_true", help="print JSON")
    q.set_defaults(func=run)
