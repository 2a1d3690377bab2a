"""Test-only: the real ``indicators`` entry point with a deliberately broken writer, so the
chaos checker can be shown to catch what it exists to catch (test_chaos_checker.py).

``CHAOS_BROKEN_WRITER`` selects the bug (nothing of this exists in production code):

* ``drop_batch``: commits number 6 and 7 return without writing anything, and the service
  then acknowledges their entries as if they were committed: rows are lost.
* ``replay_committed``: the first run crashes between COMMIT and XACK after its 6th commit
  (the service's own ``TEST_CRASH_AFTER_COMMIT`` hook); every run forgets the committed
  stream offset, so the restarted process processes the committed-but-unacknowledged
  entries a second time on top of the state that already holds them: ticks are duplicated.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from streamdesk_indicators import service, writer
from streamdesk_indicators.__main__ import main

MODE = os.environ["CHAOS_BROKEN_WRITER"]

if MODE == "drop_batch":
    _commit = writer.Writer.commit
    _count = [0]

    async def _dropping_commit(self: writer.Writer, batch: writer.Batch) -> None:
        _count[0] += 1
        if _count[0] in (6, 7):
            return  # "committed": the caller acknowledges the entries
        await _commit(self, batch)

    writer.Writer.commit = _dropping_commit  # type: ignore[method-assign]
elif MODE == "replay_committed":
    _init = service.PartitionWorker.__init__

    def _forgetful_init(self: service.PartitionWorker, *args: Any, **kwargs: Any) -> None:
        _init(self, *args, **kwargs)
        self.committed = (0, 0)  # nothing counts as committed: pending entries are replayed

    service.PartitionWorker.__init__ = _forgetful_init  # type: ignore[method-assign]
    marker = Path(os.environ["CHAOS_DIR"]) / "broken-indicators-crashed"
    if not marker.exists():
        marker.touch()
        os.environ["TEST_CRASH_AFTER_COMMIT"] = "6"
else:
    raise SystemExit(f"unknown CHAOS_BROKEN_WRITER {MODE!r}")

if __name__ == "__main__":
    sys.exit(main())
