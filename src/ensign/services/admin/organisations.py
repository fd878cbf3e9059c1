"""Organisations and their admin (master) API keys."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from ensign.errors import NotFound
from ensign.services import changes as change_path
from ensign.services.admin import access
from ensign.services.changes import Change, Reach
from ensign.services.keys import AdminPrincipal, create_admin_key, hash_key
from ensign.storage import environments as environment_store
from ensign.storage import users as user_store
from ensign.storage.audit import row_snapshot
from ensign.storage.models import AdminApiKey, Organisation
from ensign.storage.pagination import Page, Window
from ensign.storage.unit_of_work import UnitOfWork

ORGANISATION_FIELDS = ("name", "persist_trait_data", "stop_serving_flags", "feature_analytics")


def create_organisation(
    unit: UnitOfWork,
    *,
    name: str,
    persist_trait_data: bool = True,
    stop_serving_flags: bool = False,
    feature_analytics: bool = True,
) -> Organisation:
    """Create an organisation. There is no caller yet, so this is for set-up and the CLI."""
    return add_organisation(
        unit.session,
        name=name,
        persist_trait_data=persist_trait_data,
        stop_serving_flags=stop_serving_flags,
        feature_analytics=feature_analytics,
    )


def add_organisation(
    session: Session,
    *,
    name: str,
    persist_trait_data: bool = True,
    stop_serving_flags: bool = False,
    feature_analytics: bool = True,
) -> Organisation:
    """An organisation's row, in a transaction that is not a use case's (the first run's)."""
    return environment_store.add_organisation(
        session,
        Organisation(
            name=name,
            persist_trait_data=persist_trait_data,
            stop_serving_flags=stop_serving_flags,
            feature_analytics=feature_analytics,
        ),
    )


def get_organisation(unit: UnitOfWork, principal: AdminPrincipal, org_id: int) -> Organisation:
    return access.organisation_for(unit.session, principal, org_id)


def list_organisations(unit: UnitOfWork, principal: AdminPrincipal) -> list[Organisation]:
    """An admin key belongs to one organisation, so that is all it sees."""
    return [access.organisation_for(unit.session, principal, principal.organisation_id)]


def update_organisation(
    unit: UnitOfWork, principal: AdminPrincipal, org_id: int, changes: dict[str, Any]
) -> Organisation:
    """Change the organisation's settings; flags of every environment may change with them."""
    organisation = access.organisation_for(unit.session, principal, org_id)
    before = row_snapshot(organisation)
    for name in ORGANISATION_FIELDS:
        if name in changes:
            setattr(organisation, name, changes[name])
    environment_store.save(unit.session)
    # Its settings (stop serving flags, trait persistence) reach every environment's
    # snapshot, but its audit entry belongs to no project nor environment.
    for project_id in environment_store.project_ids(unit.session, organisation.id):
        unit.served_changed(project_id=project_id)
    change_path.apply(
        unit,
        principal,
        [
            Change(
                resource_type="organisation",
                resource_id=organisation.id,
                action=change_path.UPDATED,
                log=f"Organisation updated: {organisation.name}",
                project_id=None,
                before=before,
                after=row_snapshot(organisation),
                reach=Reach.AUDIT,
            )
        ],
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
    unit: UnitOfWork, principal: AdminPrincipal, org_id: int, window: Window
) -> Page[AdminApiKey]:
    access.organisation_for(unit.session, principal, org_id)
    return user_store.master_keys(unit.session, org_id, window)


def master_key_for(
    unit: UnitOfWork, principal: AdminPrincipal, org_id: int, key_id: int
) -> AdminApiKey:
    access.organisation_for(unit.session, principal, org_id)
    row = user_store.master_key_by_id(unit.session, key_id) if access.is_valid_id(key_id) else None
    if row is None or row.organisation_id != org_id:
        raise NotFound("API key not found.")
    return row


def _key_change(action: str, log: str, row: AdminApiKey, before: dict[str, Any] | None) -> Change:
    return Change(
        resource_type="master_api_key",
        resource_id=row.id,
        action=action,
        log=log,
        project_id=None,
        before=before,
        after=_key_snapshot(row),
        reach=Reach.AUDIT,
    )


def create_master_key(
    unit: UnitOfWork,
    principal: AdminPrincipal,
    org_id: int,
    *,
    name: str,
    expires_at: dt.datetime | None = None,
) -> NewMasterKey:
    """Create an admin key; its secret is in the answer and nowhere else."""
    access.organisation_for(unit.session, principal, org_id)
    key = create_admin_key(unit, org_id, name)
    row = user_store.master_key_by_hash(unit.session, hash_key(key))
    assert row is not None
    row.expires_at = expires_at
    user_store.save(unit.session)
    change = _key_change(change_path.CREATED, f"Master API key created: {name}", row, None)
    change_path.apply(unit, principal, [change])
    return NewMasterKey(row, key)


def update_master_key(
    unit: UnitOfWork, principal: AdminPrincipal, org_id: int, key_id: int, changes: dict[str, Any]
) -> AdminApiKey:
    row = master_key_for(unit, principal, org_id, key_id)
    before = _key_snapshot(row)
    for name in ("name", "active", "expires_at"):
        if name in changes:
            setattr(row, name, changes[name])
    user_store.save(unit.session)
    change = _key_change(change_path.UPDATED, f"Master API key updated: {row.name}", row, before)
    change_path.apply(unit, principal, [change])
    return row


def revoke_master_key(
    unit: UnitOfWork, principal: AdminPrincipal, org_id: int, key_id: int
) -> None:
    """Revoke a key. The row stays, as the reference keeps revoked keys, for the record."""
    row = master_key_for(unit, principal, org_id, key_id)
    before = _key_snapshot(row)
    row.active = False
    user_store.save(unit.session)
    change = _key_change(change_path.DELETED, f"Master API key revoked: {row.name}", row, before)
    change_path.apply(unit, principal, [change])
