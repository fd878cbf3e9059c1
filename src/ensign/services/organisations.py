"""Organisations: created by the CLI and the demo seed; everything else hangs off one."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ensign.services.admin.organisations import create_organisation
from ensign.storage.models import Organisation, Project


def default_organisation(session: Session) -> Organisation:
    """The first organisation, created as "Default" on an empty database."""
    organisation = session.scalar(select(Organisation).order_by(Organisation.id).limit(1))
    return organisation or create_organisation(session, name="Default")


def is_empty(session: Session) -> bool:
    return not session.scalar(select(func.count()).select_from(Project))
