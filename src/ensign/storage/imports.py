"""The rows an imported environment document becomes, written as the document is read: each
row's id is needed by the next (states name features, values name options), so most are
flushed at once."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.orm import Session

from ensign.storage.base import Base
from ensign.storage.models import Environment, Project, Segment


def insert(session: Session, row: Base) -> None:
    """Add one row and learn its id."""
    session.add(row)
    session.flush()


def add_rows(session: Session, rows: Iterable[Base]) -> None:
    """Add rows whose ids nothing needs yet; the next flush writes them."""
    session.add_all(rows)


def segment_id_taken(session: Session, segment_id: int) -> bool:
    return session.get(Segment, segment_id) is not None


def environment_by_id(session: Session, environment_id: int) -> Environment | None:
    return session.get(Environment, environment_id)


def delete_project(session: Session, project_id: int) -> None:
    """Remove a failed import: the project and, through the database, all it holds."""
    project = session.get(Project, project_id)
    if project is not None:
        session.delete(project)
