"""Group commit of SQLite identify work on the event loop.

On SQLite an identify call's statements take tens of microseconds, but its commit writes every
page it touched (the identity, its traits, the outbox rows, and each one's index pages) to the
write-ahead log in full: with integrations on, a commit per request cost about as much as the
rest of the request's database work. So requests that arrive together share a transaction: each
request's work is queued, and a callback scheduled on the event loop runs everything queued by
then in one transaction (each unit in a savepoint of its own, so that one request's failure
rolls back its writes alone) and commits once. No request is answered before that commit: what
is answered 200 is as durable as with a commit of its own, and when the commit fails every
request of the group gets the error.

The work runs on the event loop itself, as a lone request's did: on the database thread it
would have to win the interpreter's lock back from the event loop at every statement. When the
database is held, the group is tried again later, without holding up the event loop:

- by another writer of this process (the admin API, the WAL checkpointer): once it lets go
  (`IdentityStorePool.write_lock_released`), up to `BUSY_ATTEMPTS` times in a row;
- by another process (`ensign serve`'s delivery process recording a batch): after 0.5 to 2 ms,
  up to `FILE_BUSY_ATTEMPTS` times (about a second). SQLite's busy handler sleeps in steps of
  up to 100 ms, so waiting in it overshot the other writer's few milliseconds, and every
  request behind the group waited too.

After that many tries the group is handed to the database thread, which waits as long as it
takes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from ensign.storage.identity_pool import DatabaseBusy, IdentityStorePool

T = TypeVar("T")

# At most this many requests share one transaction (more wait for the next).
GROUP_MAX = 64
BUSY_ATTEMPTS = 20
# Tries again while another process holds the file: after 0.5 ms, then doubling to 2 ms.
FILE_BUSY_ATTEMPTS = 500
FILE_BUSY_FIRST_SECONDS = 0.0005
FILE_BUSY_CAP_SECONDS = 0.002


@dataclass(frozen=True)
class _Queued:
    work: Callable[[], Any]
    future: asyncio.Future[Any]


class GroupCommitter:
    """Groups the identify work of one event loop into shared transactions (see the module)."""

    def __init__(self, pool: IdentityStorePool, loop: asyncio.AbstractEventLoop) -> None:
        self._pool = pool
        self.loop = loop
        self._queued: list[_Queued] = []
        self._scheduled: asyncio.Handle | None = None
        self._busy_waits = 0
        # A wait for this process's other writer to let go of the database.
        self._waiting: asyncio.Future[None] | None = None
        # A group on the database thread: the next waits for it, so that groups commit in order.
        self._on_thread: asyncio.Future[Any] | None = None

    async def run(self, work: Callable[[], T]) -> T:
        future: asyncio.Future[Any] = self.loop.create_future()
        self._queued.append(_Queued(work, future))
        self._schedule()
        return cast(T, await future)

    def _schedule(self) -> None:
        if self._scheduled is not None or not self._queued:
            return
        if self._on_thread is not None or self._waiting is not None:
            return
        self._scheduled = self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = None
        # A request whose client went away (its task cancelled) is not run: nothing answers it.
        group = [q for q in self._queued[:GROUP_MAX] if not q.future.done()]
        del self._queued[:GROUP_MAX]
        if not group:
            self._schedule()
            return
        works = [q.work for q in group]
        try:
            outcomes = self._pool.inline(lambda: self._pool.run_group(works))
        except DatabaseBusy as busy:
            if busy.in_process and self._busy_waits < BUSY_ATTEMPTS:
                self._busy_waits += 1
                self._queued[:0] = group
                self._waiting = self.loop.create_task(self._pool.write_lock_released())
                self._waiting.add_done_callback(self._released)
                return
            if not busy.in_process and self._busy_waits < FILE_BUSY_ATTEMPTS:
                delay = min(FILE_BUSY_FIRST_SECONDS * 2**self._busy_waits, FILE_BUSY_CAP_SECONDS)
                self._busy_waits += 1
                self._queued[:0] = group
                self._waiting = self.loop.create_task(asyncio.sleep(delay))
                self._waiting.add_done_callback(self._released)
                return
            self._busy_waits = 0
            on_thread = self.loop.run_in_executor(self._pool.executor, self._pool.run_group, works)
            self._on_thread = on_thread
            on_thread.add_done_callback(lambda done: self._thread_done(group, done))
            return
        except BaseException as error:
            self._busy_waits = 0
            _settle_all(group, error)
        else:
            self._busy_waits = 0
            _settle(group, outcomes)
        self._schedule()

    def _released(self, waited: asyncio.Future[None]) -> None:
        self._waiting = None
        if not waited.cancelled():
            # Whatever ended the wait, the next try finds out how things are.
            waited.exception()
        self._schedule()

    def _thread_done(self, group: list[_Queued], done: asyncio.Future[Any]) -> None:
        self._on_thread = None
        if done.cancelled():
            _settle_all(group, asyncio.CancelledError())
        elif (error := done.exception()) is not None:
            _settle_all(group, error)
        else:
            _settle(group, done.result())
        self._schedule()


def _settle(group: list[_Queued], outcomes: list[tuple[bool, Any]]) -> None:
    for queued, (ok, value) in zip(group, outcomes, strict=True):
        if queued.future.done():
            continue
        if ok:
            queued.future.set_result(value)
        else:
            queued.future.set_exception(value)


def _settle_all(group: list[_Queued], error: BaseException) -> None:
    for queued in group:
        if not queued.future.done():
            queued.future.set_exception(error)
