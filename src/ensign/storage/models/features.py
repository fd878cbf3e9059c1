"""Features, their variants and tags, segments, and each feature's states per environment."""

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
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ensign.storage.base import Base, utcnow

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
