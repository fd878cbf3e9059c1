"""Organisations and what hangs off them to serve flags: projects, environments, their server
keys, and the evaluation counts SDKs report."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Boolean, Date, ForeignKey, Integer, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ensign.storage.base import Base, utcnow


class Organisation(Base):
    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    persist_trait_data: Mapped[bool] = mapped_column(Boolean, default=True)
    stop_serving_flags: Mapped[bool] = mapped_column(Boolean, default=False)
    feature_analytics: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    hide_disabled_flags: Mapped[bool] = mapped_column(Boolean, default=False)
    enable_realtime_updates: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    organisation: Mapped[Organisation] = relationship()


class Environment(Base):
    __tablename__ = "environments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    api_key: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    allow_client_traits: Mapped[bool] = mapped_column(Boolean, default=True)
    hide_sensitive_data: Mapped[bool] = mapped_column(Boolean, default=False)
    hide_disabled_flags: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    use_identity_composite_key_for_hashing: Mapped[bool] = mapped_column(Boolean, default=True)
    use_identity_overrides_in_local_eval: Mapped[bool] = mapped_column(Boolean, default=True)
    # Bumped on every change that can alter a flag; processes compare it to invalidate caches.
    revision: Mapped[int] = mapped_column(BigInteger, default=1)
    # Set while `ensign import` writes the environment in many transactions: until the last
    # one clears it, its keys are unknown to the SDK API.
    importing: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    project: Mapped[Project] = relationship()


class ServerKey(Base):
    __tablename__ = "server_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    environment_id: Mapped[int] = mapped_column(
        ForeignKey("environments.id", ondelete="CASCADE"), index=True
    )
    key: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    expires_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class FlagEvaluationCount(Base):
    """Counts reported by SDKs through `POST /api/v1/analytics/flags/`, per feature and day."""

    __tablename__ = "flag_evaluation_counts"

    environment_id: Mapped[int] = mapped_column(
        ForeignKey("environments.id", ondelete="CASCADE"), primary_key=True
    )
    feature_id: Mapped[int] = mapped_column(
        ForeignKey("features.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)
