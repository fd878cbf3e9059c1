"""importing environments: an environment being imported is unknown to the SDK until complete

`ensign import` writes a large document in many short transactions so that live writes never
wait long for SQLite's lock; the environment stays invisible (`importing`) until the last one.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 16:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("environments") as batch:
        batch.add_column(
            sa.Column("importing", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("environments") as batch:
        batch.drop_column("importing")
