"""A project's tags, which label features."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from ensign.services.admin import tags
from ensign.web.admin import render
from ensign.web.admin.routing import Pages, admin_route, no_content, paginated
from ensign.web.admin.schemas import Body, Color, Label, Patch
from ensign.web.deps import Admin, State

router = APIRouter(tags=["Projects"])
route = admin_route


class TagCreate(Body):
    label: Label
    color: Color | None = None


class TagUpdate(Patch):
    label: Label | None = None
    color: Color | None = None


@route(router, "/projects/{project_id}/tags/", ["GET"], summary="List tags")
def list_tags(
    project_id: int, request: Request, paging: Pages, state: State, principal: Admin
) -> dict[str, Any]:
    with state.units.read() as unit:
        page = tags.list_tags(unit.session, principal, project_id, paging.window)
        return paginated(request, paging, page, render.tag)


@route(router, "/projects/{project_id}/tags/", ["POST"], status_code=201, summary="Create a tag")
def create_tag(project_id: int, body: TagCreate, state: State, principal: Admin) -> dict[str, Any]:
    with state.units.write() as unit:
        row = tags.create_tag(unit, principal, project_id, label=body.label, color=body.color)
        return render.tag(row)


@route(router, "/projects/{project_id}/tags/{tag_id}/", ["GET"], summary="Read a tag")
def get_tag(project_id: int, tag_id: int, state: State, principal: Admin) -> dict[str, Any]:
    with state.units.read() as unit:
        return render.tag(tags.get_tag(unit.session, principal, project_id, tag_id))


@route(router, "/projects/{project_id}/tags/{tag_id}/", ["PUT", "PATCH"], summary="Update a tag")
def update_tag(
    project_id: int, tag_id: int, body: TagUpdate, state: State, principal: Admin
) -> dict[str, Any]:
    with state.units.write() as unit:
        row = tags.update_tag(unit, principal, project_id, tag_id, body.changes())
        return render.tag(row)


@route(
    router,
    "/projects/{project_id}/tags/{tag_id}/",
    ["DELETE"],
    status_code=204,
    summary="Delete a tag",
)
def delete_tag(project_id: int, tag_id: int, state: State, principal: Admin) -> Response:
    with state.units.write() as unit:
        tags.delete_tag(unit, principal, project_id, tag_id)
    return no_content()
