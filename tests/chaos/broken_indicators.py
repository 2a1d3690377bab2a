"""Test-only: the real ``indicators`` entry point with a deliberately broken writer, so the
chaos checker can be shown to catch what it exists to catch (test_chaos_checker.py).

``CHAOS_BROKEN_WRITER`` selects the bug (nothing of this exists in production code):

* ``drop_batch``: commits number 6 to 12 (~3.5 s) return without writing anything; the service
  then acknowledges their entries as if they were committed: rows are lost.
* ``accumulating_upsert``: the merge that rewrites a provisional row (a second still open at
  the previous flush) adds the new volume to the stored one instead of replacing it, a
  non-idempotent upsert: the volume of those seconds is counted twice.
"""

from __future__ import annotations

import os
import re
import sys

from streamdesk_indicators import writer
from streamdesk_indicators.__main__ import main

MODE = os.environ["CHAOS_BROKEN_WRITER"]

if MODE == "drop_batch":
    _commit = writer.Writer.commit
    _count = [0]

    async def _dropping_commit(self: writer.Writer, batch: writer.Batch) -> None:
        _count[0] += 1
        if 6 <= _count[0] <= 12:
            return  # "committed": the caller acknowledges the entries
        await _commit(self, batch)

    writer.Writer.commit = _dropping_commit  # type: ignore[method-assign]
elif MODE == "accumulating_upsert":
    _merge_sql = writer._merge_sql
    _RIGHT = "price = EXCLUDED.price, volume = EXCLUDED.volume"

    def _accumulating(stmt: str) -> str:
        if _RIGHT not in stmt:
            return stmt
        target = re.match(r"\s*INSERT INTO (\w+)", stmt)
        assert target is not None, stmt
        wrong = f"price = EXCLUDED.price, volume = {target[1]}.volume + EXCLUDED.volume"
        return stmt.replace(_RIGHT, wrong)

    def _accumulating_merge_sql() -> list[str]:
        stmts = _merge_sql()
        assert any(_RIGHT in q for q in stmts), "writer's merge SQL changed: update this test"
        return [_accumulating(q) for q in stmts]

    writer._merge_sql = _accumulating_merge_sql
else:
    raise SystemExit(f"unknown CHAOS_BROKEN_WRITER {MODE!r}")

if __name__ == "__main__":
    sys.exit(main())
