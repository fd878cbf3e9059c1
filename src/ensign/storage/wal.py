"""SQLite's write-ahead log: checkpoints that never stall the identify path, and truncation
once the log has grown past a size.

A PASSIVE checkpoint copies what it can into the database without waiting for anyone, but
SQLite never shrinks the `-wal` file by itself: after a burst (a vendor outage filling the
outbox, an import) it keeps its largest size for good. Once a PASSIVE checkpoint has copied
the whole log and the file is larger than the limit, a TRUNCATE checkpoint empties it. That
one waits for readers and writers, so it runs only when this process's writers' lock is free
(taken without waiting), with a busy timeout of a few milliseconds for other processes, and
is simply tried again on the next round when anything is busy.
"""

from __future__ import annotations

import os
import threading
from typing import Any

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
# How long a TRUNCATE checkpoint may wait for another process's reader or writer.
TRUNCATE_BUSY_TIMEOUT_MS = 20


class Checkpointer:
    """Checkpoints one SQLite file on a dedicated raw connection (see the module's doc)."""

    def __init__(
        self,
        connection: Any,
        path: str | None,
        max_bytes: int,
        write_lock: threading.Lock | None,
    ) -> None:
        self._connection = connection
        self._wal_path = f"{path}-wal" if path and path != ":memory:" else None
        self._max_bytes = max_bytes
        self._write_lock = write_lock
        # The connection is the checkpointer's alone: its busy handler only delays TRUNCATE.
        connection.cursor().execute(f"PRAGMA busy_timeout={TRUNCATE_BUSY_TIMEOUT_MS}")

    def wal_bytes(self) -> int:
        if self._wal_path is None:
            return 0
        try:
            return os.path.getsize(self._wal_path)
        except OSError:
            return 0

    def run(self) -> bool:
        """One round: a PASSIVE checkpoint, then a TRUNCATE one if the log is fully copied
        and too large. Answers whether the log was truncated."""
        # PASSIVE never blocks writers: it copies what it can and leaves the rest.
        busy, log_frames, copied = self._checkpoint("PASSIVE")
        if busy or log_frames != copied or self.wal_bytes() <= self._max_bytes:
            return False
        lock = self._write_lock
        if lock is not None and not lock.acquire(blocking=False):
            return False
        try:
            busy, _, _ = self._checkpoint("TRUNCATE")
        finally:
            if lock is not None:
                lock.release()
        return not busy

    def _checkpoint(self, mode: str) -> tuple[int, int, int]:
        cursor = self._connection.cursor()
        try:
            row = cursor.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        finally:
            cursor.close()
        return int(row[0]), int(row[1]), int(row[2])
