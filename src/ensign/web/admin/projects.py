"""Projects, and what lives in them: features, options, tags and their audit log (segments
are in `segments`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from ensign.services.admin import audit, projects
from ensign.web.admin import render
from ensign.web.admin.routing import Pages, admin_route, no_content, paginated
from ensign.web.admin.schemas import (
    Body,
    Id,
    Name,
    Patch,
)
from ensign.web.deps import Admin, State

router = APIRouter(tags=["Projects"])
route = admin_route


# --- projects -------------------------------------------------------------------------------


class ProjectCreate(Body):
    name: Name
    organisation: Id | None = None
    hide_disabled_flags: bool = False
    enable_realtime_updates: bool = False


class ProjectUpdate(Patch):
    name: Name | None = None
    hide_disabled_flags: bool | None = None
    enable_realtime_updates: bool | None = None


@route(router, "/projects/", ["GET"], summary="List projects")
def list_projects(
    request: Request,
    paging: Pages,
    state: State,
    principal: Admin,
    organisation: int | None = None,
) -> dict[str, Any]:
    with state.units.read() as unit:
        page = projects.list_projects(unit, principal, paging.window, organisation_id=organisation)
        return paginated(request, paging, page, render.project)


@route(router, "/projects/", ["POST"], status_code=201, summary="Create a project")
def create_project(body: ProjectCreate, state: State, principal: Admin) -> dict[str, Any]:
    with state.units.write() as unit:
        row = projects.create_project(
            unit,
            principal,
            name=body.name,
            organisation_id=body.organisation,
            hide_disabled_flags=body.hide_disabled_flags,
            enable_realtime_updates=body.enable_realtime_updates,
        )
        return render.project(row)


@route(router, "/projects/{project_id}/", ["GET"], summary="Read a project")
def get_project(project_id: int, state: State, principal: Admin) -> dict[str, Any]:
    with state.units.read() as unit:
        return render.project(projects.get_project(unit, principal, project_id))


@route(router, "/projects/{project_id}/", ["PUT", "PATCH"], summary="Update a project")
def update_project(
    project_id: int, body: ProjectUpdate, state: State, principal: Admin
) -> dict[str, Any]:
    with state.units.write() as unit:
        row = projects.update_project(unit, principal, project_id, body.changes())
        return render.project(row)


@route(router, "/projects/{project_id}/", ["DELETE"], status_code=204, summary="Delete a project")
def delete_project(project_id: int, state: State, principal: Admin) -> Response:
    with state.units.write() as unit:
        projects.delete_project(unit, principal, project_id)
    return no_content()


@route(router, "/projects/{project_id}/audit/", ["GET"], summary="A project's audit log")
def project_audit(
    project_id: int,
    request: Request,
    paging: Pages,
    state: State,
    principal: Admin,
    search: str | None = None,
) -> dict[str, Any]:
    with state.units.read() as unit:
        page = audit.list_entries(
            unit, principal, paging.window, project_id=project_id, search=search
        )
        return paginated(request, paging, page, render.audit_entry)
