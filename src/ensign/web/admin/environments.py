"""Environments (looked up by their client key), their server keys, document and evaluation
counts. Their default feature states are in `states`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from ensign.services.admin import environments
from ensign.storage.models import utcnow
from ensign.web.admin import render
from ensign.web.admin.routing import Pages, admin_route, no_content, paginated
from ensign.web.admin.schemas import (
    Body,
    Id,
    Moment,
    Name,
    Patch,
    Text,
)
from ensign.web.deps import Admin, State

router = APIRouter(tags=["Environments"])
route = admin_route
ENV = "/environments/{api_key}"


# --- environments ---------------------------------------------------------------------------


class EnvironmentCreate(Body):
    name: Name
    project: Id
    description: Text | None = None
    allow_client_traits: bool = True
    hide_sensitive_data: bool = False
    hide_disabled_flags: bool | None = None
    use_identity_composite_key_for_hashing: bool = True
    use_identity_overrides_in_local_eval: bool = True


class EnvironmentUpdate(Patch):
    nullable = frozenset({"description", "hide_disabled_flags"})
    name: Name | None = None
    description: Text | None = None
    allow_client_traits: bool | None = None
    hide_sensitive_data: bool | None = None
    hide_disabled_flags: bool | None = None
    use_identity_composite_key_for_hashing: bool | None = None
    use_identity_overrides_in_local_eval: bool | None = None


class ServerKeyCreate(Body):
    name: Name = "Server key"
    expires_at: Moment | None = None


class ServerKeyUpdate(Patch):
    nullable = frozenset({"expires_at"})
    name: Name | None = None
    active: bool | None = None
    expires_at: Moment | None = None


@route(router, "/environments/", ["GET"], summary="List environments")
def list_environments(
    request: Request, paging: Pages, state: State, principal: Admin, project: int | None = None
) -> dict[str, Any]:
    with state.units.read() as unit:
        page = environments.list_environments(unit, principal, paging.window, project_id=project)
        return paginated(request, paging, page, render.environment)


@route(router, "/projects/{project_id}/environments/", ["GET"], summary="A project's environments")
def list_project_environments(
    project_id: int, request: Request, paging: Pages, state: State, principal: Admin
) -> dict[str, Any]:
    with state.units.read() as unit:
        page = environments.list_environments(unit, principal, paging.window, project_id=project_id)
        return paginated(request, paging, page, render.environment)


@route(router, "/environments/", ["POST"], status_code=201, summary="Create an environment")
def create_environment(body: EnvironmentCreate, state: State, principal: Admin) -> dict[str, Any]:
    with state.units.write() as unit:
        row = environments.create_environment(
            unit,
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
    with state.units.read() as unit:
        return render.environment(environments.get_environment(unit, principal, api_key))


@route(router, ENV + "/", ["PUT", "PATCH"], summary="Update an environment")
def update_environment(
    api_key: str, body: EnvironmentUpdate, state: State, principal: Admin
) -> dict[str, Any]:
    with state.units.write() as unit:
        row = environments.update_environment(unit, principal, api_key, body.changes())
        return render.environment(row)


@route(router, ENV + "/", ["DELETE"], status_code=204, summary="Delete an environment")
def delete_environment(api_key: str, state: State, principal: Admin) -> Response:
    with state.units.write() as unit:
        environments.delete_environment(unit, principal, api_key)
    return no_content()


@route(router, ENV + "/document/", ["GET"], summary="The environment document")
def environment_document(api_key: str, state: State, principal: Admin) -> dict[str, Any]:
    with state.units.read() as unit:
        return environments.environment_document(unit, principal, api_key)


@route(router, ENV + "/analytics/flags/", ["GET"], summary="Flag evaluations reported by SDKs")
def flag_analytics(
    api_key: str,
    state: State,
    principal: Admin,
    days: Annotated[int, Query(ge=1, le=3650)] = 30,
) -> dict[str, Any]:
    with state.units.read() as unit:
        counts = environments.evaluation_counts(
            unit, principal, api_key, days=days, today=utcnow().date()
        )
        return {"environment": api_key, **render.evaluation_counts(counts, days=days)}


# --- server keys ----------------------------------------------------------------------------


@route(router, ENV + "/api-keys/", ["GET"], summary="List server keys")
def list_server_keys(
    api_key: str, request: Request, paging: Pages, state: State, principal: Admin
) -> dict[str, Any]:
    with state.units.read() as unit:
        page = environments.list_server_keys(unit, principal, api_key, paging.window)
        return paginated(request, paging, page, render.server_key)


@route(router, ENV + "/api-keys/", ["POST"], status_code=201, summary="Create a server key")
def create_server_key(
    api_key: str, body: ServerKeyCreate, state: State, principal: Admin
) -> dict[str, Any]:
    with state.units.write() as unit:
        row = environments.create_server_key(
            unit, principal, api_key, name=body.name, expires_at=body.expires_at
        )
        return render.server_key(row)


@route(router, ENV + "/api-keys/{key_id}/", ["GET"], summary="Read a server key")
def get_server_key(api_key: str, key_id: int, state: State, principal: Admin) -> dict[str, Any]:
    with state.units.read() as unit:
        return render.server_key(environments.get_server_key(unit, principal, api_key, key_id))


@route(router, ENV + "/api-keys/{key_id}/", ["PUT", "PATCH"], summary="Update a server key")
def update_server_key(
    api_key: str, key_id: int, body: ServerKeyUpdate, state: State, principal: Admin
) -> dict[str, Any]:
    with state.units.write() as unit:
        row = environments.update_server_key(unit, principal, api_key, key_id, body.changes())
        return render.server_key(row)


@route(
    router, ENV + "/api-keys/{key_id}/", ["DELETE"], status_code=204, summary="Delete a server key"
)
def delete_server_key(api_key: str, key_id: int, state: State, principal: Admin) -> Response:
    with state.units.write() as unit:
        environments.delete_server_key(unit, principal, api_key, key_id)
    return no_content()
