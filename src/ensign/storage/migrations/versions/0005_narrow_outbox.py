"""narrow outbox: each evaluation's flags stored once, narrow queue rows per integration

`outbox_evaluations` (one wide row per evaluation per integration) becomes `evaluations` (the
flags, once) and `outbox_deliveries` (one narrow row per integration). Every existing row is
moved, whatever its status: it keeps its id (so a test event being polled is still found), its
state, attempts and errors, and gets an evaluation of its own (with the same id) holding its
flags, converted from `{name: [enabled, value]}` to the value sent `{name: value}`. Pending
rows lose their claim token: on PostgreSQL their lease still holds them until it expires.

The downgrade moves the rows back, each value sent `v` becoming `[true, v]`, which the old
code sends as the same `v`.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OutboxId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
BATCH = 1000


def _sent_values(text: str) -> str:
    """`{name: [enabled, value]}` → `{name: value sent}` (see `integrations.property_value`)."""
    try:
        flags = orjson.loads(text)
    except orjson.JSONDecodeError:
        return text
    if not isinstance(flags, dict):
        return text
    values: dict[str, Any] = {}
    for name, pair in flags.items():
        if isinstance(pair, list) and len(pair) == 2:
            enabled, value = bool(pair[0]), pair[1]
            values[name] = value if enabled and value is not None else enabled
        else:
            values[name] = pair
    return orjson.dumps(values).decode()


def _pairs(text: str) -> str:
    """`{name: value sent}` → `{name: [true, value]}`, which the old code sends as `value`."""
    try:
        values = orjson.loads(text)
    except orjson.JSONDecodeError:
        return text
    if not isinstance(values, dict):
        return text
    return orjson.dumps({name: [True, value] for name, value in values.items()}).decode()


def _reset_sequence(table: str) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
            f"COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
        )


def upgrade() -> None:
    op.create_table(
        "evaluations",
        sa.Column("id", OutboxId, autoincrement=True, nullable=False),
        sa.Column("environment_id", sa.Integer(), nullable=False),
        sa.Column("event_key", sa.String(length=40), nullable=False),
        sa.Column("identifier", sa.Text(), nullable=False),
        sa.Column("flags", sa.Text(), nullable=False),
        sa.Column("evaluated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["environment_id"],
            ["environments.id"],
            name=op.f("fk_evaluations_environment_id_environments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evaluations")),
    )
    op.create_table(
        "outbox_deliveries",
        sa.Column("id", OutboxId, autoincrement=True, nullable=False),
        sa.Column("integration_id", sa.Integer(), nullable=False),
        sa.Column("evaluation_id", OutboxId, nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claim_token", sa.String(length=32), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("is_test", sa.Boolean(), nullable=False),
        sa.Column("last_attempt_id", OutboxId, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["evaluation_id"],
            ["evaluations.id"],
            name=op.f("fk_outbox_deliveries_evaluation_id_evaluations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["integration_id"],
            ["integration_configs.id"],
            name=op.f("fk_outbox_deliveries_integration_id_integration_configs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_deliveries")),
    )
    with op.batch_alter_table("outbox_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_outbox_deliveries_due",
            ["integration_id", "status", "next_attempt_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_outbox_deliveries_evaluation_id"), ["evaluation_id"], unique=False
        )

    # Move every row: its flags become an evaluation with the row's id.
    bind = op.get_bind()
    last = 0
    while True:
        rows = bind.execute(
            sa.text(
                "SELECT o.id, c.environment_id, o.event_key, o.identifier, o.flags, "
                "o.evaluated_at, o.integration_id, o.status, o.next_attempt_at, o.attempts, "
                "o.is_test, o.last_attempt_id, o.last_error, o.created_at "
                "FROM outbox_evaluations o JOIN integration_configs c ON c.id = o.integration_id "
                "WHERE o.id > :last ORDER BY o.id LIMIT :limit"
            ),
            {"last": last, "limit": BATCH},
        ).all()
        if not rows:
            break
        last = rows[-1][0]
        bind.execute(
            sa.text(
                "INSERT INTO evaluations (id, environment_id, event_key, identifier, flags, "
                "evaluated_at) VALUES (:id, :environment_id, :event_key, :identifier, :flags, "
                ":evaluated_at)"
            ),
            [
                {
                    "id": r[0],
                    "environment_id": r[1],
                    "event_key": r[2],
                    "identifier": r[3],
                    "flags": _sent_values(r[4]),
                    "evaluated_at": r[5],
                }
                for r in rows
            ],
        )
        bind.execute(
            sa.text(
                "INSERT INTO outbox_deliveries (id, integration_id, evaluation_id, status, "
                "next_attempt_at, claim_token, attempts, is_test, last_attempt_id, last_error, "
                "created_at) VALUES (:id, :integration_id, :id, :status, :next_attempt_at, NULL, "
                ":attempts, :is_test, :last_attempt_id, :last_error, :created_at)"
            ),
            [
                {
                    "id": r[0],
                    "integration_id": r[6],
                    "status": r[7],
                    "next_attempt_at": r[8],
                    "attempts": r[9],
                    "is_test": r[10],
                    "last_attempt_id": r[11],
                    "last_error": r[12],
                    "created_at": r[13],
                }
                for r in rows
            ],
        )
    _reset_sequence("evaluations")
    _reset_sequence("outbox_deliveries")

    with op.batch_alter_table("outbox_evaluations", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_evaluations_due")
        batch_op.drop_index(batch_op.f("ix_outbox_evaluations_claim_token"))
    op.drop_table("outbox_evaluations")


def downgrade() -> None:
    op.create_table(
        "outbox_evaluations",
        sa.Column("id", OutboxId, autoincrement=True, nullable=False),
        sa.Column("integration_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("event_key", sa.String(length=40), nullable=False),
        sa.Column("identifier", sa.Text(), nullable=False),
        sa.Column("flags", sa.Text(), nullable=False),
        sa.Column("evaluated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claim_token", sa.String(length=32), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("is_test", sa.Boolean(), nullable=False),
        sa.Column("last_attempt_id", OutboxId, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["integration_id"],
            ["integration_configs.id"],
            name=op.f("fk_outbox_evaluations_integration_id_integration_configs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_evaluations")),
    )
    with op.batch_alter_table("outbox_evaluations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_outbox_evaluations_claim_token"), ["claim_token"], unique=False
        )
        batch_op.create_index(
            "ix_outbox_evaluations_due",
            ["integration_id", "status", "next_attempt_at"],
            unique=False,
        )
    bind = op.get_bind()
    last = 0
    while True:
        rows = bind.execute(
            sa.text(
                "SELECT d.id, d.integration_id, d.status, e.event_key, e.identifier, e.flags, "
                "e.evaluated_at, d.next_attempt_at, d.attempts, d.is_test, d.last_attempt_id, "
                "d.last_error, d.created_at "
                "FROM outbox_deliveries d JOIN evaluations e ON e.id = d.evaluation_id "
                "WHERE d.id > :last ORDER BY d.id LIMIT :limit"
            ),
            {"last": last, "limit": BATCH},
        ).all()
        if not rows:
            break
        last = rows[-1][0]
        bind.execute(
            sa.text(
                "INSERT INTO outbox_evaluations (id, integration_id, status, event_key, "
                "identifier, flags, evaluated_at, next_attempt_at, claim_token, attempts, "
                "is_test, last_attempt_id, last_error, created_at) VALUES (:id, "
                ":integration_id, :status, :event_key, :identifier, :flags, :evaluated_at, "
                ":next_attempt_at, NULL, :attempts, :is_test, :last_attempt_id, :last_error, "
                ":created_at)"
            ),
            [
                {
                    "id": r[0],
                    "integration_id": r[1],
                    "status": r[2],
                    "event_key": r[3],
                    "identifier": r[4],
                    "flags": _pairs(r[5]),
                    "evaluated_at": r[6],
                    "next_attempt_at": r[7],
                    "attempts": r[8],
                    "is_test": r[9],
                    "last_attempt_id": r[10],
                    "last_error": r[11],
                    "created_at": r[12],
                }
                for r in rows
            ],
        )
    _reset_sequence("outbox_evaluations")
    with op.batch_alter_table("outbox_deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_deliveries_evaluation_id"))
        batch_op.drop_index("ix_outbox_deliveries_due")
    op.drop_table("outbox_deliveries")
    op.drop_table("evaluations")
