"""The migrations: they upgrade, downgrade and upgrade again, and leave the schema the models
describe. Run on the database type under test, on a scratch database of its own (the shared
test database must keep its tables)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from ensign.storage.db import alembic_config, normalise_url
from ensign.storage.models import Base

SCRATCH_DATABASE = "ensign_migration_test"


def _postgres_scratch(url: str) -> str:
    """A scratch database on the server of `url`, created if missing and emptied."""
    parsed = make_url(url)
    admin = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (SCRATCH_DATABASE,)
        ).fetchone()
        if exists is None:
            connection.execute(f'CREATE DATABASE "{SCRATCH_DATABASE}"')
    scratch = parsed.set(database=SCRATCH_DATABASE).render_as_string(hide_password=False)
    engine = create_engine(normalise_url(scratch))
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return scratch


@pytest.fixture
def scratch_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    """An empty database of the same type as `database_url`."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'migrations.sqlite3'}"
    else:
        yield _postgres_scratch(database_url)


def _tables(url: str) -> set[str]:
    engine = create_engine(normalise_url(url))
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _differences(url: str) -> list[object]:
    engine = create_engine(normalise_url(url))
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection,
                opts={
                    "compare_type": True,
                    "render_as_batch": connection.dialect.name == "sqlite",
                },
            )
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


def test_migrations__one_head() -> None:
    # Migrations added on parallel branches must be chained, not left as two heads
    heads = ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()
    assert len(heads) == 1, heads


@pytest.mark.slow
def test_migrations__up_down_up__schema_matches_models(scratch_url: str) -> None:
    config = alembic_config(scratch_url)
    model_tables = set(Base.metadata.tables)

    # When upgraded to head, downgraded to base and upgraded again
    command.upgrade(config, "head")
    assert model_tables <= _tables(scratch_url)
    command.downgrade(config, "base")
    assert _tables(scratch_url) <= {"alembic_version"}
    command.upgrade(config, "head")

    # Then every model table is there and autogenerate finds nothing to change
    assert model_tables <= _tables(scratch_url)
    assert _differences(scratch_url) == []
