"""SQLite's write-ahead log shrinks on disk after a burst of writes, without making writers
wait."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from ensign.storage import wal
from ensign.storage.db import Database, migrate
from ensign.storage.identity_pool import IdentityStorePool
from tests.conftest import wait_for

MB = 1024 * 1024


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    url = f"sqlite:///{tmp_path / 'burst.sqlite3'}"
    migrate(url)
    database = Database(url)
    yield database
    database.dispose()


def wal_size(db: Database) -> int:
    path = f"{db.engine.url.database}-wal"
    return os.path.getsize(path) if os.path.exists(path) else 0


def burst(db: Database, megabytes: int) -> None:
    """About `megabytes` written in one transaction, as a vendor outage's backlog would."""
    with db.session() as session:
        session.execute(text("CREATE TABLE IF NOT EXISTS burst (payload BLOB)"))
        for _ in range(megabytes * 4):
            session.execute(text("INSERT INTO burst VALUES (randomblob(262144))"))
    with db.session() as session:
        session.execute(text("DELETE FROM burst"))


def test_wal__burst_then_identify_pool_checkpoints__file_shrinks(db: Database) -> None:
    # Given a WAL grown by a burst of writes
    pool = IdentityStorePool(db, wal_max_bytes=MB)
    burst(db, 16)
    assert wal_size(db) > 8 * MB
    # When the identify pool's checkpointer runs (it starts with the pool's first unit)
    with pool.unit(write=False):
        pass
    # Then the file on disk is truncated below the limit
    try:
        wait_for(lambda: wal_size(db) <= MB, timeout=10)
    finally:
        pool.shutdown()


def test_wal__writer_holds_the_lock__truncate_skipped_at_once_then_done(db: Database) -> None:
    burst(db, 4)
    grown = wal_size(db)
    connection = db.engine.raw_connection()
    try:
        checkpointer = wal.Checkpointer(connection, db.engine.url.database, MB, db.write_lock)
        # Given a writer of this process holding the database
        assert db.write_lock is not None
        with db.write_lock:
            # When the checkpointer runs, Then it skips the truncation without waiting
            started = time.monotonic()
            assert checkpointer.run() is False
            assert time.monotonic() - started < 0.5
            assert wal_size(db) == grown
        # When the writer is done, Then the next round truncates the file
        assert checkpointer.run() is True
        assert wal_size(db) == 0
    finally:
        connection.close()


def test_wal__under_the_limit__not_truncated(db: Database) -> None:
    burst(db, 2)
    grown = wal_size(db)
    connection = db.engine.raw_connection()
    try:
        checkpointer = wal.Checkpointer(connection, db.engine.url.database, 64 * MB, db.write_lock)
        assert checkpointer.run() is False
        assert wal_size(db) == grown
    finally:
        connection.close()
