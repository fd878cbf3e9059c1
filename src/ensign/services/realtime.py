"""Realtime updates: the open streams of this process, and the one watcher that wakes them.

The watcher adds no query. The snapshot cache's revision check (every
`cache_poll_interval_seconds`, and at once after a change made in this process) reports the
environments whose snapshots it dropped; for those with listeners the hub loads the new
snapshot, so that a document fetched from this process right after is already the new one,
and wakes their listeners with its `updated_at`. A listener is an asyncio event on the
server's loop, never a thread, and an environment nobody listens to costs nothing.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from ensign.errors import AtCapacity
from ensign.services.snapshots import Snapshot, SnapshotCache

# The path the official SDKs build from `realtime_api_url` (contract: realtime), for any
# surface that points clients at the stream.
STREAM_PATH = "/sse/environments/{key}/stream"

# A stream refused for capacity is worth retrying after this long.
CAPACITY_RETRY_AFTER_SECONDS = 5
# After a failed snapshot load (the database is away), try again this much later.
RELOAD_RETRY_SECONDS = 1.0


def stamp(snapshot: Snapshot) -> float:
    """The document's `updated_at` as epoch seconds: what the stream sends.

    A float keeps microseconds exactly for any date SDKs will see, so an SDK that maps it back
    to a datetime gets the document's own `updated_at` and re-fetches only when it is newer.
    """
    return snapshot.updated_at.timestamp()


@dataclass(eq=False)
class Listener:
    """One open stream: `pending` is the `updated_at` to send next, `closed` says stop."""

    environment_id: int
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    pending: float | None = None
    closed: bool = False

    def notify(self, updated_at: float) -> None:
        self.pending = updated_at
        self.wake.set()

    def end(self) -> None:
        self.closed = True
        self.wake.set()


class RealtimeHub:
    """Listeners by environment, at most `max_connections` of them in this process.

    Each change is announced twice: at once, and again `repeat_after_seconds` later. An SDK
    behind a load balancer may fetch the document from a process that has not yet seen the
    change; the second announcement, made once every process has, makes it fetch again. An
    SDK that is already up to date ignores it (it compares the value with its document's).
    """

    def __init__(
        self, cache: SnapshotCache, *, max_connections: int, repeat_after_seconds: float
    ) -> None:
        self._cache = cache
        self._max_connections = max_connections
        self._repeat_after = repeat_after_seconds
        self._listeners: dict[int, set[Listener]] = {}
        self._latest: dict[int, float] = {}
        self._refreshing: set[int] = set()
        self._again: set[int] = set()
        self._count = 0
        self._closing = False
        self._loop: asyncio.AbstractEventLoop | None = None
        cache.observe(self._changed_elsewhere)

    @property
    def connections(self) -> int:
        return self._count

    def start(self) -> None:
        """Attach to the running event loop (the server's), and accept listeners."""
        self._loop = asyncio.get_running_loop()
        self._closing = False

    def close(self) -> None:
        """End every stream (the server is shutting down) and accept no more."""
        self._closing = True
        for listeners in self._listeners.values():
            for listener in listeners:
                listener.end()

    def subscribe(self, snapshot: Snapshot) -> Listener:
        """A listener for the snapshot's environment, told its current `updated_at` at once."""
        if self._closing or self._loop is None or self._count >= self._max_connections:
            raise AtCapacity(
                "Too many realtime streams are open on this server; try again later.",
                retry_after_seconds=CAPACITY_RETRY_AFTER_SECONDS,
            )
        env_id = snapshot.environment_id
        listener = Listener(env_id)
        self._listeners.setdefault(env_id, set()).add(listener)
        self._count += 1
        listener.notify(self._latest.setdefault(env_id, stamp(snapshot)))
        if self._cache.cached(env_id) is not snapshot:
            # The cache dropped this snapshot before the listener existed, so the change that
            # dropped it was not announced here; nor would a later one be, until it is reloaded.
            self._refresh_soon(env_id)
        return listener

    def unsubscribe(self, listener: Listener) -> None:
        listeners = self._listeners.get(listener.environment_id)
        if listeners is None or listener not in listeners:
            return
        listeners.discard(listener)
        self._count -= 1
        if not listeners:
            del self._listeners[listener.environment_id]
            self._latest.pop(listener.environment_id, None)

    # --- the watcher ------------------------------------------------------------------------

    def _changed_elsewhere(self, environment_ids: set[int]) -> None:
        """Called by the cache on the thread that ran its check: hop onto the loop."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(self._changed, environment_ids)
        except RuntimeError:  # the loop closed in between: the server is gone
            return

    def _changed(self, environment_ids: set[int]) -> None:
        for env_id in environment_ids & self._listeners.keys():
            self._refresh_soon(env_id)

    def _refresh_soon(self, env_id: int) -> None:
        if env_id in self._refreshing:
            self._again.add(env_id)  # a change landed while loading: load once more after
            return
        assert self._loop is not None
        self._refreshing.add(env_id)
        self._loop.create_task(self._refresh(env_id))

    async def _refresh(self, env_id: int) -> None:
        try:
            snapshot = self._cache.cached(env_id)
            if snapshot is None:
                snapshot = await asyncio.to_thread(self._cache.for_id, env_id)
        except Exception:
            # The database is away; the listeners keep their last value until it is back.
            assert self._loop is not None
            self._loop.call_later(RELOAD_RETRY_SECONDS, self._changed, {env_id})
            snapshot = None
            ended = False
        else:
            ended = snapshot is None
        finally:
            self._refreshing.discard(env_id)
        if ended:
            # Deleted (or being re-imported): end its streams; a reconnecting SDK learns why.
            for listener in self._listeners.get(env_id, ()):
                listener.end()
        elif snapshot is not None:
            self._announce(env_id, stamp(snapshot))
        if env_id in self._again:
            self._again.discard(env_id)
            self._refresh_soon(env_id)

    def _announce(self, env_id: int, updated_at: float, *, repeat: bool = False) -> None:
        listeners = self._listeners.get(env_id)
        if not listeners or (updated_at == self._latest.get(env_id) and not repeat):
            return
        self._latest[env_id] = updated_at
        for listener in listeners:
            listener.notify(updated_at)
        if not repeat and self._loop is not None:
            self._loop.call_later(self._repeat_after, self._repeat, env_id, updated_at)

    def _repeat(self, env_id: int, updated_at: float) -> None:
        if self._latest.get(env_id) == updated_at and not self._closing:
            self._announce(env_id, updated_at, repeat=True)
