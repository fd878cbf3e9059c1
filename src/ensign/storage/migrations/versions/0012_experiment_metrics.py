"""experiment metrics: each experiment's metric definitions, and per-user aggregates

`experiments.metrics` holds the metric definitions. `experiment_metric_users` holds each
exposed identity's first exposure (and whether it saw another variant too);
`experiment_metric_values` each such identity's value of each metric, updated as events arrive;
`experiment_metric_totals` their running sums per variant. The exposures already recorded fill
`experiment_metric_users` (each identity's earliest one) and the totals.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-08 00:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("experiments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("metrics", sa.JSON(), server_default="[]", nullable=False))
    op.create_table(
        "experiment_metric_users",
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("identifier", sa.Text(), nullable=False),
        sa.Column("variant", sa.String(length=200), nullable=False),
        sa.Column("exposed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("multiple", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name=op.f("fk_experiment_metric_users_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "experiment_id", "identifier", name=op.f("pk_experiment_metric_users")
        ),
    )
    op.create_index(
        "ix_experiment_metric_users_variant",
        "experiment_metric_users",
        ["experiment_id", "variant"],
        unique=False,
    )
    op.execute(
        "INSERT INTO experiment_metric_users "
        "(experiment_id, identifier, variant, exposed_at, multiple) "
        "SELECT e.experiment_id, e.identifier, e.variant, e.exposed_at, "
        "(SELECT count(*) FROM exposures o WHERE o.experiment_id = e.experiment_id "
        "AND o.identifier = e.identifier) > 1 "
        "FROM exposures e WHERE NOT EXISTS (SELECT 1 FROM exposures o "
        "WHERE o.experiment_id = e.experiment_id AND o.identifier = e.identifier "
        "AND (o.exposed_at < e.exposed_at OR (o.exposed_at = e.exposed_at AND o.id < e.id)))"
    )
    op.create_table(
        "experiment_metric_values",
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("metric", sa.String(length=200), nullable=False),
        sa.Column("identifier", sa.Text(), nullable=False),
        sa.Column("variant", sa.String(length=200), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name=op.f("fk_experiment_metric_values_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "experiment_id", "metric", "identifier", name=op.f("pk_experiment_metric_values")
        ),
    )
    op.create_index(
        "ix_experiment_metric_values_variant",
        "experiment_metric_values",
        ["experiment_id", "metric", "variant"],
        unique=False,
    )
    op.create_table(
        "experiment_metric_totals",
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("metric", sa.String(length=200), nullable=False),
        sa.Column("variant", sa.String(length=200), nullable=False),
        sa.Column("shard", sa.Integer(), nullable=False),
        sa.Column("users", sa.Integer(), nullable=False),
        sa.Column("converted", sa.Integer(), nullable=False),
        sa.Column("total", sa.Float(), nullable=False),
        sa.Column("squares", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name=op.f("fk_experiment_metric_totals_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "experiment_id", "metric", "variant", "shard", name=op.f("pk_experiment_metric_totals")
        ),
    )
    op.execute(
        "INSERT INTO experiment_metric_totals (experiment_id, metric, variant, shard, users, "
        "converted, total, squares) SELECT experiment_id, '$exposures', variant, 0, count(*), "
        "0, 0, 0 FROM exposures GROUP BY experiment_id, variant"
    )
    op.execute(
        "INSERT INTO experiment_metric_totals (experiment_id, metric, variant, shard, users, "
        "converted, total, squares) SELECT experiment_id, '$users', "
        "CASE WHEN multiple THEN '' ELSE variant END, 0, count(*), 0, 0, 0 "
        "FROM experiment_metric_users "
        "GROUP BY experiment_id, CASE WHEN multiple THEN '' ELSE variant END"
    )


def downgrade() -> None:
    op.drop_table("experiment_metric_totals")
    op.drop_index("ix_experiment_metric_values_variant", table_name="experiment_metric_values")
    op.drop_table("experiment_metric_values")
    op.drop_index("ix_experiment_metric_users_variant", table_name="experiment_metric_users")
    op.drop_table("experiment_metric_users")
    with op.batch_alter_table("experiments", schema=None) as batch_op:
        batch_op.drop_column("metrics")
