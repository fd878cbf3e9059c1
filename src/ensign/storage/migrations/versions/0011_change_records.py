"""change records: every applied change to served configuration, per environment

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 23:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "change_records",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("change_set", sa.String(length=36), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("environment_id", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(length=300), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["environment_id"],
            ["environments.id"],
            name=op.f("fk_change_records_environment_id_environments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_change_records")),
    )
    op.create_index(
        op.f("ix_change_records_change_set"), "change_records", ["change_set"], unique=False
    )
    op.create_index(
        "ix_change_records_environment_id_id",
        "change_records",
        ["environment_id", "id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_change_records_environment_id_id", table_name="change_records")
    op.drop_index(op.f("ix_change_records_change_set"), table_name="change_records")
    op.drop_table("change_records")
