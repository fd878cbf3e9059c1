"""Group commit on SQLite: identify work arriving together shares one transaction, each
request's writes roll back alone when it fails, and no request is answered before the commit
that keeps its writes."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import text

from ensign.services.importing import import_document
from ensign.storage.group_commit import GroupCommitter
from ensign.storage.identity_pool import IdentityStorePool
from ensign.web.deps import AppState
from tests.conftest import Organisation
from tests.documents import standard_document
from tests.units import unit_session


@pytest.fixture
def environment_id(state: AppState, organisation: Organisation) -> int:
    if not state.db.is_sqlite:
        pytest.skip("group commit is SQLite's")
    with state.units.write() as unit, unit_session(unit) as session:
        return import_document(session, organisation.id, standard_document()).environment_id


def create(pool: IdentityStorePool, environment_id: int, identifier: str) -> Callable[[], int]:
    def work() -> int:
        with pool.unit(write=True) as store:
            identity_id, _ = store.get_or_create_identity(environment_id, identifier)
            store.insert_traits(identity_id, [("plan", "str", "pro")])
            return identity_id

    return work


def stored(state: AppState) -> list[str]:
    with state.db.read_session() as session:
        rows = session.execute(text("SELECT identifier FROM identities ORDER BY identifier"))
        return [r[0] for r in rows]


def run_together(pool: IdentityStorePool, works: list[Callable[[], Any]]) -> list[Any]:
    async def main() -> list[Any]:
        committer = GroupCommitter(pool, asyncio.get_running_loop())
        return await asyncio.gather(*(committer.run(w) for w in works), return_exceptions=True)

    return asyncio.run(main())


def test_group__one_request_fails__its_writes_alone_roll_back(
    state: AppState, environment_id: int
) -> None:
    pool = state.identities

    def fails_after_writing() -> None:
        create(pool, environment_id, "broken")()  # its own unit, committed with the group
        with pool.unit(write=True) as store:
            store.get_or_create_identity(environment_id, "half-written")
            raise ValueError("refused")

    works = [create(pool, environment_id, f"user-{n}") for n in range(5)]
    outcomes = run_together(pool, [*works[:2], fails_after_writing, *works[2:]])

    assert isinstance(outcomes[2], ValueError)
    assert all(isinstance(o, int) for o in outcomes[:2] + outcomes[3:])
    assert stored(state) == ["broken", "user-0", "user-1", "user-2", "user-3", "user-4"]


def test_group__commit_fails__every_request_gets_the_error_and_nothing_is_kept(
    state: AppState, environment_id: int
) -> None:
    pool = state.identities

    def breaks_the_commit() -> None:
        with pool.unit(write=True) as store:
            # A foreign key checked at commit: the whole transaction's commit is refused.
            store._cursor.execute("PRAGMA defer_foreign_keys=ON")
            store.insert_traits(2_000_000, [("plan", "str", "pro")])

    works = [create(pool, environment_id, f"user-{n}") for n in range(3)]
    outcomes = run_together(pool, [*works, breaks_the_commit])

    assert all(isinstance(o, Exception) for o in outcomes), outcomes
    assert stored(state) == []


def test_group__another_writer_holds_the_database__requests_wait_then_all_commit(
    state: AppState, environment_id: int
) -> None:
    pool = state.identities
    lock = state.db.write_lock
    assert lock is not None
    lock.acquire()
    # The group waits (on the event loop) for the writer to let go, then commits.
    threading.Timer(0.2, lock.release).start()
    started = time.monotonic()

    outcomes = run_together(pool, [create(pool, environment_id, f"user-{n}") for n in range(4)])

    assert time.monotonic() - started >= 0.2
    assert all(isinstance(o, int) for o in outcomes), outcomes
    assert stored(state) == ["user-0", "user-1", "user-2", "user-3"]


@pytest.mark.parametrize("hold_seconds", [0.2, 1.5])
def test_group__another_process_holds_the_file__requests_retry_then_all_commit(
    state: AppState, environment_id: int, hold_seconds: float
) -> None:
    # Given another connection (as another process would) holding SQLite's write lock, briefly
    # (retried on the event loop) or for longer than those retries (then on the database thread)
    other = sqlite3.connect(
        state.db.engine.url.database, isolation_level=None, check_same_thread=False
    )
    other.execute("BEGIN IMMEDIATE")
    released = threading.Event()

    def release() -> None:
        other.execute("COMMIT")
        released.set()

    threading.Timer(hold_seconds, release).start()
    pool = state.identities

    outcomes = run_together(pool, [create(pool, environment_id, f"user-{n}") for n in range(4)])

    # Then every request commits once the file is free, none before
    assert released.is_set()
    assert all(isinstance(o, int) for o in outcomes), outcomes
    assert stored(state) == ["user-0", "user-1", "user-2", "user-3"]
    other.close()
