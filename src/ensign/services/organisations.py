"""Organisations: created by the CLI and the demo seed; everything else hangs off one."""

from __future__ import annotations

from sqlalchemy.orm import Session

from ensign.services.admin.organisations import add_organisation
from ensign.storage import environments as environment_store
from ensign.storage.models import Organisation


def default_organisation(session: Session) -> Organisation:
    """The first organisation, created as "Default" on an empty database."""
    organisation = environment_store.first_organisation(session)
    return organisation or add_organisation(session, name="Default")


def is_empty(session: Session) -> bool:
    return not environment_store.has_projects(session)


def organisation_exists(session: Session, organisation_id: int) -> bool:
    return environment_store.organisation_by_id(session, organisation_id) is not None
