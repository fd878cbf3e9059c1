"""Change records: every applied change to what an environment serves, as one row per
environment and change set, with each resource's before and after.

Written in the same transaction as the change (`services.changes.apply`), so a record exists
exactly when its change does. They are the environment's history and the outbox that change
announcements are delivered from; nothing delivers them yet.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ensign.storage.base import Base, OutboxId, utcnow


class ChangeRecord(Base):
    __tablename__ = "change_records"
    __table_args__ = (Index("ix_change_records_environment_id_id", "environment_id", "id"),)

    id: Mapped[int] = mapped_column(OutboxId, primary_key=True, autoincrement=True)
    # The change set's id, shared by its rows in every environment it changed.
    change_set: Mapped[str] = mapped_column(String(36), index=True)
    organisation_id: Mapped[int] = mapped_column(Integer)
    project_id: Mapped[int] = mapped_column(Integer)
    environment_id: Mapped[int] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"))
    actor: Mapped[str] = mapped_column(String(300))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    # [{resource_type, resource_id, action, log, before, after}], in the order applied.
    changes: Mapped[list[Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
