"""events: what the SDKs' events endpoint keeps

`received_events` holds each accepted event's dedupe key (unique per environment), so that an
SDK re-sending a batch stores nothing twice; `event_counters` counts per environment;
`unmatched_exposures` keeps the newest exposures that no running experiment took. Custom
events use the outbox record `kind` that 0009 (experiments) added, with the value `event`.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-26 18:35:21.249541
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "event_counters",
        sa.Column("environment_id", sa.Integer(), nullable=False),
        sa.Column("received", sa.BigInteger(), nullable=False),
        sa.Column("exposures", sa.BigInteger(), nullable=False),
        sa.Column("custom", sa.BigInteger(), nullable=False),
        sa.Column("duplicates", sa.BigInteger(), nullable=False),
        sa.Column("rejected", sa.BigInteger(), nullable=False),
        sa.Column("skipped", sa.BigInteger(), nullable=False),
        sa.Column("unmatched", sa.BigInteger(), nullable=False),
        sa.Column("time_adjusted", sa.BigInteger(), nullable=False),
        sa.Column("last_received_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["environment_id"],
            ["environments.id"],
            name=op.f("fk_event_counters_environment_id_environments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("environment_id", name=op.f("pk_event_counters")),
    )
    op.create_table(
        "received_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("environment_id", sa.Integer(), nullable=False),
        sa.Column("event_key", sa.String(length=32), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["environment_id"],
            ["environments.id"],
            name=op.f("fk_received_events_environment_id_environments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_received_events")),
        sa.UniqueConstraint(
            "environment_id", "event_key", name=op.f("uq_received_events_environment_id_event_key")
        ),
    )
    with op.batch_alter_table("received_events", schema=None) as batch_op:
        batch_op.create_index("ix_received_events_received_at", ["received_at"], unique=False)

    op.create_table(
        "unmatched_exposures",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("environment_id", sa.Integer(), nullable=False),
        sa.Column("feature_name", sa.Text(), nullable=False),
        sa.Column("identifier", sa.Text(), nullable=True),
        sa.Column("variant", sa.Text(), nullable=True),
        sa.Column("experiment_id", sa.Integer(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["environment_id"],
            ["environments.id"],
            name=op.f("fk_unmatched_exposures_environment_id_environments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unmatched_exposures")),
    )
    with op.batch_alter_table("unmatched_exposures", schema=None) as batch_op:
        batch_op.create_index(
            "ix_unmatched_exposures_environment_id_id", ["environment_id", "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("unmatched_exposures", schema=None) as batch_op:
        batch_op.drop_index("ix_unmatched_exposures_environment_id_id")

    op.drop_table("unmatched_exposures")
    with op.batch_alter_table("received_events", schema=None) as batch_op:
        batch_op.drop_index("ix_received_events_received_at")

    op.drop_table("received_events")
    op.drop_table("event_counters")
