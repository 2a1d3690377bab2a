"""The Schwab token file, without schwab-py: read, written safely, its age; the token errors.

Services that only need to know about the token (the gateway's status and operations panel,
the streamer's age warning) import this module instead of :mod:`streamdesk.schwab`, which
loads schwab-py, authlib and httpx2 (~18 MB of RSS). :mod:`streamdesk.schwab` re-exports
everything here.

The file is in schwab-py's own format (``{"creation_timestamp": ..., "token": {...}}``),
so ``schwab.auth.client_from_token_file`` can read it too.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from streamdesk.clock import SYSTEM_CLOCK, Clock
from streamdesk.errors import OperationalError

log = logging.getLogger(__name__)

#: Schwab refresh tokens live 7 days from the original login.
REFRESH_TOKEN_MAX_AGE = 7 * 24 * 3600


class TokenExpiredError(OperationalError):
    """The refresh token was refused (expired or revoked): a new login is needed.

    Services treat this as an operational error: stop cleanly and alert; retrying is useless.
    """


class TokenMissingError(OperationalError, FileNotFoundError):
    """No usable token file exists at the configured path."""


class TokenStore:
    """schwab-py's token file, read and written safely.

    ``write`` is atomic (temp file in the same directory + ``os.replace``), the file is mode
    0600, and writers serialize on an ``fcntl`` lock of a sidecar ``.lock`` file so that two
    processes refreshing at once never interleave.
    """

    def __init__(self, path: str | os.PathLike[str], *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.path = Path(path)
        self.clock = clock
        self._lock_path = self.path.with_name(self.path.name + ".lock")

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def read(self) -> dict[str, Any] | None:
        """The wrapped token (``{"creation_timestamp", "token"}``), or None if absent/corrupt."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            data = json.loads(raw)
        except ValueError:
            log.warning("token file %s is not valid JSON; ignoring it", self.path)
            return None
        if not isinstance(data, dict) or "token" not in data or "creation_timestamp" not in data:
            log.warning("token file %s is not in schwab-py's format; ignoring it", self.path)
            return None
        return data

    def write(self, token_dict: dict[str, Any], *_args: Any, **_kwargs: Any) -> None:
        """Atomically replace the file with ``token_dict`` (the wrapped format), mode 0600.

        Extra arguments are accepted (and ignored) so this can be schwab-py's token writer.
        """
        with self._locked():
            fd, tmp = tempfile.mkstemp(
                prefix=self.path.name + ".", suffix=".tmp", dir=self.path.parent
            )
            try:
                os.fchmod(fd, 0o600)
                with os.fdopen(fd, "w") as fh:
                    json.dump(token_dict, fh)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise

    def age_seconds(self) -> float | None:
        """Seconds since the original login (``creation_timestamp``), or None without a file."""
        data = self.read()
        if data is None:
            return None
        return self.clock.time() - float(data["creation_timestamp"])
