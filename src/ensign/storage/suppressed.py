"""Counting identify calls whose flags were not recorded because they had not changed.

Adding to an integration's counter in every identify transaction would make every identify
call of an environment wait on that one row's lock (PostgreSQL) and cost a statement each; so
the counts are added up in memory and written by an identify transaction at most once every
`FLUSH_SECONDS`, in one statement per integration (and at shutdown). A crash loses at most that
many seconds of counts, never a delivery.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping

FLUSH_SECONDS = 1.0


class SuppressedTally:
    """This process's suppressed counts not yet written, per integration id."""

    def __init__(self, flush_seconds: float = FLUSH_SECONDS) -> None:
        self._lock = threading.Lock()
        self._counts: dict[int, int] = {}
        self._flush_seconds = flush_seconds
        self._last_flush = time.monotonic()

    def add(self, counts: Mapping[int, int]) -> None:
        with self._lock:
            for integration_id, count in counts.items():
                self._counts[integration_id] = self._counts.get(integration_id, 0) + count

    def take(self, *, force: bool = False) -> dict[int, int]:
        """The counts to write now (emptied here): all of them when `FLUSH_SECONDS` have
        passed since the last write or with `force`, else none."""
        with self._lock:
            now = time.monotonic()
            if not self._counts or (not force and now - self._last_flush < self._flush_seconds):
                return {}
            taken, self._counts = self._counts, {}
            self._last_flush = now
            return taken

    def pending(self, integration_id: int) -> int:
        """Counted in this process but not written yet: readers add it to the stored count."""
        with self._lock:
            return self._counts.get(integration_id, 0)
