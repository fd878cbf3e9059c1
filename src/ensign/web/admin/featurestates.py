"""Feature states across environments, and segment overrides' ordering (`features/…`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from ensign.services.admin import overrides, states
from ensign.services.admin.overrides import PriorityChange
from ensign.web.admin import render
from ensign.web.admin.environments import state_changes
from ensign.web.admin.routing import (
    Pages,
    admin_route,
    no_content,
    paginated,
    unpaginated,
)
from ensign.web.admin.schemas import PriorityIn, StateUpdate
from ensign.web.deps import Admin, State

router = APIRouter(tags=["Feature states"])
route = admin_route


@route(router, "/features/feature-segments/", ["GET"], summary="List segment overrides")
def list_feature_segments(
    request: Request,
    paging: Pages,
    state: State,
    principal: Admin,
    environment: str,
    feature: int | None = None,
) -> dict[str, Any]:
    with state.read() as session:
        page = overrides.list_segment_overrides(
            session, principal, paging.window, environment=environment, feature_id=feature
        )
        return paginated(request, paging, page, render.feature_state)


@route(
    router,
    "/features/feature-segments/update-priorities/",
    ["POST"],
    summary="Reorder segment overrides",
)
def update_priorities(body: list[PriorityIn], state: State, principal: Admin) -> dict[str, Any]:
    changes = [PriorityChange(item.id, item.priority) for item in body]
    with state.write() as session:
        rows = overrides.update_priorities(session, principal, changes)
        return unpaginated(rows, render.feature_state)


@route(router, "/features/featurestates/{state_id}/", ["GET"], summary="Read a feature state")
def get_feature_state(state_id: int, state: State, principal: Admin) -> dict[str, Any]:
    with state.read() as session:
        return render.feature_state(states.get_feature_state(session, principal, state_id))


@route(
    router,
    "/features/featurestates/{state_id}/",
    ["PUT", "PATCH"],
    summary="Update any feature state or override",
)
def update_feature_state(
    state_id: int, body: StateUpdate, state: State, principal: Admin
) -> dict[str, Any]:
    changes = state_changes(state, body)
    with state.units.write() as unit:
        row = states.update_feature_state(unit, principal, state_id, changes)
        return render.feature_state(row)


@route(
    router,
    "/features/featurestates/{state_id}/",
    ["DELETE"],
    status_code=204,
    summary="Delete an override",
)
def delete_feature_state(state_id: int, state: State, principal: Admin) -> Response:
    with state.units.write() as unit:
        states.delete_feature_state(unit, principal, state_id)
    return no_content()
