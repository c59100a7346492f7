"""One writing service per bundles directory: an exclusive lock held for the process's lifetime.

Like PostgreSQL's postmaster.pid or Elasticsearch's node.lock: `<bundles>/serve.lock` is locked with
flock(2) by the service that writes, and names its pid. The kernel drops the lock when the process
ends, however it ends, so a `kill -9` leaves nothing stale behind.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from embeddings.errors import WriterLockedError

LOCK_FILE = "serve.lock"


class WriterLock:
    """The held lock of one bundles directory; `release` (or the process's end) lets it go."""

    def __init__(self, bundles: Path) -> None:
        bundles.mkdir(parents=True, exist_ok=True)
        self.path = bundles / LOCK_FILE
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise WriterLockedError(
                f"another related-articles serve (pid {holder}) writes to this bundles directory; "
                "one service per bundles directory (stop it first, or give this one its own --bundles)"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd: int | None = fd

    def release(self) -> None:
        """Let the lock go (closing the file drops it)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
