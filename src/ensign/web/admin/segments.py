"""A project's segments: their rules and conditions, as the reference's admin API takes them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from ensign.services.admin import segments
from ensign.services.admin.segments import ConditionInput, RuleInput
from ensign.web.admin import render
from ensign.web.admin.routing import Pages, admin_route, no_content, paginated
from ensign.web.admin.schemas import RuleIn, SegmentCreate, SegmentUpdate
from ensign.web.deps import Admin, State

router = APIRouter(tags=["Projects"])
route = admin_route


def _rules(rules: list[RuleIn]) -> list[RuleInput]:
    return [
        RuleInput(
            type=rule.type,
            rules=_rules(rule.rules),
            conditions=[
                ConditionInput(operator=c.operator, property=c.property, value=c.value)
                for c in rule.conditions
            ],
        )
        for rule in rules
    ]


@route(router, "/projects/{project_id}/segments/", ["GET"], summary="List segments")
def list_segments(
    project_id: int, request: Request, paging: Pages, state: State, principal: Admin
) -> dict[str, Any]:
    with state.read() as session:
        page = segments.list_segments(session, principal, project_id, paging.window)
        return paginated(request, paging, page, render.segment)


@route(
    router,
    "/projects/{project_id}/segments/",
    ["POST"],
    status_code=201,
    summary="Create a segment",
)
def create_segment(
    project_id: int, body: SegmentCreate, state: State, principal: Admin
) -> dict[str, Any]:
    with state.write() as session:
        row = segments.create_segment(
            session,
            principal,
            project_id,
            name=body.name,
            description=body.description,
            feature_id=body.feature,
            rules=_rules(body.rules),
        )
        return render.segment(row)


@route(router, "/projects/{project_id}/segments/{segment_id}/", ["GET"], summary="Read a segment")
def get_segment(project_id: int, segment_id: int, state: State, principal: Admin) -> dict[str, Any]:
    with state.read() as session:
        return render.segment(segments.get_segment(session, principal, project_id, segment_id))


@route(
    router,
    "/projects/{project_id}/segments/{segment_id}/",
    ["PUT", "PATCH"],
    summary="Update a segment",
)
def update_segment(
    project_id: int, segment_id: int, body: SegmentUpdate, state: State, principal: Admin
) -> dict[str, Any]:
    changes = body.changes()
    if body.rules is not None:
        changes["rules"] = _rules(body.rules)
    with state.write() as session:
        row = segments.update_segment(session, principal, project_id, segment_id, changes)
        return render.segment(row)


@route(
    router,
    "/projects/{project_id}/segments/{segment_id}/",
    ["DELETE"],
    status_code=204,
    summary="Delete a segment",
)
def delete_segment(project_id: int, segment_id: int, state: State, principal: Admin) -> Response:
    with state.write() as session:
        segments.delete_segment(session, principal, project_id, segment_id)
    return no_content()
