"""An environment's default feature states (`environments/{api_key}/featurestates/…`); any
state by id and the overrides are in `overrides`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import Field

from ensign.services.admin import states
from ensign.services.admin.states import Allocation, StateChanges
from ensign.web.admin import render
from ensign.web.admin.routing import Pages, admin_route, flag_value, paginated
from ensign.web.admin.schemas import Body, Id, Patch, Percentage
from ensign.web.deps import Admin, AppState, State

router = APIRouter(tags=["Environments"])
route = admin_route
ENV = "/environments/{api_key}"


# --- request bodies -------------------------------------------------------------------------


class AllocationIn(Body):
    multivariate_feature_option: Id
    percentage_allocation: Percentage


class StateUpdate(Patch):
    nullable = frozenset({"feature_state_value"})
    enabled: bool | None = None
    feature_state_value: Any = None
    multivariate_feature_state_values: list[AllocationIn] | None = Field(
        default=None, max_length=1000
    )


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


# --- an environment's default states ----------------------------------------------------------


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
    with state.units.read() as unit:
        page = states.list_environment_states(
            unit.session,
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
    with state.units.read() as unit:
        row = states.get_environment_state(unit.session, principal, api_key, state_id)
        return render.feature_state(row)


@route(
    router,
    ENV + "/featurestates/{state_id}/",
    ["PUT", "PATCH"],
    summary="Update a feature state",
)
def update_feature_state(
    api_key: str, state_id: int, body: StateUpdate, state: State, principal: Admin
) -> dict[str, Any]:
    changes = state_changes(state, body)
    with state.units.write() as unit:
        row = states.update_environment_state(unit, principal, api_key, state_id, changes)
        return render.feature_state(row)
