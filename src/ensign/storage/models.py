"""The tables. Every schema change goes through an Alembic migration in `migrations/versions`."""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timestamp that is always timezone-aware UTC in Python, on every database.

    SQLite keeps no zone, so values read back naive; they were written as UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
            if dialect.name == "sqlite":
                value = value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dt.datetime: UTCDateTime(),
        dict[str, Any]: JSON,
    }


class Organisation(Base):
    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    persist_trait_data: Mapped[bool] = mapped_column(Boolean, default=True)
    stop_serving_flags: Mapped[bool] = mapped_column(Boolean, default=False)
    feature_analytics: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AdminApiKey(Base):
    """An organisation's admin API key. Only a hash of the secret is stored."""

    __tablename__ = "admin_api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    expires_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
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


feature_tags_table_name = "feature_tags"


class Tag(Base):
    __tablename__ = "tags"
    __table_args__ = (UniqueConstraint("project_id", "label"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    label: Mapped[str] = mapped_column(String(100))
    color: Mapped[str] = mapped_column(String(20), default="#3d4db6")


class FeatureTag(Base):
    __tablename__ = feature_tags_table_name

    feature_id: Mapped[int] = mapped_column(
        ForeignKey("features.id", ondelete="CASCADE"), primary_key=True
    )
    tag_id: Mapped[int] = mapped_column(ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True)


class Feature(Base):
    __tablename__ = "features"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Kept as the text the operator typed; typed by the same rule as other values when used.
    initial_value: Mapped[str | None] = mapped_column(Text, nullable=True)
    default_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    is_server_key_only: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    tags: Mapped[list[Tag]] = relationship(secondary=feature_tags_table_name, lazy="selectin")
    options: Mapped[list[MultivariateOption]] = relationship(
        back_populates="feature",
        order_by="MultivariateOption.id",
        lazy="selectin",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class MultivariateOption(Base):
    __tablename__ = "multivariate_options"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    feature_id: Mapped[int] = mapped_column(
        ForeignKey("features.id", ondelete="CASCADE"), index=True
    )
    value_type: Mapped[str | None] = mapped_column(String(10), nullable=True)
    value_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    default_percentage_allocation: Mapped[float] = mapped_column(Float, default=0.0)

    feature: Mapped[Feature] = relationship(back_populates="options")


class Segment(Base):
    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    # A feature-specific segment is only shown for that feature.
    feature_id: Mapped[int | None] = mapped_column(
        ForeignKey("features.id", ondelete="CASCADE"), nullable=True
    )
    # The rule tree is always read and written whole, so it is kept as one JSON document:
    # [{"type": "ALL", "rules": [...], "conditions": [{"operator", "property", "value"}]}]
    rules: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # Set for segments that Ensign manages itself (cohorts); users may not edit their rules.
    managed_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Identity(Base):
    __tablename__ = "identities"
    __table_args__ = (UniqueConstraint("environment_id", "identifier_hash"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    environment_id: Mapped[int] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"))
    identifier: Mapped[str] = mapped_column(Text)
    # Identifiers may be 2,000 characters; a btree cannot index that much text on every
    # database, so uniqueness and look-ups use its SHA-256.
    identifier_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Trait(Base):
    __tablename__ = "traits"
    __table_args__ = (UniqueConstraint("identity_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    identity_id: Mapped[int] = mapped_column(ForeignKey("identities.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(200))
    value_type: Mapped[str] = mapped_column(String(10))
    value_text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class FeatureState(Base):
    """A feature's state in an environment: its default, a segment override or an identity override.

    `scope` is "" for the default, "s<segment id>" or "i<identity id>" for overrides, so one
    plain unique constraint keeps a single state per scope on every database.
    """

    __tablename__ = "feature_states"
    __table_args__ = (
        UniqueConstraint("environment_id", "feature_id", "scope"),
        Index("ix_feature_states_identity_id", "identity_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    environment_id: Mapped[int] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"))
    feature_id: Mapped[int] = mapped_column(ForeignKey("features.id", ondelete="CASCADE"))
    scope: Mapped[str] = mapped_column(String(40), default="")
    segment_id: Mapped[int | None] = mapped_column(
        ForeignKey("segments.id", ondelete="CASCADE"), nullable=True
    )
    identity_id: Mapped[int | None] = mapped_column(
        ForeignKey("identities.id", ondelete="CASCADE"), nullable=True
    )
    priority: Mapped[int | None] = mapped_column(Integer, nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    value_type: Mapped[str | None] = mapped_column(String(10), nullable=True)
    value_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    uuid: Mapped[str] = mapped_column(String(36))
    # The multivariate hashing seed (the document's `django_id`). Carried over from
    # `hashing_seeds` when a state is re-created, so users keep their variant.
    hash_seed: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    mv_values: Mapped[list[MultivariateStateValue]] = relationship(
        order_by="MultivariateStateValue.id",
        lazy="selectin",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class MultivariateStateValue(Base):
    __tablename__ = "multivariate_state_values"
    __table_args__ = (UniqueConstraint("feature_state_id", "option_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    feature_state_id: Mapped[int] = mapped_column(
        ForeignKey("feature_states.id", ondelete="CASCADE"), index=True
    )
    option_id: Mapped[int] = mapped_column(
        ForeignKey("multivariate_options.id", ondelete="CASCADE")
    )
    percentage_allocation: Mapped[float] = mapped_column(Float)
    uuid: Mapped[str] = mapped_column(String(36))
    # Orders variants for bucketing (the document's mv value `id`). New values take their
    # option's id, which never changes; imported values keep the id the reference gave them.
    hash_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class HashingSeed(Base):
    """Remembers each scope's multivariate seed, even after its feature state is deleted."""

    __tablename__ = "hashing_seeds"

    environment_id: Mapped[int] = mapped_column(
        ForeignKey("environments.id", ondelete="CASCADE"), primary_key=True
    )
    feature_id: Mapped[int] = mapped_column(
        ForeignKey("features.id", ondelete="CASCADE"), primary_key=True
    )
    scope: Mapped[str] = mapped_column(String(40), primary_key=True)
    seed: Mapped[int] = mapped_column(BigInteger)


class AuditLog(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    organisation_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    project_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    environment_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    actor: Mapped[str] = mapped_column(String(300))
    action: Mapped[str] = mapped_column(String(20))
    resource_type: Mapped[str] = mapped_column(String(50))
    resource_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    log: Mapped[str] = mapped_column(Text)
    before: Mapped[Any] = mapped_column(JSON, nullable=True)
    after: Mapped[Any] = mapped_column(JSON, nullable=True)


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


# --- analytics integrations ---------------------------------------------------------------------

# Outbox ids grow with every evaluation sent; SQLite only auto-increments an INTEGER key.
OutboxId = BigInteger().with_variant(Integer, "sqlite")


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
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Which flags are sent: all (both null), the named features, or the features with a tag.
    feature_names: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    tag_label: Mapped[str | None] = mapped_column(String(100), nullable=True)
    # Vendor options: Heap `event_name`, Mixpanel `ignore_time`.
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    delivered_count: Mapped[int] = mapped_column(BigInteger, default=0)
    failed_count: Mapped[int] = mapped_column(BigInteger, default=0)
    given_up_count: Mapped[int] = mapped_column(BigInteger, default=0)
    last_success_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    last_error_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class RecordedEvaluation(Base):
    """One identity evaluation's flags, stored once for every integration that sends it.

    `OutboxDelivery` rows (one per integration) point here; the row is deleted with the last
    of them. `flags` is JSON text {feature name: value sent} (the value rule of
    `integrations.property_value` already applied), so delivery needs no per-flag work.
    """

    __tablename__ = "evaluations"

    id: Mapped[int] = mapped_column(OutboxId, primary_key=True, autoincrement=True)
    environment_id: Mapped[int] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"))
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
    Delivered rows are deleted; failed and given-up ones stay for inspection.
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


from ensign.storage import cohort_models as _cohort_models  # noqa: E402,F401
from ensign.storage import user_models as _user_models  # noqa: E402,F401
