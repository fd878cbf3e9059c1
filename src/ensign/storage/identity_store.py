"""The identify hot path's queries, on the raw database driver.

An identify call reads one identity with its traits and writes a few rows. Through the ORM
that costs about a millisecond of Python per call, most of it statement building; here the
same statements go straight to the driver (sqlite3 or psycopg) and cost a tenth of that.
Everything else uses `repositories` and the ORM.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from ensign.storage.db import Database
from ensign.storage.models import utcnow
from ensign.storage.outbox_queries import OutboxRecord
from ensign.storage.repositories import StoredIdentity, StoredTrait, hash_identifier

T = TypeVar("T")

_LOAD = (
    "SELECT i.id, i.identifier, t.id, t.key, t.value_type, t.value_text "
    "FROM identities i LEFT JOIN traits t ON t.identity_id = i.id "
    "WHERE i.environment_id = ? AND i.identifier_hash = ? ORDER BY t.id"
)
_INSERT_IDENTITY = (
    "INSERT INTO identities (environment_id, identifier, identifier_hash, created_at) "
    "VALUES (?, ?, ?, ?) ON CONFLICT (environment_id, identifier_hash) DO NOTHING RETURNING id"
)
_FIND_IDENTITY = "SELECT id FROM identities WHERE environment_id = ? AND identifier_hash = ?"
_INSERT_TRAIT = (
    "INSERT INTO traits (identity_id, key, value_type, value_text, created_at) "
    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (identity_id, key) "
    "DO UPDATE SET value_type = excluded.value_type, value_text = excluded.value_text "
    "RETURNING id"
)
_UPDATE_TRAIT = "UPDATE traits SET value_type = ?, value_text = ? WHERE id = ?"
_DELETE_TRAIT = "DELETE FROM traits WHERE id = ?"
_INSERT_EVALUATION = (
    "INSERT INTO evaluations (environment_id, event_key, identifier, flags, evaluated_at) "
    "VALUES (?, ?, ?, ?, ?)"
)
_INSERT_DELIVERY = (
    "INSERT INTO outbox_deliveries (integration_id, evaluation_id, status, next_attempt_at, "
    "attempts, is_test, created_at) VALUES (?, ?, 'pending', ?, 0, ?, ?)"
)


class IdentityStore:
    """Identify-path statements bound to one cursor inside one transaction."""

    def __init__(self, cursor: Any, *, is_postgres: bool) -> None:
        self._cursor = cursor
        self._pg = is_postgres

    def _sql(self, statement: str) -> str:
        return statement.replace("?", "%s") if self._pg else statement

    def _now(self) -> Any:
        now = utcnow()
        # sqlite3 stores what it is given; keep the naive-UTC text the ORM writes.
        return now if self._pg else now.strftime("%Y-%m-%d %H:%M:%S.%f")

    def load_identity(self, environment_id: int, identifier: str) -> StoredIdentity | None:
        self._cursor.execute(self._sql(_LOAD), (environment_id, hash_identifier(identifier)))
        rows = self._cursor.fetchall()
        if not rows:
            return None
        traits = [StoredTrait(r[2], r[3], r[4], r[5]) for r in rows if r[2] is not None]
        return StoredIdentity(int(rows[0][0]), rows[0][1], traits)

    def get_or_create_identity(self, environment_id: int, identifier: str) -> tuple[int, bool]:
        """The identity's id, and whether this call created it. Safe when two requests race."""
        identifier_hash = hash_identifier(identifier)
        self._cursor.execute(
            self._sql(_INSERT_IDENTITY), (environment_id, identifier, identifier_hash, self._now())
        )
        row = self._cursor.fetchone()
        if row is not None:
            return int(row[0]), True
        self._cursor.execute(self._sql(_FIND_IDENTITY), (environment_id, identifier_hash))
        return int(self._cursor.fetchone()[0]), False

    def insert_traits(
        self, identity_id: int, traits: Sequence[tuple[str, str, str]]
    ) -> dict[str, int]:
        """Insert (key, value_type, value_text) rows (updating any a racing call made first)."""
        ids = {}
        now = self._now()
        for key, value_type, value_text in traits:
            self._cursor.execute(
                self._sql(_INSERT_TRAIT), (identity_id, key, value_type, value_text, now)
            )
            ids[key] = int(self._cursor.fetchone()[0])
        return ids

    def update_trait(self, trait_id: int, value_type: str, value_text: str) -> None:
        self._cursor.execute(self._sql(_UPDATE_TRAIT), (value_type, value_text, trait_id))

    def delete_traits(self, trait_ids: Sequence[int]) -> None:
        for trait_id in trait_ids:
            self._cursor.execute(self._sql(_DELETE_TRAIT), (trait_id,))

    def insert_outbox(self, records: Sequence[OutboxRecord]) -> None:
        """Record evaluations for the analytics dispatcher, due at once: each evaluation's
        flags once, and a narrow queue row for each integration sending it."""
        if not records:
            return
        # One call's records share their evaluation time: format each moment once.
        now = self._stamp(utcnow())
        stamps: dict[Any, Any] = {}
        insert_evaluation = self._sql(_INSERT_EVALUATION)
        if self._pg:
            insert_evaluation += " RETURNING id"
        rows = []
        for r in records:
            evaluated_at = stamps.get(r.evaluated_at)
            if evaluated_at is None:
                evaluated_at = stamps[r.evaluated_at] = self._stamp(r.evaluated_at)
            self._cursor.execute(
                insert_evaluation,
                (r.environment_id, r.event_key, r.identifier, r.flags, evaluated_at),
            )
            evaluation_id = self._cursor.fetchone()[0] if self._pg else self._cursor.lastrowid
            for integration_id in r.integration_ids:
                rows.append((integration_id, evaluation_id, now, r.is_test, now))
        self._cursor.executemany(self._sql(_INSERT_DELIVERY), rows)

    def _stamp(self, moment: Any) -> Any:
        if self._pg:
            return moment
        return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


