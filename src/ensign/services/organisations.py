"""Organisations: created by the CLI and the demo seed; everything else hangs off one."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ensign.storage.models import Organisation, Project


def create_organisation(session: Session, name: str) -> Organisation:
    organisation = Organisation(name=name)
    session.add(organisation)
    session.flush()
    return organisation


def default_organisation(session: Session) -> Organisation:
    """The first organisation, created as "Default" on an empty database."""
    organisation = session.scalar(select(Organisation).order_by(Organisation.id).limit(1))
    return organisation or create_organisation(session, "Default")


def is_empty(session: Session) -> bool:
    return not session.scalar(select(func.count()).select_from(Project))
