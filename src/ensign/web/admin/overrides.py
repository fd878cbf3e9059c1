"""Overrides: segment overrides (created per environment, listed and reordered under
`features/feature-segments/`), identity overrides (under an identity), and any feature state
or override by id (`features/featurestates/…`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import Field

from ensign.services.admin import overrides, states
from ensign.services.admin.overrides import PriorityChange
from ensign.web.admin import render
from ensign.web.admin.routing import (
    Pages,
    admin_route,
    flag_value,
    no_content,
    paginated,
    unpaginated,
)
from ensign.web.admin.schemas import Body, Id, Priority
from ensign.web.admin.states import AllocationIn, StateUpdate, allocations, state_changes
from ensign.web.deps import Admin, State

# One router per section of the API's documentation the routes belong to (`web.admin`
# includes each next to what its overrides override).
environment_routes = APIRouter(tags=["Environments"])
identity_routes = APIRouter(tags=["Identities"])
state_routes = APIRouter(tags=["Feature states"])
route = admin_route
IDENTITY = "/environments/{api_key}/identities/{identity_id}/"


# --- request bodies -------------------------------------------------------------------------


class SegmentOverrideCreate(Body):
    segment: Id
    enabled: bool = False
    feature_state_value: Any = None
    priority: Priority | None = None
    multivariate_feature_state_values: list[AllocationIn] = Field(
        default_factory=list, max_length=1000
    )


class PriorityIn(Body):
    id: Id
    priority: Priority


class IdentityOverrideCreate(Body):
    feature: Id
    enabled: bool = False
    feature_state_value: Any = None


# --- segment overrides ----------------------------------------------------------------------


@route(
    environment_routes,
    "/environments/{api_key}/features/{feature_id}/create-segment-override/",
    ["POST"],
    status_code=201,
    summary="Override a feature for a segment",
)
def create_segment_override(
    api_key: str, feature_id: int, body: SegmentOverrideCreate, state: State, principal: Admin
) -> dict[str, Any]:
    value = flag_value(
        body.feature_state_value,
        field="feature_state_value",
        max_bytes=state.settings.max_flag_value_bytes,
    )
    with state.units.write() as unit:
        row = overrides.create_segment_override(
            unit,
            principal,
            api_key,
            feature_id,
            segment_id=body.segment,
            enabled=body.enabled,
            value=value,
            priority=body.priority,
            allocations=allocations(body.multivariate_feature_state_values),
        )
        return render.feature_state(row)


@route(state_routes, "/features/feature-segments/", ["GET"], summary="List segment overrides")
def list_feature_segments(
    request: Request,
    paging: Pages,
    state: State,
    principal: Admin,
    environment: str,
    feature: int | None = None,
) -> dict[str, Any]:
    with state.units.read() as unit:
        page = overrides.list_segment_overrides(
            unit.session, principal, paging.window, environment=environment, feature_id=feature
        )
        return paginated(request, paging, page, render.feature_state)


@route(
    state_routes,
    "/features/feature-segments/update-priorities/",
    ["POST"],
    summary="Reorder segment overrides",
)
def update_priorities(body: list[PriorityIn], state: State, principal: Admin) -> dict[str, Any]:
    changes = [PriorityChange(item.id, item.priority) for item in body]
    with state.units.write() as unit:
        rows = overrides.update_priorities(unit, principal, changes)
        return unpaginated(rows, render.feature_state)


# --- any feature state or override by id ----------------------------------------------------


@route(state_routes, "/features/featurestates/{state_id}/", ["GET"], summary="Read a feature state")
def get_feature_state(state_id: int, state: State, principal: Admin) -> dict[str, Any]:
    with state.units.read() as unit:
        return render.feature_state(states.get_feature_state(unit.session, principal, state_id))


@route(
    state_routes,
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
    state_routes,
    "/features/featurestates/{state_id}/",
    ["DELETE"],
    status_code=204,
    summary="Delete an override",
)
def delete_feature_state(state_id: int, state: State, principal: Admin) -> Response:
    with state.units.write() as unit:
        states.delete_feature_state(unit, principal, state_id)
    return no_content()


# --- identity overrides ---------------------------------------------------------------------


@route(identity_routes, IDENTITY + "featurestates/", ["GET"], summary="An identity's overrides")
def list_overrides(
    api_key: str,
    identity_id: int,
    request: Request,
    paging: Pages,
    state: State,
    principal: Admin,
) -> dict[str, Any]:
    with state.units.read() as unit:
        page = overrides.list_identity_overrides(
            unit.session, principal, api_key, identity_id, paging.window
        )
        return paginated(request, paging, page, render.feature_state)


@route(
    identity_routes,
    IDENTITY + "featurestates/",
    ["POST"],
    status_code=201,
    summary="Override a feature for an identity",
)
def create_override(
    api_key: str, identity_id: int, body: IdentityOverrideCreate, state: State, principal: Admin
) -> dict[str, Any]:
    value = flag_value(
        body.feature_state_value,
        field="feature_state_value",
        max_bytes=state.settings.max_flag_value_bytes,
    )
    with state.units.write() as unit:
        row = overrides.create_identity_override(
            unit,
            principal,
            api_key,
            identity_id,
            feature_id=body.feature,
            enabled=body.enabled,
            value=value,
        )
        return render.feature_state(row)


@route(identity_routes, IDENTITY + "featurestates/{state_id}/", ["GET"], summary="Read an override")
def get_override(
    api_key: str, identity_id: int, state_id: int, state: State, principal: Admin
) -> dict[str, Any]:
    with state.units.read() as unit:
        row = overrides.get_identity_override(
            unit.session, principal, api_key, identity_id, state_id
        )
        return render.feature_state(row)


@route(
    identity_routes,
    IDENTITY + "featurestates/{state_id}/",
    ["PUT", "PATCH"],
    summary="Update an override",
)
def update_override(
    api_key: str,
    identity_id: int,
    state_id: int,
    body: StateUpdate,
    state: State,
    principal: Admin,
) -> dict[str, Any]:
    changes = state_changes(state, body)
    with state.units.write() as unit:
        row = overrides.update_identity_override(
            unit, principal, api_key, identity_id, state_id, changes
        )
        return render.feature_state(row)


@route(
    identity_routes,
    IDENTITY + "featurestates/{state_id}/",
    ["DELETE"],
    status_code=204,
    summary="Delete an override",
)
def delete_override(
    api_key: str, identity_id: int, state_id: int, state: State, principal: Admin
) -> Response:
    with state.units.write() as unit:
        overrides.delete_identity_override(unit, principal, api_key, identity_id, state_id)
    return no_content()
