"""The queue rows a process's dispatchers hold, on SQLite.

SQLite runs one dispatcher process (`ensign serve`'s, or one `ensign worker`), so rows are
claimed in memory rather than by rewriting them: a plain SELECT skips the ids held here, and a
crashed process holds nothing, so its rows are due again at once.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence

from ensign.storage.db import Database


class LocalClaims:
    """The ids held, per integration; shared by the dispatchers of one process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[int, set[int]] = {}

    def held(self, integration_id: int) -> list[int]:
        with self._lock:
            return list(self._held.get(integration_id, ()))

    def take(self, integration_id: int, ids: Sequence[int]) -> list[int]:
        """Hold those of `ids` nobody holds; answers them."""
        with self._lock:
            held = self._held.setdefault(integration_id, set())
            taken = [i for i in ids if i not in held]
            held.update(taken)
            return taken

    def release(self, integration_id: int, ids: Sequence[int]) -> None:
        with self._lock:
            held = self._held.get(integration_id)
            if held is not None:
                held.difference_update(ids)


_LOCAL_CLAIMS: weakref.WeakKeyDictionary[Database, LocalClaims] = weakref.WeakKeyDictionary()
_LOCAL_CLAIMS_LOCK = threading.Lock()


def local_claims(db: Database) -> LocalClaims:
    """The in-memory claims shared by every dispatcher of this process on `db`."""
    with _LOCAL_CLAIMS_LOCK:
        claims = _LOCAL_CLAIMS.get(db)
        if claims is None:
            claims = _LOCAL_CLAIMS[db] = LocalClaims()
        return claims