# How long work on the event loop may wait for another writer before it is handed to the
# database thread (which waits as long as it takes).
INLINE_BUSY_TIMEOUT_MS = 5


class DatabaseBusy(Exception):
    """Another writer holds the database; nothing was written."""


class IdentityStorePool:
    """Runs identify-path units of work on dedicated threads.

    SQLite takes one writer at a time, so its work runs on a single thread with a single
    connection: requests queue in order instead of contending for the file lock. PostgreSQL
    gets a small pool of threads and connections.
    """

    def __init__(self, db: Database, *, threads: int = 8) -> None:
        self._db = db
        self._is_pg = not db.is_sqlite
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=threads if self._is_pg else 1, thread_name_prefix="ensign-db"
        )
        self._local = threading.local()
        self._checkpointer: threading.Thread | None = None
        self._stopping = threading.Event()

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
        except sqlite3.OperationalError as error:
            if "locked" in str(error) or "busy" in str(error):
                raise DatabaseBusy from error
            raise
        finally:
            self._local.inline = False

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
        try:
            while not self._stopping.wait(0.5):
                try:
                    # PASSIVE never blocks writers: it copies what it can and leaves the rest.
                    connection.cursor().execute("PRAGMA wal_checkpoint(PASSIVE)")
                except Exception:
                    continue
        finally:
            connection.close()

    @contextmanager
    def _writer_lock(self, write: bool) -> Iterator[None]:
        """On SQLite a write waits for the process's other writers (admin, the delivery
        dispatcher) on their lock rather than in SQLite's busy handler, which sleeps in steps
        of up to 100 ms. Inline work never waits for it: it is `DatabaseBusy` at once."""
        lock = self._db.write_lock if write else None
        if lock is None:
            yield
            return
        if getattr(self._local, "inline", False):
            if not lock.acquire(blocking=False):
                raise DatabaseBusy
        else:
            lock.acquire()
        try:
            yield
        finally:
            lock.release()

    @contextmanager
    def unit(self, *, write: bool) -> Iterator[IdentityStore]:
        """A transaction on this thread's connection; commits on success."""
        connection = self._connection()
        with self._writer_lock(write):
            cursor = connection.cursor()
            try:
                if not self._is_pg:
                    cursor.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                yield IdentityStore(cursor, is_postgres=self._is_pg)
                connection.commit() if self._is_pg else cursor.execute("COMMIT")
            except BaseException:
                try:
                    connection.rollback() if self._is_pg else cursor.execute("ROLLBACK")
                except Exception:
                    self._local.connection = None
                raise
            finally:
                cursor.close()

    def shutdown(self) -> None:
        self._stopping.set()
        self._executor.shutdown(wait=False, cancel_futures=True)
