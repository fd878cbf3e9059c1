"""Organisations and their admin (master) API keys."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from ensign.errors import NotFound
from ensign.services.admin import access, audit
from ensign.services.keys import AdminPrincipal, create_admin_key, hash_key
from ensign.storage import environments as environment_store
from ensign.storage import users as user_store
from ensign.storage.audit import row_snapshot
from ensign.storage.models import AdminApiKey, Organisation
from ensign.storage.pagination import Page, Window

ORGANISATION_FIELDS = ("name", "persist_trait_data", "stop_serving_flags", "feature_analytics")


def create_organisation(
    session: Session,
    *,
    name: str,
    persist_trait_data: bool = True,
    stop_serving_flags: bool = False,
    feature_analytics: bool = True,
) -> Organisation:
    """Create an organisation. There is no caller yet, so this is for set-up and the CLI."""
    organisation = Organisation(
        name=name,
        persist_trait_data=persist_trait_data,
        stop_serving_flags=stop_serving_flags,
        feature_analytics=feature_analytics,
    )
    session.add(organisation)
    session.flush()
    return organisation


def get_organisation(session: Session, principal: AdminPrincipal, org_id: int) -> Organisation:
    return access.organisation_for(session, principal, org_id)


def list_organisations(session: Session, principal: AdminPrincipal) -> list[Organisation]:
    """An admin key belongs to one organisation, so that is all it sees."""
    return [access.organisation_for(session, principal, principal.organisation_id)]


def update_organisation(
    session: Session, principal: AdminPrincipal, org_id: int, changes: dict[str, Any]
) -> Organisation:
    """Change the organisation's settings; flags of every environment may change with them."""
    organisation = access.organisation_for(session, principal, org_id)
    before = row_snapshot(organisation)
    for name in ORGANISATION_FIELDS:
        if name in changes:
            setattr(organisation, name, changes[name])
    session.flush()
    for project_id in environment_store.project_ids(session, organisation.id):
        environment_store.touch_environments(session, project_id=project_id)
    audit.record(
        session,
        principal,
        action=audit.UPDATED,
        resource_type="organisation",
        resource_id=organisation.id,
        log=f"Organisation updated: {organisation.name}",
        before=before,
        after=row_snapshot(organisation),
    )
    return organisation


# --- master API keys ------------------------------------------------------------------------


@dataclass(frozen=True)
class NewMasterKey:
    row: AdminApiKey
    key: str


def _key_snapshot(row: AdminApiKey) -> dict[str, Any]:
    snapshot = row_snapshot(row)
    snapshot.pop("key_hash", None)
    return snapshot


def list_master_keys(
    session: Session, principal: AdminPrincipal, org_id: int, window: Window
) -> Page[AdminApiKey]:
    access.organisation_for(session, principal, org_id)
    return user_store.master_keys(session, org_id, window)


def master_key_for(
    session: Session, principal: AdminPrincipal, org_id: int, key_id: int
) -> AdminApiKey:
    access.organisation_for(session, principal, org_id)
    row = session.get(AdminApiKey, key_id) if access.is_valid_id(key_id) else None
    if row is None or row.organisation_id != org_id:
        raise NotFound("API key not found.")
    return row


def create_master_key(
    session: Session,
    principal: AdminPrincipal,
    org_id: int,
    *,
    name: str,
    expires_at: dt.datetime | None = None,
) -> NewMasterKey:
    """Create an admin key; its secret is in the answer and nowhere else."""
    access.organisation_for(session, principal, org_id)
    key = create_admin_key(session, org_id, name)
    row = user_store.master_key_by_hash(session, hash_key(key))
    assert row is not None
    row.expires_at = expires_at
    session.flush()
    audit.record(
        session,
        principal,
        action=audit.CREATED,
        resource_type="master_api_key",
        resource_id=row.id,
        log=f"Master API key created: {name}",
        after=_key_snapshot(row),
    )
    return NewMasterKey(row, key)


def update_master_key(
    session: Session, principal: AdminPrincipal, org_id: int, key_id: int, changes: dict[str, Any]
) -> AdminApiKey:
    row = master_key_for(session, principal, org_id, key_id)
    before = _key_snapshot(row)
    for name in ("name", "active", "expires_at"):
        if name in changes:
            setattr(row, name, changes[name])
    session.flush()
    audit.record(
        session,
        principal,
        action=audit.UPDATED,
        resource_type="master_api_key",
        resource_id=row.id,
        log=f"Master API key updated: {row.name}",
        before=before,
        after=_key_snapshot(row),
    )
    return row


def revoke_master_key(
    session: Session, principal: AdminPrincipal, org_id: int, key_id: int
) -> None:
    """Revoke a key. The row stays, as the reference keeps revoked keys, for the record."""
    row = master_key_for(session, principal, org_id, key_id)
    before = _key_snapshot(row)
    row.active = False
    session.flush()
    audit.record(
        session,
        principal,
        action=audit.DELETED,
        resource_type="master_api_key",
        resource_id=row.id,
        log=f"Master API key revoked: {row.name}",
        before=before,
        after=_key_snapshot(row),
    )
