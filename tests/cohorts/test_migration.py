"""The cohort-sync migration: up, down and up again, and no difference from the models."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from ensign.storage.db import alembic_config
from ensign.storage.models import Base

TABLES = {
    "cohort_sync_keys",
    "cohort_sync_settings",
    "cohort_sync_log",
    "cohorts",
    "cohort_members",
    "cohort_sync_sessions",
}


def test_migration_0003__up_down_up__matches_models(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'migrations.sqlite3'}"
    config = alembic_config(url)
    command.upgrade(config, "head")
    command.downgrade(config, "0002")
    engine = create_engine(url)
    assert not TABLES & set(inspect(engine).get_table_names())
    command.upgrade(config, "head")
    assert set(inspect(engine).get_table_names()) >= TABLES
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "render_as_batch": True}
        )
        assert compare_metadata(context, Base.metadata) == []
    engine.dispose()
