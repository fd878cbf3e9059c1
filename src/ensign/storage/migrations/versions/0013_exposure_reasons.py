"""exposure reasons: the events API records an SDK's exposure only when Ensign's own evaluation
agrees, and counts and logs the others by reason

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 23:55:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REASONS = ("not_in_experiment", "wrong_variant", "unknown_variant", "no_running_experiment")


def upgrade() -> None:
    with op.batch_alter_table("event_counters") as batch:
        for reason in REASONS:
            batch.add_column(sa.Column(reason, sa.BigInteger(), nullable=False, server_default="0"))
    with op.batch_alter_table("unmatched_exposures") as batch:
        batch.add_column(sa.Column("reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("served_variant", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("unmatched_exposures") as batch:
        batch.drop_column("served_variant")
        batch.drop_column("reason")
    with op.batch_alter_table("event_counters") as batch:
        for reason in REASONS:
            batch.drop_column(reason)
