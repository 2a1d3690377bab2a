"""Unit tests of the executor's SQL: every status word is a TradeStatus value."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import streamdesk_executor
from streamdesk.models import TradeStatus
from streamdesk_executor import sql

pytestmark = pytest.mark.unit

PACKAGE = Path(streamdesk_executor.__file__).parent
STATUSES = {s.value for s in TradeStatus}
# `status = 'x'`, `status <> 'x'`, `status IN ('x', 'y')` (any alias, any case)
_COMPARISON = re.compile(r"status\s*(?:=|<>|!=)\s*'([^']*)'", re.IGNORECASE)
_IN_LIST = re.compile(r"status\s+IN\s*\(([^)]*)\)", re.IGNORECASE)


def _status_literals(text: str) -> list[str]:
    found = _COMPARISON.findall(text)
    for group in _IN_LIST.findall(text):
        found += re.findall(r"'([^']*)'", group)
    return found


def _statements() -> dict[str, str]:
    return {n: v for n, v in vars(sql).items() if n.isupper() and isinstance(v, str)}


def test_statements_compare_status_only_with_trade_status_values() -> None:
    seen: set[str] = set()
    for name, text in _statements().items():
        literals = _status_literals(text)
        assert set(literals) <= STATUSES, (name, literals)
        seen.update(literals)
    # the pattern does find them (a test that matched nothing would pass for any SQL)
    assert seen >= {"pending", "submitting", "working", "unknown", "cancel_requested"}


def test_no_status_literal_is_typed_in_the_package_source() -> None:
    """Status words in SQL come from TradeStatus (sql_list / f-strings), never as typed text,
    and no Python string literal anywhere in the package spells a status in SQL."""
    for path in sorted(PACKAGE.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                assert _status_literals(node.value) == [], (path.name, node.value)


def test_sql_list_and_unsettled() -> None:
    assert sql.sql_list(TradeStatus.PENDING, TradeStatus.UNKNOWN) == "'pending', 'unknown'"
    assert set(sql.UNSETTLED) == {"submitting", "working", "unknown", "cancel_requested"}
    assert "status IN ('submitting', 'working', 'unknown', 'cancel_requested')" in sql.CLAIM
