"""The identify path's units of work: transactions on raw driver connections, on dedicated
threads (or inline on the event loop, for SQLite), with `identities.IdentityStore`'s statements.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError

from ensign.errors import DatabaseUnavailable
from ensign.storage import faults, wal
from ensign.storage.db import Database
from ensign.storage.identities import IdentityStore
from ensign.storage.suppressed import SuppressedTally

T = TypeVar("T")

# How long work on the event loop waits in SQLite's busy handler for another process's writer:
# not at all (the event loop would stall); `group_commit` tries again a moment later.
INLINE_BUSY_TIMEOUT_MS = 0


class DatabaseBusy(Exception):
    """Another writer holds the database; nothing was written. `in_process`: the writer is
    one of this process's (it holds `Database.write_lock`), so `write_lock_released` says
    when to try again."""

    def __init__(self, *, in_process: bool = False) -> None:
        super().__init__("the database is locked by another writer")
        self.in_process = in_process


class IdentityStorePool:
    """Runs identify-path units of work on dedicated threads.

    SQLite takes one writer at a time, so its work runs on a single thread with a single
    connection: requests queue in order instead of contending for the file lock. PostgreSQL
    gets a pool of threads, each with its own connection. An identify transaction there is
    mostly waiting for the server's answers (one round trip per statement), so the number of
    threads bounds what one process can do: with 8, the threads spent three quarters of their
    time waiting and a process ran at about half of SQLite's rate (bench/scale.py).
    """

    def __init__(
        self, db: Database, *, threads: int = 16, wal_max_bytes: int = wal.DEFAULT_MAX_BYTES
    ) -> None:
        self._db = db
        self._wal_max_bytes = wal_max_bytes
        self._is_pg = not db.is_sqlite
        # The driver module (sqlite3 or psycopg), whose exceptions the raw connections raise.
        self._dbapi: Any = db.engine.dialect.dbapi
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=threads if self._is_pg else 1, thread_name_prefix="ensign-db"
        )
        self._local = threading.local()
        # One thread waits for the process's write lock on behalf of every request that found
        # it held (see `write_lock_released`).
        self._lock_waiter = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="ensign-db-wait"
        )
        self._released: asyncio.Future[None] | None = None
        self._checkpointer: threading.Thread | None = None
        self._stopping = threading.Event()
        self.suppressed = SuppressedTally()

    @property
    def is_postgres(self) -> bool:
        return self._is_pg

    @property
    def executor(self) -> concurrent.futures.ThreadPoolExecutor:
        return self._executor

    @property
    def runs_inline(self) -> bool:
        """SQLite work takes tens of microseconds: cheaper to do on the event loop than to hand
        to a thread, as long as it never waits for a lock there (see `inline`)."""
        return not self._is_pg

    def inline(self, work: Callable[[], T]) -> T:
        """Run `work` on the calling thread with a short lock wait; `DatabaseBusy` if another
        writer holds the database, so the caller can queue it on the database thread instead."""
        self._local.inline = True
        try:
            return work()
        finally:
            self._local.inline = False

    async def write_lock_released(self) -> None:
        """Wait, without holding up the event loop, until this process's other writer (an
        admin write, a checkpoint) lets go of the write lock.

        Inline work that found the lock held waits here and runs inline again, rather than
        moving to the database thread: once there, every request after it queued behind it
        (the thread holds the lock while it has work), and each paid a hand-over between
        threads and their contention for the GIL. With delivery inside `serve`'s own process (as
        it was then), a third of that process's time went there (bench/integrations.py, README
        "Performance")."""
        lock = self._db.write_lock
        if lock is None:
            return
        if self._released is None or self._released.done():
            loop = asyncio.get_running_loop()
            self._released = loop.run_in_executor(self._lock_waiter, _wait_for, lock)
        # Shared by every waiter: one cancelled request must not cancel the others' wait.
        await asyncio.shield(self._released)

    def _connection(self) -> Any:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._db.engine.raw_connection()
            if getattr(self._local, "inline", False):
                connection.cursor().execute(f"PRAGMA busy_timeout={INLINE_BUSY_TIMEOUT_MS}")
            if not self._is_pg:
                # Checkpoints fsync the database file; run inside a request they stall every
                # queued request behind it, so the checkpointer thread does them instead.
                connection.cursor().execute("PRAGMA wal_autocheckpoint=0")
                self._start_checkpointer()
            self._local.connection = connection
        return connection

    def _start_checkpointer(self) -> None:
        if self._checkpointer is None:
            self._checkpointer = threading.Thread(
                target=self._checkpoint_loop, name="ensign-checkpoint", daemon=True
            )
            self._checkpointer.start()

    def _checkpoint_loop(self) -> None:
        connection = self._db.engine.raw_connection()
        checkpointer = wal.Checkpointer(
            connection, self._db.engine.url.database, self._wal_max_bytes, self._db.write_lock
        )
        try:
            while not self._stopping.wait(0.5):
                try:
                    checkpointer.run()
                except Exception:
                    continue
        finally:
            connection.close()

    @contextmanager
    def _writer_lock(self, write: bool) -> Iterator[None]:
        """On SQLite a write waits for the process's other writers (admin writes, the WAL
        checkpointer) on their lock rather than in SQLite's busy handler, which sleeps in steps
        of up to 100 ms. Inline work never waits for it: it is `DatabaseBusy` at once."""
        lock = self._db.write_lock if write else None
        if lock is None:
            yield
            return
        if getattr(self._local, "inline", False):
            if not lock.acquire(blocking=False):
                raise DatabaseBusy(in_process=True)
        else:
            lock.acquire()
        try:
            yield
        finally:
            lock.release()

    @contextmanager
    def unit(self, *, write: bool) -> Iterator[IdentityStore]:
        """A transaction on this thread's connection; commits on success. Transient faults
        leave it as `DatabaseUnavailable` (or `DatabaseBusy`, inline, when the file is locked).
        Inside `run_group` it is a savepoint of the group's transaction instead: it rolls back
        alone, and commits with the group."""
        group: _Transaction | None = getattr(self._local, "group", None)
        if group is not None:
            with self._translated(), self._savepoint(group) as store:
                yield store
            return
        with self._translated(), self._transaction(write=write) as transaction:
            store = transaction.store()
            yield store

    def run_group(self, works: Sequence[Callable[[], Any]]) -> list[tuple[bool, Any]]:
        """Run several requests' work in one write transaction, each unit in a savepoint of
        it, and commit once: answers each work's (True, result) or (False, exception). If the
        transaction itself fails (the commit, or a fault that ends it), this raises and
        nothing of any of them is kept. Its callers answer no request before it returns."""
        outcomes: list[tuple[bool, Any]] = []
        with self._translated(), self._transaction(write=True) as transaction:
            self._local.group = transaction
            try:
                for work in works:
                    try:
                        outcomes.append((True, work()))
                    except Exception as error:
                        if transaction.broken is not None:
                            raise transaction.broken from error
                        outcomes.append((False, error))
            finally:
                self._local.group = None
        return outcomes

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[_Transaction]:
        connection = self._connection()
        with self._writer_lock(write):
            cursor = connection.cursor()
            transaction = _Transaction(self, cursor)
            try:
                if not self._is_pg:
                    cursor.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                transaction.begun = True
                yield transaction
                connection.commit() if self._is_pg else cursor.execute("COMMIT")
            except BaseException:
                for store in transaction.stores:
                    self.suppressed.add(store.taken)
                if not transaction.begun:
                    # Not begun (the file is locked): nothing to roll back, the connection is fine.
                    raise
                try:
                    connection.rollback() if self._is_pg else cursor.execute("ROLLBACK")
                except Exception:
                    self._local.connection = None
                raise
            finally:
                cursor.close()

    @contextmanager
    def _savepoint(self, transaction: _Transaction) -> Iterator[IdentityStore]:
        cursor = transaction.cursor
        cursor.execute("SAVEPOINT unit")
        store = IdentityStore(cursor, is_postgres=self._is_pg, tally=self.suppressed)
        try:
            yield store
            cursor.execute("RELEASE unit")
        except BaseException as error:
            self.suppressed.add(store.taken)
            try:
                cursor.execute("ROLLBACK TO unit")
                cursor.execute("RELEASE unit")
            except Exception as rollback_error:
                # A fault that ended the whole transaction (SQLite rolls back by itself on a
                # full disk or an I/O error): nothing of the group can be committed.
                transaction.broken = rollback_error
                raise error from rollback_error
            raise
        transaction.stores.append(store)

    @contextmanager
    def _translated(self) -> Iterator[None]:
        try:
            yield
        except DBAPIError as error:  # from opening a connection
            if faults.is_transient(error):
                raise DatabaseUnavailable(faults.UNAVAILABLE) from error
            raise
        except self._dbapi.Error as error:
            if getattr(self._local, "inline", False) and self._is_locked(error):
                raise DatabaseBusy(in_process=False) from error
            if faults.is_transient_driver_error(error, self._dbapi):
                raise DatabaseUnavailable(faults.UNAVAILABLE) from error
            raise

    def _is_locked(self, error: BaseException) -> bool:
        message = str(error)
        return isinstance(error, self._dbapi.OperationalError) and (
            "locked" in message or "busy" in message
        )

    def flush_suppressed(self) -> None:
        """Write the suppressed counts not written yet (at shutdown)."""
        counts = self.suppressed.take(force=True)
        if counts:
            with self.unit(write=True) as store:
                store.write_suppressed(counts)

    def shutdown(self) -> None:
        # Counts only: a database gone at shutdown loses a second of them, nothing else.
        with contextlib.suppress(Exception):
            self.flush_suppressed()
        self._stopping.set()
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._lock_waiter.shutdown(wait=False, cancel_futures=True)


def _wait_for(lock: threading.Lock) -> None:
    with lock:
        pass


class _Transaction:
    """One transaction of the identify path: its cursor, the stores of the units committed
    in it (whose suppressed counts are given back if it fails), and, in a group, the fault
    that broke it."""

    def __init__(self, pool: IdentityStorePool, cursor: Any) -> None:
        self.cursor = cursor
        self._pool = pool
        self.stores: list[IdentityStore] = []
        self.broken: BaseException | None = None
        self.begun = False

    def store(self) -> IdentityStore:
        store = IdentityStore(
            self.cursor, is_postgres=self._pool.is_postgres, tally=self._pool.suppressed
        )
        self.stores.append(store)
        return store
