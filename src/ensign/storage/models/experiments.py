"""Experiments on multivariate features, and the exposures of identities to their variants."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from ensign.storage.base import Base, OutboxId, utcnow


class Experiment(Base):
    """An A/B test of one multivariate feature in one environment.

    At most one experiment per feature and environment runs at a time: the partial unique
    index holds that even against two concurrent starts.
    """

    __tablename__ = "experiments"
    __table_args__ = (
        Index(
            "uq_experiments_running_feature",
            "environment_id",
            "feature_id",
            unique=True,
            sqlite_where=text("running"),
            postgresql_where=text("running"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    environment_id: Mapped[int] = mapped_column(
        ForeignKey("environments.id", ondelete="CASCADE"), index=True
    )
    feature_id: Mapped[int] = mapped_column(ForeignKey("features.id", ondelete="CASCADE"))
    # Deleting the segment ends the restriction rather than the experiment's history.
    segment_id: Mapped[int | None] = mapped_column(
        ForeignKey("segments.id", ondelete="SET NULL"), nullable=True
    )
    name: Mapped[str] = mapped_column(String(200))
    running: Mapped[bool] = mapped_column(Boolean, default=True)
    started_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    stopped_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # The metrics measured: a list of `services.experiment_metrics.Metric` as JSON.
    metrics: Mapped[list[Any]] = mapped_column(JSON, default=list, server_default="[]")


class Exposure(Base):
    """The first time an identity was served one variant of an experiment.

    The unique key makes recording idempotent: the identify path and the events API insert
    with ON CONFLICT DO NOTHING, and only a new row is sent to the integrations.
    """

    __tablename__ = "exposures"
    __table_args__ = (UniqueConstraint("experiment_id", "identifier", "variant"),)

    id: Mapped[int] = mapped_column(OutboxId, primary_key=True, autoincrement=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"))
    identifier: Mapped[str] = mapped_column(Text)
    variant: Mapped[str] = mapped_column(String(200))
    exposed_at: Mapped[dt.datetime] = mapped_column()
