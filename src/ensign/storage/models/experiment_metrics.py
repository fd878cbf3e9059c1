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
