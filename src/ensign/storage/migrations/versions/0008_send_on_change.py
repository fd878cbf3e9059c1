"""send on change: integrations record an identity's flags only when they changed

Each integration gets `deliver` ("changes" or "every_evaluation"), `resend_after_hours` and a
`suppressed_count` counter; each identity keeps, per integration, a fingerprint of the flags
last recorded for it (`delivered_flags`), read and written by the identify transaction.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 18:50:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("integration_configs") as batch:
        batch.add_column(
            sa.Column("deliver", sa.String(20), nullable=False, server_default="changes")
        )
        batch.add_column(
            sa.Column("resend_after_hours", sa.Integer(), nullable=False, server_default="24")
        )
        batch.add_column(
            sa.Column("suppressed_count", sa.BigInteger(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("identities") as batch:
        batch.add_column(sa.Column("delivered_flags", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("identities") as batch:
        batch.drop_column("delivered_flags")
    with op.batch_alter_table("integration_configs") as batch:
        batch.drop_column("suppressed_count")
        batch.drop_column("resend_after_hours")
        batch.drop_column("deliver")
