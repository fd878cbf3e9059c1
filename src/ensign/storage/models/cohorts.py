"""The cohort-sync tables: keys, per-environment settings, cohorts, members, sessions and log.

A cohort is a list of identities kept by another tool (a Mixpanel cohort, or any tool that
calls the generic webhook). Membership is stored twice on purpose: as a trait on the identity,
which is what flags see, and as a `cohort_members` row, which remembers when Ensign last saw
the member so that a full sync can remove everyone it did not see.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from ensign.storage.base import Base, OutboxId, utcnow


class CohortSyncKey(Base):
    """An environment's cohort-sync key, sent as the HTTP Basic password (or a Bearer token).

    Only a hash of the secret is stored.
    """

    __tablename__ = "cohort_sync_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    environment_id: Mapped[int] = mapped_column(
        ForeignKey("environments.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class CohortSyncSettings(Base):
    """How an environment maps cohort members to identities; absent means the defaults."""

    __tablename__ = "cohort_sync_settings"

    environment_id: Mapped[int] = mapped_column(
        ForeignKey("environments.id", ondelete="CASCADE"), primary_key=True
    )
    # The member property whose value is the identity identifier: `mixpanel_distinct_id`,
    # `email`, or any property exported with the cohort.
    member_key: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Cohort(Base):
    """One synced cohort of one environment, keyed by its source and the source's id."""

    __tablename__ = "cohorts"
    __table_args__ = (UniqueConstraint("environment_id", "source", "external_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    environment_id: Mapped[int] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"))
    # mixpanel, amplitude, webhook (the services.cohorts.SOURCES table)
    source: Mapped[str] = mapped_column(String(20))
    external_id: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    trait_key: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class CohortMember(Base):
    """An identity in a cohort, and when a sync last named it."""

    __tablename__ = "cohort_members"
    __table_args__ = (Index("ix_cohort_members_identity_id", "identity_id"),)

    cohort_id: Mapped[int] = mapped_column(
        ForeignKey("cohorts.id", ondelete="CASCADE"), primary_key=True
    )
    identity_id: Mapped[int] = mapped_column(
        ForeignKey("identities.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # A full sync, once complete, removes the members not seen since it started.
    seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class CohortSyncSession(Base):
    """The pages of one full (`members`) sync received so far."""

    __tablename__ = "cohort_sync_sessions"
    __table_args__ = (UniqueConstraint("cohort_id", "session_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cohort_id: Mapped[int] = mapped_column(ForeignKey("cohorts.id", ondelete="CASCADE"))
    session_id: Mapped[str] = mapped_column(String(200))
    total_pages: Mapped[int] = mapped_column(Integer)
    # Sorted page numbers (1-based) received in this session's current window.
    pages: Mapped[list[int]] = mapped_column(JSON, default=list)
    # When the current window opened: its first page, or the first page after it expired.
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class CohortSyncLogEntry(Base):
    """One cohort-sync call: what it asked for, what it changed and how it ended."""

    __tablename__ = "cohort_sync_log"
    __table_args__ = (Index("ix_cohort_sync_log_environment_id_id", "environment_id", "id"),)

    id: Mapped[int] = mapped_column(OutboxId, primary_key=True, autoincrement=True)
    environment_id: Mapped[int] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    source: Mapped[str] = mapped_column(String(20))
    cohort_external_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    cohort_name: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    action: Mapped[str | None] = mapped_column(String(20), nullable=True)
    session_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    page: Mapped[int | None] = mapped_column(Integer, nullable=True)
    total_pages: Mapped[int | None] = mapped_column(Integer, nullable=True)
    received: Mapped[int] = mapped_column(Integer, default=0)
    added: Mapped[int] = mapped_column(Integer, default=0)
    removed: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    # success, failure
    outcome: Mapped[str] = mapped_column(String(10))
    status_code: Mapped[int] = mapped_column(Integer)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    duration_ms: Mapped[float] = mapped_column(Float, default=0.0)
