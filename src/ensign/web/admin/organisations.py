"""Organisations and their master API keys."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from ensign.services.admin import organisations
from ensign.web.admin import render
from ensign.web.admin.routing import Pages, admin_route, no_content, paginated, unpaginated
from ensign.web.admin.schemas import Body, Moment, Name, Patch
from ensign.web.deps import Admin, State

router = APIRouter(tags=["Organisations"])


class OrganisationUpdate(Patch):
    name: Name | None = None
    persist_trait_data: bool | None = None
    stop_serving_flags: bool | None = None
    feature_analytics: bool | None = None


class MasterKeyCreate(Body):
    name: Name = "API key"
    expiry_date: Moment | None = None


class MasterKeyUpdate(Patch):
    nullable = frozenset({"expiry_date"})
    name: Name | None = None
    revoked: bool | None = None
    expiry_date: Moment | None = None


route = admin_route


@route(router, "/organisations/", ["GET"], summary="List organisations")
def list_organisations(state: State, principal: Admin) -> dict[str, Any]:
    with state.units.read() as unit:
        rows = organisations.list_organisations(unit, principal)
        return unpaginated(rows, render.organisation)


@route(router, "/organisations/{org_id}/", ["GET"], summary="Read an organisation")
def get_organisation(org_id: int, state: State, principal: Admin) -> dict[str, Any]:
    with state.units.read() as unit:
        return render.organisation(organisations.get_organisation(unit, principal, org_id))


@route(router, "/organisations/{org_id}/", ["PUT", "PATCH"], summary="Update an organisation")
def update_organisation(
    org_id: int, body: OrganisationUpdate, state: State, principal: Admin
) -> dict[str, Any]:
    with state.units.write() as unit:
        row = organisations.update_organisation(unit, principal, org_id, body.changes())
        return render.organisation(row)


@route(router, "/organisations/{org_id}/master-api-keys/", ["GET"], summary="List admin keys")
def list_master_keys(
    org_id: int, request: Request, paging: Pages, state: State, principal: Admin
) -> dict[str, Any]:
    with state.units.read() as unit:
        page = organisations.list_master_keys(unit, principal, org_id, paging.window)
        return paginated(request, paging, page, render.master_key)


@route(
    router,
    "/organisations/{org_id}/master-api-keys/",
    ["POST"],
    status_code=201,
    summary="Create an admin key (the key is shown once)",
)
def create_master_key(
    org_id: int, body: MasterKeyCreate, state: State, principal: Admin
) -> dict[str, Any]:
    with state.units.write() as unit:
        created = organisations.create_master_key(
            unit, principal, org_id, name=body.name, expires_at=body.expiry_date
        )
        return {**render.master_key(created.row), "key": created.key}


@route(router, "/organisations/{org_id}/master-api-keys/{key_id}/", ["GET"], summary="Read a key")
def get_master_key(org_id: int, key_id: int, state: State, principal: Admin) -> dict[str, Any]:
    with state.units.read() as unit:
        return render.master_key(organisations.master_key_for(unit, principal, org_id, key_id))


@route(
    router,
    "/organisations/{org_id}/master-api-keys/{key_id}/",
    ["PUT", "PATCH"],
    summary="Rename, revoke or re-date an admin key",
)
def update_master_key(
    org_id: int, key_id: int, body: MasterKeyUpdate, state: State, principal: Admin
) -> dict[str, Any]:
    changes = body.changes()
    if "revoked" in changes:
        changes["active"] = not changes.pop("revoked")
    if "expiry_date" in changes:
        changes["expires_at"] = changes.pop("expiry_date")
    with state.units.write() as unit:
        row = organisations.update_master_key(unit, principal, org_id, key_id, changes)
        return render.master_key(row)


@route(
    router,
    "/organisations/{org_id}/master-api-keys/{key_id}/",
    ["DELETE"],
    status_code=204,
    summary="Revoke an admin key",
)
def revoke_master_key(org_id: int, key_id: int, state: State, principal: Admin) -> Response:
    with state.units.write() as unit:
        organisations.revoke_master_key(unit, principal, org_id, key_id)
    return no_content()
