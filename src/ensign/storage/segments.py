"""Segments' rows as the admin edits them; their listings and the managed segments' lookups
live with the features (`storage.features`), whose overrides they select."""

from __future__ import annotations

from sqlalchemy.orm import Session

from ensign.storage.models import Segment


def segment_by_id(session: Session, segment_id: int) -> Segment | None:
    return session.get(Segment, segment_id)


def insert_segment(session: Session, segment: Segment) -> Segment:
    """Add a segment; its id (kept from an imported document, or new) is known on return."""
    session.add(segment)
    session.flush()
    return segment


def delete_segment(session: Session, segment: Segment) -> None:
    """Delete a segment; the database deletes its overrides, so loaded rows are expired."""
    session.delete(segment)
    session.flush()
    session.expire_all()
