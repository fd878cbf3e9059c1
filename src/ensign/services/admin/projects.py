"""Projects: the home of features, segments and tags, shared by their environments."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from ensign.errors import InvalidInput
from ensign.services.admin import access, audit
from ensign.services.keys import AdminPrincipal
from ensign.storage import environments as environment_store
from ensign.storage.audit import row_snapshot
from ensign.storage.models import Project
from ensign.storage.pagination import Page, Window

PROJECT_FIELDS = ("name", "hide_disabled_flags", "enable_realtime_updates")


def list_projects(
    session: Session,
    principal: AdminPrincipal,
    window: Window,
    *,
    organisation_id: int | None = None,
) -> Page[Project]:
    if organisation_id is not None and organisation_id != principal.organisation_id:
        return Page([], 0)
    return environment_store.projects(session, principal.organisation_id, window)


def get_project(session: Session, principal: AdminPrincipal, project_id: int) -> Project:
    return access.project_for(session, principal, project_id)


def create_project(
    session: Session,
    principal: AdminPrincipal,
    *,
    name: str,
    organisation_id: int | None = None,
    hide_disabled_flags: bool = False,
    enable_realtime_updates: bool = False,
) -> Project:
    """Create a project in the caller's organisation."""
    if organisation_id is not None and organisation_id != principal.organisation_id:
        raise InvalidInput("organisation: no such organisation.", field="organisation")
    project = Project(
        organisation_id=principal.organisation_id,
        name=name,
        hide_disabled_flags=hide_disabled_flags,
        enable_realtime_updates=enable_realtime_updates,
    )
    session.add(project)
    session.flush()
    audit.record(
        session,
        principal,
        action=audit.CREATED,
        resource_type="project",
        resource_id=project.id,
        log=f"Project created: {name}",
        after=row_snapshot(project),
        project_id=project.id,
    )
    return project


def update_project(
    session: Session, principal: AdminPrincipal, project_id: int, changes: dict[str, Any]
) -> Project:
    project = access.project_for(session, principal, project_id)
    before = row_snapshot(project)
    for name in PROJECT_FIELDS:
        if name in changes:
            setattr(project, name, changes[name])
    session.flush()
    environment_store.touch_environments(session, project_id=project.id)
    audit.record(
        session,
        principal,
        action=audit.UPDATED,
        resource_type="project",
        resource_id=project.id,
        log=f"Project updated: {project.name}",
        before=before,
        after=row_snapshot(project),
        project_id=project.id,
    )
    return project


def delete_project(session: Session, principal: AdminPrincipal, project_id: int) -> None:
    """Delete a project with everything in it (the database cascades)."""
    project = access.project_for(session, principal, project_id)
    before = row_snapshot(project)
    session.delete(project)
    session.flush()
    audit.record(
        session,
        principal,
        action=audit.DELETED,
        resource_type="project",
        resource_id=project_id,
        log=f"Project deleted: {project.name}",
        before=before,
        project_id=project_id,
    )
