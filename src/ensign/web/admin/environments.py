"""Environments (looked up by their client key), their server keys, default feature states,
document and evaluation counts."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from ensign.services.admin import environments, overrides, states
from ensign.services.admin.states import Allocation, StateChanges
from ensign.storage.models import utcnow
from ensign.web.admin import render
from ensign.web.admin.routing import Pages, admin_route, flag_value, no_content, paginated
from ensign.web.admin.schemas import (
    AllocationIn,
    EnvironmentCreate,
    EnvironmentUpdate,
    SegmentOverrideCreate,
    ServerKeyCreate,
    ServerKeyUpdate,
    StateUpdate,
)
from ensign.web.deps import Admin, AppState, State

router = APIRouter(tags=["Environments"])
route = admin_route
ENV = "/environments/{api_key}"


def allocations(items: list[AllocationIn]) -> list[Allocation]:
    return [Allocation(i.multivariate_feature_option, i.percentage_allocation) for i in items]


def state_changes(state: AppState, body: StateUpdate) -> StateChanges:
    fields = body.model_fields_set
    value = None
    if "feature_state_value" in fields:
        value = flag_value(
            body.feature_state_value,
            field="feature_state_value",
            max_bytes=state.settings.max_flag_value_bytes,
        )
    mv = body.multivariate_feature_state_values
    return StateChanges(
        enabled=body.enabled,
        value=value,
        set_value="feature_state_value" in fields,
        allocations=None if mv is None else allocations(mv),
    )


# --- environments ---------------------------------------------------------------------------


@route(router, "/environments/", ["GET"], summary="List environments")
def list_environments(
    request: Request, paging: Pages, state: State, principal: Admin, project: int | None = None
) -> dict[str, Any]:
    with state.read() as session:
        page = environments.list_environments(session, principal, paging.window, project_id=project)
        return paginated(request, paging, page, render.environment)


@route(router, "/projects/{project_id}/environments/", ["GET"], summary="A project's environments")
def list_project_environments(
    project_id: int, request: Request, paging: Pages, state: State, principal: Admin
) -> dict[str, Any]:
    with state.read() as session:
        page = environments.list_environments(
            session, principal, paging.window, project_id=project_id
        )
        return paginated(request, paging, page, render.environment)


@route(router, "/environments/", ["POST"], status_code=201, summary="Create an environment")
def create_environment(body: EnvironmentCreate, state: State, principal: Admin) -> dict[str, Any]:
    with state.write() as session:
        row = environments.create_environment(
            session,
            principal,
            project_id=body.project,
            name=body.name,
            description=body.description,
            allow_client_traits=body.allow_client_traits,
            hide_sensitive_data=body.hide_sensitive_data,
            hide_disabled_flags=body.hide_disabled_flags,
            use_identity_composite_key_for_hashing=body.use_identity_composite_key_for_hashing,
            use_identity_overrides_in_local_eval=body.use_identity_overrides_in_local_eval,
        )
        return render.environment(row)


@route(router, ENV + "/", ["GET"], summary="Read an environment")
def get_environment(api_key: str, state: State, principal: Admin) -> dict[str, Any]:
    with state.read() as session:
        return render.environment(environments.get_environment(session, principal, api_key))


@route(router, ENV + "/", ["PUT", "PATCH"], summary="Update an environment")
def update_environment(
    api_key: str, body: EnvironmentUpdate, state: State, principal: Admin
) -> dict[str, Any]:
    with state.write() as session:
        row = environments.update_environment(session, principal, api_key, body.changes())
        return render.environment(row)


@route(router, ENV + "/", ["DELETE"], status_code=204, summary="Delete an environment")
def delete_environment(api_key: str, state: State, principal: Admin) -> Response:
    with state.write() as session:
        environments.delete_environment(session, principal, api_key)
    return no_content()


@route(router, ENV + "/document/", ["GET"], summary="The environment document")
def environment_document(api_key: str, state: State, principal: Admin) -> dict[str, Any]:
    with state.read() as session:
        return environments.environment_document(session, principal, api_key)


@route(router, ENV + "/analytics/flags/", ["GET"], summary="Flag evaluations reported by SDKs")
def flag_analytics(
    api_key: str,
    state: State,
    principal: Admin,
    days: Annotated[int, Query(ge=1, le=3650)] = 30,
) -> dict[str, Any]:
    with state.read() as session:
        counts = environments.evaluation_counts(
            session, principal, api_key, days=days, today=utcnow().date()
        )
        return {"environment": api_key, **render.evaluation_counts(counts, days=days)}


# --- server keys ----------------------------------------------------------------------------


@route(router, ENV + "/api-keys/", ["GET"], summary="List server keys")
def list_server_keys(
    api_key: str, request: Request, paging: Pages, state: State, principal: Admin
) -> dict[str, Any]:
    with state.read() as session:
        page = environments.list_server_keys(session, principal, api_key, paging.window)
        return paginated(request, paging, page, render.server_key)


@route(router, ENV + "/api-keys/", ["POST"], status_code=201, summary="Create a server key")
def create_server_key(
    api_key: str, body: ServerKeyCreate, state: State, principal: Admin
) -> dict[str, Any]:
    with state.write() as session:
        row = environments.create_server_key(
            session, principal, api_key, name=body.name, expires_at=body.expires_at
        )
        return render.server_key(row)


@route(router, ENV + "/api-keys/{key_id}/", ["GET"], summary="Read a server key")
def get_server_key(api_key: str, key_id: int, state: State, principal: Admin) -> dict[str, Any]:
    with state.read() as session:
        return render.server_key(environments.get_server_key(session, principal, api_key, key_id))


@route(router, ENV + "/api-keys/{key_id}/", ["PUT", "PATCH"], summary="Update a server key")
def update_server_key(
    api_key: str, key_id: int, body: ServerKeyUpdate, state: State, principal: Admin
) -> dict[str, Any]:
    with state.write() as session:
        row = environments.update_server_key(session, principal, api_key, key_id, body.changes())
        return render.server_key(row)


@route(
    router, ENV + "/api-keys/{key_id}/", ["DELETE"], status_code=204, summary="Delete a server key"
)
def delete_server_key(api_key: str, key_id: int, state: State, principal: Admin) -> Response:
    with state.write() as session:
        environments.delete_server_key(session, principal, api_key, key_id)
    return no_content()


# --- default feature states and segment overrides -------------------------------------------


@route(
    router,
    ENV + "/featurestates/",
    ["GET"],
    summary="The environment's default states, or its identity overrides",
)
def list_feature_states(
    api_key: str,
    request: Request,
    paging: Pages,
    state: State,
    principal: Admin,
    feature: Annotated[int | None, Query(description="Only this feature (by id).")] = None,
    feature_name: Annotated[
        str | None, Query(description="Only the feature of exactly this name.")
    ] = None,
    any_identity: Annotated[
        str | None,
        Query(
            alias="anyIdentity",
            description="Present with any value (even `false`, as in the reference): list the "
            "identity overrides instead of the environment's default states.",
        ),
    ] = None,
) -> dict[str, Any]:
    with state.read() as session:
        page = states.list_environment_states(
            session,
            principal,
            api_key,
            paging.window,
            feature_id=feature,
            feature_name=feature_name,
            any_identity=any_identity is not None,
        )
        return paginated(request, paging, page, render.feature_state)


@route(router, ENV + "/featurestates/{state_id}/", ["GET"], summary="Read a feature state")
def get_feature_state(
    api_key: str, state_id: int, state: State, principal: Admin
) -> dict[str, Any]:
    with state.read() as session:
        row = states.get_environment_state(session, principal, api_key, state_id)
        return render.feature_state(row)


@route(
    router, ENV + "/featurestates/{state_id}/", ["PUT", "PATCH"], summary="Update a feature state"
)
def update_feature_state(
    api_key: str, state_id: int, body: StateUpdate, state: State, principal: Admin
) -> dict[str, Any]:
    changes = state_changes(state, body)
    with state.units.write() as unit:
        row = states.update_environment_state(unit, principal, api_key, state_id, changes)
        return render.feature_state(row)


@route(
    router,
    ENV + "/features/{feature_id}/create-segment-override/",
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
    with state.write() as session:
        row = overrides.create_segment_override(
            session,
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
