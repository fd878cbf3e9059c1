"""The tests empty only a PostgreSQL database they created or marked: pointed at one that
holds someone's tables, they refuse and leave it as it was."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, make_url, text

from ensign.storage.db import normalise_url
from tests.conftest import PG_URL, TEST_DATABASE_MARK, NotATestDatabase, claim_test_database

pytestmark = [
    pytest.mark.db,
    pytest.mark.skipif(not PG_URL, reason="needs PostgreSQL (ENSIGN_TEST_DATABASE_URL)"),
]


def _admin_run(*statements: str) -> list[object]:
    """Run statements on the server's maintenance database; answer the last one's rows."""
    engine = create_engine(
        make_url(normalise_url(PG_URL)).set(database="postgres"), isolation_level="AUTOCOMMIT"
    )
    try:
        with engine.connect() as connection:
            rows: list[object] = []
            for statement in statements:
                result = connection.execute(text(statement))
                rows = list(result.scalars()) if result.returns_rows else []
            return rows
    finally:
        engine.dispose()


def _run(url: str, statement: str) -> list[object]:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            result = connection.execute(text(statement))
            return list(result.scalars()) if result.returns_rows else []
    finally:
        engine.dispose()


def _comment(name: str) -> object:
    (comment,) = _admin_run(
        f"SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = '{name}'"
    )
    return comment


@pytest.fixture
def scratch() -> Iterator[tuple[str, str]]:
    """A database name of this worker's own, dropped before and after: (name, URL)."""
    name = f"{make_url(PG_URL).database}_scratch"
    url = make_url(normalise_url(PG_URL)).set(database=name).render_as_string(hide_password=False)
    _admin_run(f'DROP DATABASE IF EXISTS "{name}"')
    yield name, url
    _admin_run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_claim__database_with_someones_table__refused_and_left_as_it_was(
    scratch: tuple[str, str],
) -> None:
    name, url = scratch
    _admin_run(f'CREATE DATABASE "{name}"')
    _run(url, "CREATE TABLE customers (id int primary key, name text)")
    _run(url, "INSERT INTO customers VALUES (1, 'Ada')")

    with pytest.raises(NotATestDatabase, match=f"Refusing to empty PostgreSQL database '{name}'"):
        claim_test_database(url)

    assert _run(url, "SELECT name FROM customers") == ["Ada"]
    assert _comment(name) is None
    # Once it holds nothing, there is nothing to lose: the tests mark it theirs.
    _run(url, "DROP TABLE customers")
    claim_test_database(url)
    assert _comment(name) == TEST_DATABASE_MARK


def test_claim__missing_database__created_and_marked(scratch: tuple[str, str]) -> None:
    name, url = scratch

    claim_test_database(url)

    assert _comment(name) == TEST_DATABASE_MARK
    # Marked, it is the tests' own from now on, tables or not.
    _run(url, "CREATE TABLE leftovers (id int)")
    claim_test_database(url)
