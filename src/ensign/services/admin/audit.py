"""The audit log: who changed what, with the record before and after the change."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from ensign.services.admin import access
from ensign.services.keys import AdminPrincipal
from ensign.storage import admin_queries as q
from ensign.storage.models import AuditLog

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
    session.add(
        AuditLog(
            organisation_id=principal.organisation_id,
            project_id=project_id,
            environment_id=environment_id,
            actor=principal.actor,
            action=action,
            resource_type=resource_type,
            resource_id=None if resource_id is None else str(resource_id),
            log=log,
            before=before,
            after=after,
        )
    )


def list_entries(
    session: Session,
    principal: AdminPrincipal,
    window: q.Window,
    *,
    project_id: int | None = None,
    environment_key: str | None = None,
    search: str | None = None,
) -> q.Page[AuditLog]:
    """The caller's organisation's audit entries, newest first, optionally filtered."""
    if project_id is not None:
        access.project_for(session, principal, project_id)
    environment_id = None
    if environment_key is not None:
        if environment_key.isdigit():
            environment_id = access.environment_by_id(session, principal, int(environment_key)).id
        else:
            environment_id = access.environment_for(session, principal, environment_key).id
    return q.audit_entries(
        session,
        principal.organisation_id,
        window,
        project_id=project_id,
        environment_id=environment_id,
        search=search,
    )
