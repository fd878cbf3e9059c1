"""Storage's boundary: database faults a retry can fix come out as `DatabaseUnavailable`,
from ORM sessions and from the identify path's raw units alike; a refused statement or value
comes out as the error it is."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from ensign.errors import DatabaseUnavailable
from ensign.storage import identities
from ensign.storage.db import Database, normalise_url
from ensign.storage.identity_pool import DatabaseBusy, IdentityStorePool
from ensign.web.deps import AppState
from tests.fakes.fixtures import Env, env

__all__ = ["env"]


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.dispose()


@contextmanager
def table_away(db: Database, table: str) -> Iterator[None]:
    """The table renamed for a while, as when the schema is behind the code mid-migration."""
    with db.session() as session:
        session.execute(text(f"ALTER TABLE {table} RENAME TO {table}_away"))
    try:
        yield
    finally:
        with db.session() as session:
            session.execute(text(f"ALTER TABLE {table}_away RENAME TO {table}"))


@contextmanager
def file_locked(url: str) -> Iterator[None]:
    """Another process's writer holding a SQLite file."""
    connection = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        connection.execute("ROLLBACK")
        connection.close()


def _count_audit_entries(db: Database) -> None:
    with db.read_session() as session:
        session.execute(text("SELECT count(*) FROM audit_log")).all()


def _write_with_a_short_wait(db: Database) -> None:
    with db.read_session() as session:
        session.execute(text("PRAGMA busy_timeout=10"))
        session.execute(text("INSERT INTO server_secrets VALUES ('a', 'b', '2026-01-01')"))


def _query_after_the_server_ends_the_connection(db: Database, database_url: str) -> None:
    admin = create_engine(normalise_url(database_url))
    try:
        with db.read_session() as session:
            pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
            with admin.begin() as connection:
                connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            session.execute(text("SELECT 1")).all()
    finally:
        admin.dispose()


def _insert_twice(db: Database) -> None:
    insert = text("INSERT INTO server_secrets (name, value, created_at) VALUES ('a', 'b', :at)")
    with db.session() as session:
        session.execute(insert, {"at": "2026-01-01"})
        session.execute(insert, {"at": "2026-01-01"})


def test_session__table_missing__database_unavailable(db: Database) -> None:
    with table_away(db, "audit_log"), pytest.raises(DatabaseUnavailable):
        _count_audit_entries(db)


def test_session__lost_or_locked__database_unavailable(db: Database, database_url: str) -> None:
    if db.is_sqlite:
        with file_locked(database_url), pytest.raises(DatabaseUnavailable):
            _write_with_a_short_wait(db)
    else:
        with pytest.raises(DatabaseUnavailable):
            _query_after_the_server_ends_the_connection(db, database_url)


def test_session__statement_the_database_refuses__not_unavailable(db: Database) -> None:
    with pytest.raises(DBAPIError), db.read_session() as session:
        session.execute(text("SELEC 1"))


def test_session__duplicate_key__stays_an_integrity_error(db: Database) -> None:
    with pytest.raises(IntegrityError):
        _insert_twice(db)


def _create_identity(db: Database) -> None:
    with db.session() as session:
        identities.get_or_create_identity(session, 1, "someone")


def test_session__raw_statement_on_a_missing_table__database_unavailable(db: Database) -> None:
    # The admin API and the import run the identify path's raw statements in their sessions.
    with table_away(db, "identities"), pytest.raises(DatabaseUnavailable):
        _create_identity(db)


def _load(pool: IdentityStorePool) -> None:
    with pool.unit(write=False) as store:
        store.load_identity(1, "someone")


def test_identity_unit__table_missing__database_unavailable(db: Database) -> None:
    pool = IdentityStorePool(db)
    try:
        with table_away(db, "identities"), pytest.raises(DatabaseUnavailable):
            _load(pool)
    finally:
        pool.shutdown()


def test_identity_unit__refused_row__the_drivers_own_error(db: Database) -> None:
    pool = IdentityStorePool(db)
    try:
        # Traits of an identity that does not exist break a foreign key: input, not a fault.
        with (
            pytest.raises(Exception, match="(?i)foreign key") as raised,
            pool.unit(write=True) as store,
        ):
            store.insert_traits(2_000_000, [("plan", "str", "pro")])
        assert not isinstance(raised.value, DatabaseUnavailable)
    finally:
        pool.shutdown()


def test_identity_unit__sqlite_locked_inline__busy_so_the_caller_queues_it(
    db: Database, database_url: str
) -> None:
    if not db.is_sqlite:
        pytest.skip("inline units run on SQLite only")
    pool = IdentityStorePool(db)

    def work() -> None:
        with pool.unit(write=True) as store:
            store.get_or_create_identity(1, "someone")

    try:
        with file_locked(database_url), pytest.raises(DatabaseBusy) as busy:
            pool.inline(work)
        # Another process's writer: nothing in this process says when it ends
        assert not busy.value.in_process
    finally:
        pool.shutdown()


def test_identity_unit__sqlite_writer_of_this_process__busy_until_it_lets_go_then_runs_inline(
    state: AppState, env: Env
) -> None:
    db, pool = state.db, state.identities
    if not db.is_sqlite:
        pytest.skip("inline units run on SQLite only")
    lock = db.write_lock
    assert lock is not None

    def work() -> int:
        with pool.unit(write=True) as store:
            return store.get_or_create_identity(env.environment_id, "someone")[0]

    async def run() -> tuple[bool, float, int]:
        # Given another writer of this process (the dispatcher, an admin call) holding the file
        lock.acquire()
        asyncio.get_running_loop().call_later(0.3, lock.release)
        started = time.monotonic()
        # When identify work tries it on the event loop, Then it is busy at once, as this
        # process's writer, and the wait ends when the writer lets go
        with pytest.raises(DatabaseBusy) as busy:
            pool.inline(work)
        await pool.write_lock_released()
        waited = time.monotonic() - started
        return busy.value.in_process, waited, pool.inline(work)

    in_process, waited, identity_id = asyncio.run(run())
    assert in_process
    assert 0.25 <= waited < 5
    # and the work then runs inline and is stored
    with pool.unit(write=False) as store:
        stored = store.load_identity(env.environment_id, "someone")
    assert stored is not None and stored.id == identity_id
