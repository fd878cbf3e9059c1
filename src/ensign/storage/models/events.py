"""Events the SDKs send (`POST /v1/events`): the keys that make an SDK's re-sent batch a
no-op, each environment's counters, and a short log of exposures no experiment took."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ensign.storage.base import Base, OutboxId, utcnow


class ReceivedEvent(Base):
    """The dedupe key of each event accepted, kept while an SDK may still re-send it.

    The unique constraint is what makes a retried batch store nothing twice: the key hashes
    what the SDK re-sends unchanged (see `services.events.event_key`)."""

    __tablename__ = "received_events"
    __table_args__ = (
        UniqueConstraint("environment_id", "event_key"),
        Index("ix_received_events_received_at", "received_at"),
    )

    id: Mapped[int] = mapped_column(OutboxId, primary_key=True, autoincrement=True)
    environment_id: Mapped[int] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"))
    event_key: Mapped[str] = mapped_column(String(32))
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class EventCounters(Base):
    """Per environment: what the events endpoint received and what became of it."""

    __tablename__ = "event_counters"

    environment_id: Mapped[int] = mapped_column(
        ForeignKey("environments.id", ondelete="CASCADE"), primary_key=True
    )
    received: Mapped[int] = mapped_column(BigInteger, default=0)
    exposures: Mapped[int] = mapped_column(BigInteger, default=0)
    custom: Mapped[int] = mapped_column(BigInteger, default=0)
    duplicates: Mapped[int] = mapped_column(BigInteger, default=0)
    rejected: Mapped[int] = mapped_column(BigInteger, default=0)
    skipped: Mapped[int] = mapped_column(BigInteger, default=0)
    unmatched: Mapped[int] = mapped_column(BigInteger, default=0)
    time_adjusted: Mapped[int] = mapped_column(BigInteger, default=0)
    # The exposures not recorded (`unmatched` is their total), by why Ensign refused them.
    not_in_experiment: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    wrong_variant: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    unknown_variant: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    no_running_experiment: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    last_received_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)


class UnmatchedExposure(Base):
    """An exposure Ensign did not record, with the reason: no running experiment, or its own
    evaluation did not put the identity in the experiment on the variant claimed. Kept (the
    newest few per environment) so that someone can see what the SDKs report, never sent."""

    __tablename__ = "unmatched_exposures"
    __table_args__ = (Index("ix_unmatched_exposures_environment_id_id", "environment_id", "id"),)

    id: Mapped[int] = mapped_column(OutboxId, primary_key=True, autoincrement=True)
    environment_id: Mapped[int] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"))
    feature_name: Mapped[str] = mapped_column(Text)
    identifier: Mapped[str | None] = mapped_column(Text, nullable=True)
    variant: Mapped[str | None] = mapped_column(Text, nullable=True)
    experiment_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # `not_in_experiment`, `wrong_variant`, `unknown_variant` or `no_running_experiment`
    # (None for the rows from before reasons were recorded, which had no experiment).
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The variant Ensign's evaluation served the identity, when it differs from the claim.
    served_variant: Mapped[str | None] = mapped_column(Text, nullable=True)
    occurred_at: Mapped[dt.datetime] = mapped_column()
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
