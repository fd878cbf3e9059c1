"""The audit log: who changed what, with the record before and after the change."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from ensign.services.admin import access
from ensign.services.keys import AdminPrincipal
from ensign.storage import audit as audit_store
from ensign.storage.models import AuditLog
from ensign.storage.pagination import Page, Window
from ensign.storage.unit_of_work import UnitOfWork

CREATED = "CREATED"
UPDATED = "UPDATED"
DELETED = "DELETED"


def record(
    session: Session,
    principal: AdminPrincipal,
    *,
    action: str,
    resource_type: str,
    resource_id: int | str | None,
    log: str,
    before: Any = None,
    after: Any = None,
    project_id: int | None = None,
    environment_id: int | None = None,
) -> None:
    """Add an audit entry in the caller's transaction, so it exists exactly when the change does."""
    audit_store.add_entry(
        session,
        organisation_id=principal.organisation_id,
        actor=principal.actor,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        log=log,
        before=before,
        after=after,
        project_id=project_id,
        environment_id=environment_id,
    )


def list_entries(
    unit: UnitOfWork,
    principal: AdminPrincipal,
    window: Window,
    *,
    project_id: int | None = None,
    environment_key: str | None = None,
    search: str | None = None,
) -> Page[AuditLog]:
    """The caller's organisation's audit entries, newest first, optionally filtered."""
    session = unit.session
    if project_id is not None:
        access.project_for(session, principal, project_id)
    environment_id = None
    if environment_key is not None:
        if environment_key.isdigit():
            environment_id = access.environment_by_id(session, principal, int(environment_key)).id
        else:
            environment_id = access.environment_for(session, principal, environment_key).id
    return audit_store.entries(
        session,
        principal.organisation_id,
        window,
        project_id=project_id,
        environment_id=environment_id,
        search=search,
    )
