"""cohort sync: keys, settings, cohorts, members, sync sessions and the sync log

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 12:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def _environment_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["environment_id"],
        ["environments.id"],
        name=op.f(f"fk_{table}_environment_id_environments"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "cohort_sync_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("environment_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("last_used_at", TIMESTAMP, nullable=True),
        sa.Column("revoked_at", TIMESTAMP, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        _environment_fk("cohort_sync_keys"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cohort_sync_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_cohort_sync_keys_key_hash")),
    )
    with op.batch_alter_table("cohort_sync_keys", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_cohort_sync_keys_environment_id"), ["environment_id"], unique=False
        )

    op.create_table(
        "cohort_sync_log",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("environment_id", sa.Integer(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("cohort_external_id", sa.String(length=200), nullable=True),
        sa.Column("cohort_name", sa.String(length=2000), nullable=True),
        sa.Column("action", sa.String(length=20), nullable=True),
        sa.Column("session_id", sa.String(length=200), nullable=True),
        sa.Column("page", sa.Integer(), nullable=True),
        sa.Column("total_pages", sa.Integer(), nullable=True),
        sa.Column("received", sa.Integer(), nullable=False),
        sa.Column("added", sa.Integer(), nullable=False),
        sa.Column("removed", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=10), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        _environment_fk("cohort_sync_log"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cohort_sync_log")),
    )
    with op.batch_alter_table("cohort_sync_log", schema=None) as batch_op:
        batch_op.create_index(
            "ix_cohort_sync_log_environment_id_id", ["environment_id", "id"], unique=False
        )

    op.create_table(
        "cohort_sync_settings",
        sa.Column("environment_id", sa.Integer(), nullable=False),
        sa.Column("member_key", sa.String(length=200), nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        _environment_fk("cohort_sync_settings"),
        sa.PrimaryKeyConstraint("environment_id", name=op.f("pk_cohort_sync_settings")),
    )

    op.create_table(
        "cohorts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("environment_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=2000), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("trait_key", sa.String(length=200), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        _environment_fk("cohorts"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cohorts")),
        sa.UniqueConstraint(
            "environment_id",
            "source",
            "external_id",
            name=op.f("uq_cohorts_environment_id_source_external_id"),
        ),
    )

    op.create_table(
        "cohort_members",
        sa.Column("cohort_id", sa.Integer(), nullable=False),
        sa.Column("identity_id", sa.Integer(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("seen_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["cohort_id"],
            ["cohorts.id"],
            name=op.f("fk_cohort_members_cohort_id_cohorts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["identity_id"],
            ["identities.id"],
            name=op.f("fk_cohort_members_identity_id_identities"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("cohort_id", "identity_id", name=op.f("pk_cohort_members")),
    )
    with op.batch_alter_table("cohort_members", schema=None) as batch_op:
        batch_op.create_index("ix_cohort_members_identity_id", ["identity_id"], unique=False)

    op.create_table(
        "cohort_sync_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cohort_id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.String(length=200), nullable=False),
        sa.Column("total_pages", sa.Integer(), nullable=False),
        sa.Column("pages", sa.JSON(), nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("completed_at", TIMESTAMP, nullable=True),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["cohort_id"],
            ["cohorts.id"],
            name=op.f("fk_cohort_sync_sessions_cohort_id_cohorts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cohort_sync_sessions")),
        sa.UniqueConstraint(
            "cohort_id", "session_id", name=op.f("uq_cohort_sync_sessions_cohort_id_session_id")
        ),
    )


def downgrade() -> None:
    op.drop_table("cohort_sync_sessions")
    with op.batch_alter_table("cohort_members", schema=None) as batch_op:
        batch_op.drop_index("ix_cohort_members_identity_id")
    op.drop_table("cohort_members")
    op.drop_table("cohorts")
    op.drop_table("cohort_sync_settings")
    with op.batch_alter_table("cohort_sync_log", schema=None) as batch_op:
        batch_op.drop_index("ix_cohort_sync_log_environment_id_id")
    op.drop_table("cohort_sync_log")
    with op.batch_alter_table("cohort_sync_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cohort_sync_keys_environment_id"))
    op.drop_table("cohort_sync_keys")
