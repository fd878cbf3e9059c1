"""Cohort sync in the admin API: an environment's cohort-sync keys, how members map to
identities, the synced cohorts and the sync log."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from pydantic import Field, StringConstraints

from ensign.services import cohorts
from ensign.storage.models import CohortSyncKey, CohortSyncLogEntry
from ensign.web.admin.render import moment
from ensign.web.admin.routing import Pages, admin_route, no_content, paginated, unpaginated
from ensign.web.admin.schemas import Body, Name, NoNul
from ensign.web.deps import Admin, State

router = APIRouter(tags=["Cohort sync"])
ENV = "/environments/{api_key}"

MemberKey = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), NoNul
]


class KeyCreate(Body):
    name: Name


class SyncSettings(Body):
    member_key: MemberKey = Field(
        description="The member property holding the identity identifier: "
        "`mixpanel_distinct_id` (default), `email`, or another exported property."
    )


def render_key(row: CohortSyncKey) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "prefix": row.prefix,
        "active": row.active,
        "created_at": moment(row.created_at),
        "last_used_at": moment(row.last_used_at),
        "revoked_at": moment(row.revoked_at),
    }


def render_log_entry(row: CohortSyncLogEntry) -> dict[str, Any]:
    return {
        "id": row.id,
        "created_at": moment(row.created_at),
        "source": row.source,
        "cohort": row.cohort_external_id,
        "cohort_name": row.cohort_name,
        "action": row.action,
        "session": row.session_id,
        "page": row.page,
        "total_pages": row.total_pages,
        "received": row.received,
        "added": row.added,
        "removed": row.removed,
        "skipped": row.skipped,
        "outcome": row.outcome,
        "status_code": row.status_code,
        "message": row.message,
        "duration_ms": row.duration_ms,
    }


def render_cohort(info: cohorts.CohortInfo) -> dict[str, Any]:
    cohort = info.cohort
    return {
        "id": cohort.id,
        "source": cohort.source,
        "external_id": cohort.external_id,
        "name": cohort.name,
        "description": cohort.description,
        "trait_key": cohort.trait_key,
        "segment": info.segment_id,
        "members": info.members,
        "created_at": moment(cohort.created_at),
        "updated_at": moment(cohort.updated_at),
    }


@admin_route(
    router,
    ENV + "/cohort-sync-keys/",
    ["POST"],
    status_code=201,
    summary="Create a cohort-sync key",
)
def create_key(api_key: str, body: KeyCreate, state: State, principal: Admin) -> dict[str, Any]:
    """The answer carries the key itself, this once: only its hash is kept."""
    with state.units.write() as unit:
        row, secret = cohorts.create_key(unit, principal, api_key, body.name)
        return {**render_key(row), "key": secret}


@admin_route(router, ENV + "/cohort-sync-keys/", ["GET"], summary="List cohort-sync keys")
def list_keys(api_key: str, state: State, principal: Admin) -> dict[str, Any]:
    with state.units.read() as unit:
        return unpaginated(cohorts.list_keys(unit, principal, api_key), render_key)


@admin_route(
    router,
    ENV + "/cohort-sync-keys/{key_id}/",
    ["DELETE"],
    status_code=204,
    summary="Revoke a cohort-sync key",
)
def revoke_key(api_key: str, key_id: int, state: State, principal: Admin) -> Response:
    with state.units.write() as unit:
        cohorts.revoke_key(unit, principal, api_key, key_id)
    return no_content()


@admin_route(
    router, ENV + "/cohort-sync-settings/", ["GET"], summary="How cohort members map to identities"
)
def read_settings(api_key: str, state: State, principal: Admin) -> dict[str, Any]:
    with state.units.read() as unit:
        return {"member_key": cohorts.member_key(unit, principal, api_key)}


@admin_route(
    router,
    ENV + "/cohort-sync-settings/",
    ["PUT", "PATCH"],
    summary="Choose how cohort members map to identities",
)
def update_settings(
    api_key: str, body: SyncSettings, state: State, principal: Admin
) -> dict[str, Any]:
    with state.units.write() as unit:
        key = cohorts.set_member_key(unit, principal, api_key, body.member_key)
        return {"member_key": key}


@admin_route(router, ENV + "/cohorts/", ["GET"], summary="Synced cohorts and their segments")
def list_cohorts(api_key: str, state: State, principal: Admin) -> dict[str, Any]:
    with state.units.read() as unit:
        return unpaginated(cohorts.list_cohorts(unit, principal, api_key), render_cohort)


@admin_route(router, ENV + "/cohort-sync-log/", ["GET"], summary="The cohort-sync log")
def sync_log(
    request: Request, api_key: str, paging: Pages, state: State, principal: Admin
) -> dict[str, Any]:
    with state.units.read() as unit:
        page = cohorts.sync_log(unit, principal, api_key, paging.window)
        return paginated(request, paging, page, render_log_entry)
