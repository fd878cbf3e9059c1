"""The metrics migration fills the per-user table from the exposures already recorded: each
identity's earliest exposure, and whether it saw more than one variant."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import create_engine, text

from ensign.storage.db import alembic_config


def test_migration_0012__existing_exposures__first_variant_and_multiple(tmp_path: Path) -> None:
    # Given exposures recorded before the migration (SQLite leaves foreign keys unchecked on a
    # plain connection, so no experiment row is needed)
    url = f"sqlite:///{tmp_path / 'migrations.sqlite3'}"
    config = alembic_config(url)
    command.upgrade(config, "0011")
    engine = create_engine(url)
    exposures = [
        ("ann", "control", "2026-11-01 10:00:00"),
        ("ann", "express", "2026-11-01 11:00:00"),
        ("bob", "express", "2026-11-01 09:00:00"),
        ("cy", "express", "2026-11-01 12:00:00"),
        ("cy", "control", "2026-11-01 08:00:00"),
    ]
    with engine.begin() as connection:
        for identifier, variant, at in exposures:
            connection.execute(
                text(
                    "INSERT INTO exposures (experiment_id, identifier, variant, exposed_at) "
                    "VALUES (7, :identifier, :variant, :at)"
                ),
                {"identifier": identifier, "variant": variant, "at": at},
            )

    # When migrated
    command.upgrade(config, "head")

    # Then each identity has one row: its earliest variant, marked when it saw two
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT identifier, variant, exposed_at, multiple FROM experiment_metric_users "
                "WHERE experiment_id = 7 ORDER BY identifier"
            )
        ).all()
        totals = connection.execute(
            text(
                "SELECT metric, variant, sum(users) FROM experiment_metric_totals "
                "WHERE experiment_id = 7 GROUP BY metric, variant ORDER BY metric, variant"
            )
        ).all()
    engine.dispose()
    # Per variant the identities exposed to it, and those counted in metrics (or left out)
    assert [tuple(r) for r in totals] == [
        ("$exposures", "control", 2),
        ("$exposures", "express", 3),
        ("$users", "", 2),
        ("$users", "express", 1),
    ]
    assert [tuple(r) for r in rows] == [
        ("ann", "control", "2026-11-01 10:00:00", 1),
        ("bob", "express", "2026-11-01 09:00:00", 0),
        ("cy", "control", "2026-11-01 08:00:00", 1),
    ]
