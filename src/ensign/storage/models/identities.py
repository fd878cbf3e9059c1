"""Identities and their traits."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ensign.storage.base import Base, utcnow


class Identity(Base):
    __tablename__ = "identities"
    __table_args__ = (UniqueConstraint("environment_id", "identifier_hash"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    environment_id: Mapped[int] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"))
    identifier: Mapped[str] = mapped_column(Text)
    # Identifiers may be 2,000 characters; a btree cannot index that much text on every
    # database, so uniqueness and look-ups use its SHA-256.
    identifier_hash: Mapped[str] = mapped_column(String(64))
    # Per integration, what the identify path last recorded for this identity (a fingerprint
    # of the flags and when), so that unchanged flags are not recorded again: see
    # `services.delivered`. Kept on this row because every identify call reads it anyway.
    delivered_flags: Mapped[str | None] = mapped_column(Text, nullable=True)
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
