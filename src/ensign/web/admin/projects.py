"""Projects, and what lives in them: features, options, tags and their audit log (segments
are in `segments`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from ensign.services.admin import audit, projects
from ensign.web.admin import render
from ensign.web.admin.routing import Pages, admin_route, no_content, paginated
from ensign.web.admin.schemas import (
    ProjectCreate,
    ProjectUpdate,
)
from ensign.web.deps import Admin, State

router = APIRouter(tags=["Projects"])
route = admin_route


# --- projects -------------------------------------------------------------------------------


@route(router, "/projects/", ["GET"], summary="List projects")
def list_projects(
    request: Request,
    paging: Pages,
    state: State,
    principal: Admin,
    organisation: int | None = None,
) -> dict[str, Any]:
    with state.read() as session:
        page = projects.list_projects(
            session, principal, paging.window, organisation_id=organisation
        )
        return paginated(request, paging, page, render.project)


@route(router, "/projects/", ["POST"], status_code=201, summary="Create a project")
def create_project(body: ProjectCreate, state: State, principal: Admin) -> dict[str, Any]:
    with state.write() as session:
        row = projects.create_project(
            session,
            principal,
            name=body.name,
            organisation_id=body.organisation,
            hide_disabled_flags=body.hide_disabled_flags,
            enable_realtime_updates=body.enable_realtime_updates,
        )
        return render.project(row)


@route(router, "/projects/{project_id}/", ["GET"], summary="Read a project")
def get_project(project_id: int, state: State, principal: Admin) -> dict[str, Any]:
    with state.read() as session:
        return render.project(projects.get_project(session, principal, project_id))


@route(router, "/projects/{project_id}/", ["PUT", "PATCH"], summary="Update a project")
def update_project(
    project_id: int, body: ProjectUpdate, state: State, principal: Admin
) -> dict[str, Any]:
    with state.write() as session:
        row = projects.update_project(session, principal, project_id, body.changes())
        return render.project(row)


@route(router, "/projects/{project_id}/", ["DELETE"], status_code=204, summary="Delete a project")
def delete_project(project_id: int, state: State, principal: Admin) -> Response:
    with state.write() as session:
        projects.delete_project(session, principal, project_id)
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
    with state.read() as session:
        page = audit.list_entries(
            session, principal, paging.window, project_id=project_id, search=search
        )
        return paginated(request, paging, page, render.audit_entry)
