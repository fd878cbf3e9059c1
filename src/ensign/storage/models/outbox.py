"""Analytics integrations and their outbox: configurations with delivery counters, recorded
evaluations, the queue rows pointing at them, and each delivery attempt."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
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


class IntegrationConfig(Base):
    """An environment's analytics destination (Heap, Mixpanel), and its delivery counters.

    The counters are kept here, per batch, so that delivered outbox rows can be deleted at once
    and the outbox stays small under any history.
    """

    __tablename__ = "integration_configs"
    __table_args__ = (UniqueConstraint("environment_id", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    environment_id: Mapped[int] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    api_key: Mapped[str] = mapped_column(String(200))
    region: Mapped[str | None] = mapped_column(String(10), nullable=True)
    base_url: Mapped[str] = mapped_column(String(500))
    # The settings every destination shares take their defaults from
    # `integrations.common.DEFAULTS`, given by the service that creates a configuration; the
    # server defaults below are what migration 0008 gave existing rows (a test pins them equal).
    enabled: Mapped[bool] = mapped_column(Boolean)
    # Which flags are sent: all (both null), the named features, or the features with a tag.
    feature_names: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    tag_label: Mapped[str | None] = mapped_column(String(100), nullable=True)
    # The destination's own options (`Schema.options`: Heap's `event_name`, Mixpanel's
    # `ignore_time`, …), and the shared `exposures` and `events`.
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # "changes": an identity's flags are recorded only when they differ from the last ones
    # recorded for it, or `resend_after_hours` after those (0: never); "every_evaluation": on
    # every identify call.
    deliver: Mapped[str] = mapped_column(String(20), server_default="changes")
    resend_after_hours: Mapped[int] = mapped_column(Integer, server_default="24")
    delivered_count: Mapped[int] = mapped_column(BigInteger, default=0)
    failed_count: Mapped[int] = mapped_column(BigInteger, default=0)
    given_up_count: Mapped[int] = mapped_column(BigInteger, default=0)
    # Identify calls whose unchanged flags were not recorded (deliver="changes").
    suppressed_count: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    last_success_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    last_error_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class RecordedEvaluation(Base):
    """One identity evaluation's flags, stored once for every integration that sends it.

    `OutboxDelivery` rows (one per integration) point here; the row is deleted with the last
    of them. `flags` is JSON text {feature name: value sent} (the value rule of
    `integrations.property_value` already applied), so delivery needs no per-flag work; for
    destinations that record context (`integrations.schema.Schema.record_context`) it is
    {"traits", "flags": [{feature, enabled, value}], "segments"} instead.
    """

    __tablename__ = "evaluations"

    id: Mapped[int] = mapped_column(OutboxId, primary_key=True, autoincrement=True)
    environment_id: Mapped[int] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"))
    # What the record is: `flags` (an identity's flag set, `flags` holding {name: value}) or
    # `exposure` (an experiment exposure, `flags` holding {"experiment": name, "variant": key,
    # "feature": name, …}), or `event` (an SDK's custom event, `flags` holding
    # {"event": name, "properties": {…}}).
    kind: Mapped[str] = mapped_column(String(12), default="flags", server_default="flags")
    # Unique to the evaluation: the vendors' idempotency key (each vendor sees it once).
    event_key: Mapped[str] = mapped_column(String(40))
    identifier: Mapped[str] = mapped_column(Text)
    flags: Mapped[str] = mapped_column(Text)
    evaluated_at: Mapped[dt.datetime] = mapped_column()


class OutboxDelivery(Base):
    """One evaluation waiting to reach one integration: a narrow row, cheap to write and claim.

    Written by the request path inside its transaction. On PostgreSQL a dispatcher claims rows
    by giving them its token and pushing `next_attempt_at` forward as a lease, so a crashed
    dispatcher's rows come due again; on SQLite (one dispatcher) claims are kept in memory.
    Delivered rows are deleted; failed and given-up ones stay for inspection until the
    retention passes (`storage.retention`).
    """

    __tablename__ = "outbox_deliveries"
    __table_args__ = (
        Index("ix_outbox_deliveries_due", "integration_id", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(OutboxId, primary_key=True, autoincrement=True)
    integration_id: Mapped[int] = mapped_column(
        ForeignKey("integration_configs.id", ondelete="CASCADE")
    )
    evaluation_id: Mapped[int] = mapped_column(
        OutboxId, ForeignKey("evaluations.id", ondelete="CASCADE"), index=True
    )
    # pending (first try or retrying), delivered (test events only), failed, given_up
    status: Mapped[str] = mapped_column(String(12), default="pending")
    next_attempt_at: Mapped[dt.datetime] = mapped_column()
    claim_token: Mapped[str | None] = mapped_column(String(32), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    is_test: Mapped[bool] = mapped_column(Boolean, default=False)
    last_attempt_id: Mapped[int | None] = mapped_column(OutboxId, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class DeliveryAttempt(Base):
    """One request to a vendor, carrying one batch of evaluations."""

    __tablename__ = "delivery_attempts"
    __table_args__ = (Index("ix_delivery_attempts_integration_id_id", "integration_id", "id"),)

    id: Mapped[int] = mapped_column(OutboxId, primary_key=True, autoincrement=True)
    integration_id: Mapped[int] = mapped_column(
        ForeignKey("integration_configs.id", ondelete="CASCADE")
    )
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # delivered, retry, failed
    outcome: Mapped[str] = mapped_column(String(12))
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    evaluations: Mapped[int] = mapped_column(Integer)
    duration_ms: Mapped[float] = mapped_column(Float)
    response: Mapped[str | None] = mapped_column(Text, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
