"""Projects: the home of features, segments and tags, shared by their environments."""

from __future__ import annotations

from typing import Any

from ensign.errors import InvalidInput
from ensign.services import changes as change_path
from ensign.services.admin import access
from ensign.services.changes import Change, Reach
from ensign.services.keys import AdminPrincipal
from ensign.storage import environments as environment_store
from ensign.storage.audit import row_snapshot
from ensign.storage.models import Project
from ensign.storage.pagination import Page, Window
from ensign.storage.unit_of_work import UnitOfWork

PROJECT_FIELDS = ("name", "hide_disabled_flags", "enable_realtime_updates")


def list_projects(
    unit: UnitOfWork,
    principal: AdminPrincipal,
    window: Window,
    *,
    organisation_id: int | None = None,
) -> Page[Project]:
    if organisation_id is not None and organisation_id != principal.organisation_id:
        return Page([], 0)
    return environment_store.projects(unit.session, principal.organisation_id, window)


def get_project(unit: UnitOfWork, principal: AdminPrincipal, project_id: int) -> Project:
    return access.project_for(unit.session, principal, project_id)


def create_project(
    unit: UnitOfWork,
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
    project = environment_store.add_project(
        unit.session,
        Project(
            organisation_id=principal.organisation_id,
            name=name,
            hide_disabled_flags=hide_disabled_flags,
            enable_realtime_updates=enable_realtime_updates,
        ),
    )
    change_path.apply(
        unit,
        principal,
        [
            Change(
                resource_type="project",
                resource_id=project.id,
                action=change_path.CREATED,
                log=f"Project created: {name}",
                project_id=project.id,
                after=row_snapshot(project),
                reach=Reach.AUDIT,
            )
        ],
    )
    return project


def update_project(
    unit: UnitOfWork, principal: AdminPrincipal, project_id: int, changes: dict[str, Any]
) -> Project:
    """Rename or reconfigure a project; hiding disabled flags changes what its SDKs get."""
    project = access.project_for(unit.session, principal, project_id)
    before = row_snapshot(project)
    for name in PROJECT_FIELDS:
        if name in changes:
            setattr(project, name, changes[name])
    environment_store.save(unit.session)
    change_path.apply(
        unit,
        principal,
        [
            Change(
                resource_type="project",
                resource_id=project.id,
                action=change_path.UPDATED,
                log=f"Project updated: {project.name}",
                project_id=project.id,
                project_wide=True,
                before=before,
                after=row_snapshot(project),
                reach=Reach.SERVED,
            )
        ],
    )
    return project


def delete_project(unit: UnitOfWork, principal: AdminPrincipal, project_id: int) -> None:
    """Delete a project with everything in it (the database cascades)."""
    project = access.project_for(unit.session, principal, project_id)
    before = row_snapshot(project)
    environment_store.delete_project(unit.session, project)
    change_path.apply(
        unit,
        principal,
        [
            Change(
                resource_type="project",
                resource_id=project_id,
                action=change_path.DELETED,
                log=f"Project deleted: {project.name}",
                project_id=project_id,
                before=before,
                reach=Reach.AUDIT,
            )
        ],
    )


def start_project(
    unit: UnitOfWork, principal: AdminPrincipal, *, name: str, environment_name: str
) -> Project:
    """A new project with its first environment, as the dashboard makes them."""
    from ensign.services.admin import environments  # environments build on projects

    project = create_project(unit, principal, name=name)
    environments.create_environment(unit, principal, project_id=project.id, name=environment_name)
    return project
