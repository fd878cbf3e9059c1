"""Per-user aggregates of an experiment's metrics, kept up to date as exposures and events
arrive, so that results read one row per user instead of every event."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ensign.storage.base import Base


class ExperimentMetricUser(Base):
    """An identity exposed to an experiment: the variant and time of its first exposure, and
    whether it was later exposed to another variant too (then it is left out of metrics)."""

    __tablename__ = "experiment_metric_users"
    __table_args__ = (Index("ix_experiment_metric_users_variant", "experiment_id", "variant"),)

    experiment_id: Mapped[int] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    identifier: Mapped[str] = mapped_column(Text, primary_key=True)
    variant: Mapped[str] = mapped_column(String(200))
    exposed_at: Mapped[dt.datetime] = mapped_column()
    multiple: Mapped[bool] = mapped_column(Boolean, default=False)


class ExperimentMetricValue(Base):
    """One user's value of one metric: its events counted (conversion, count) or their
    property summed (sum) within the attribution window. The variant is copied from the user
    row so that results group this table alone."""

    __tablename__ = "experiment_metric_values"
    __table_args__ = (
        Index("ix_experiment_metric_values_variant", "experiment_id", "metric", "variant"),
    )

    experiment_id: Mapped[int] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    metric: Mapped[str] = mapped_column(String(200), primary_key=True)
    identifier: Mapped[str] = mapped_column(Text, primary_key=True)
    variant: Mapped[str] = mapped_column(String(200))
    events: Mapped[int] = mapped_column(Integer, default=0)
    value: Mapped[float] = mapped_column(Float, default=0.0)


class ExperimentMetricTotal(Base):
    """Running sums over users, per experiment, metric and variant, kept with the per-user rows
    so that results read a handful of rows however many users there are. Split in `shard`s
    (on PostgreSQL one per connection) so that concurrent writers seldom wait on the same row.

    Besides the metrics (users with an event in `converted`, Σvalue, Σvalue²), two reserved
    names: `$users` holds per variant the users counted in metrics (`users`), and under variant
    "" those left out for several variants; `$exposures` holds per variant the distinct
    identities ever exposed to it."""

    __tablename__ = "experiment_metric_totals"

    experiment_id: Mapped[int] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    metric: Mapped[str] = mapped_column(String(200), primary_key=True)
    variant: Mapped[str] = mapped_column(String(200), primary_key=True)
    shard: Mapped[int] = mapped_column(Integer, primary_key=True)
    users: Mapped[int] = mapped_column(Integer, default=0)
    converted: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[float] = mapped_column(Float, default=0.0)
    squares: Mapped[float] = mapped_column(Float, default=0.0)
