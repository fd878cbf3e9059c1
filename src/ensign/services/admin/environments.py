"""Environments, their server keys, their document and their evaluation counts."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from ensign.errors import NotFound
from ensign.services.admin import access, audit, states
from ensign.services.documents import build_document
from ensign.services.keys import AdminPrincipal, new_client_key, new_server_key
from ensign.storage import environments as environment_store
from ensign.storage import features as feature_store
from ensign.storage import users as user_store
from ensign.storage.audit import row_snapshot
from ensign.storage.faults import flush
from ensign.storage.models import Environment, ServerKey
from ensign.storage.pagination import Page, Window

ENVIRONMENT_FIELDS = (
    "name",
    "description",
    "allow_client_traits",
    "hide_sensitive_data",
    "hide_disabled_flags",
    "use_identity_composite_key_for_hashing",
    "use_identity_overrides_in_local_eval",
)


def list_environments(
    session: Session, principal: AdminPrincipal, window: Window, *, project_id: int | None
) -> Page[Environment]:
    if project_id is None:
        project_ids = environment_store.project_ids(session, principal.organisation_id)
    else:
        project_ids = [access.project_for(session, principal, project_id).id]
    return environment_store.environments(session, project_ids, window)


def get_environment(session: Session, principal: AdminPrincipal, api_key: str) -> Environment:
    return access.environment_for(session, principal, api_key)


def create_environment(
    session: Session,
    principal: AdminPrincipal,
    *,
    project_id: int,
    name: str,
    description: str | None = None,
    allow_client_traits: bool = True,
    hide_sensitive_data: bool = False,
    hide_disabled_flags: bool | None = None,
    use_identity_composite_key_for_hashing: bool = True,
    use_identity_overrides_in_local_eval: bool = True,
) -> Environment:
    """Create an environment with a default state for every feature of its project."""
    project = access.referenced_project(session, principal, project_id)
    environment = Environment(
        project_id=project.id,
        name=name,
        api_key=new_client_key(),
        description=description,
        allow_client_traits=allow_client_traits,
        hide_sensitive_data=hide_sensitive_data,
        hide_disabled_flags=hide_disabled_flags,
        use_identity_composite_key_for_hashing=use_identity_composite_key_for_hashing,
        use_identity_overrides_in_local_eval=use_identity_overrides_in_local_eval,
    )
    session.add(environment)
    flush(session, conflict="Could not allocate an environment key; try again.")
    for feature in feature_store.all_features(session, project.id):
        states.add_default_state(session, environment.id, feature)
    audit.record(
        session,
        principal,
        action=audit.CREATED,
        resource_type="environment",
        resource_id=environment.id,
        log=f"Environment created: {name}",
        after=row_snapshot(environment),
        project_id=project.id,
        environment_id=environment.id,
    )
    return environment


def update_environment(
    session: Session, principal: AdminPrincipal, api_key: str, changes: dict[str, Any]
) -> Environment:
    environment = access.environment_for(session, principal, api_key)
    before = row_snapshot(environment)
    for name in ENVIRONMENT_FIELDS:
        if name in changes:
            setattr(environment, name, changes[name])
    session.flush()
    environment_store.touch_environments(session, environment_ids=[environment.id])
    session.refresh(environment)
    audit.record(
        session,
        principal,
        action=audit.UPDATED,
        resource_type="environment",
        resource_id=environment.id,
        log=f"Environment updated: {environment.name}",
        before=before,
        after=row_snapshot(environment),
        project_id=environment.project_id,
        environment_id=environment.id,
    )
    return environment


def delete_environment(session: Session, principal: AdminPrincipal, api_key: str) -> None:
    environment = access.environment_for(session, principal, api_key)
    before = row_snapshot(environment)
    session.delete(environment)
    session.flush()
    audit.record(
        session,
        principal,
        action=audit.DELETED,
        resource_type="environment",
        resource_id=before["id"],
        log=f"Environment deleted: {before['name']}",
        before=before,
        project_id=before["project_id"],
    )


def environment_document(
    session: Session, principal: AdminPrincipal, api_key: str
) -> dict[str, Any]:
    """The document an SDK in local-evaluation mode would download for this environment."""
    environment = access.environment_for(session, principal, api_key)
    rows = environment_store.load_environment_rows(session, environment.id)
    if rows is None:
        raise NotFound("This environment is still being imported.")
    return build_document(rows)


@dataclass(frozen=True)
class EvaluationCount:
    feature: str
    day: dt.date
    count: int


def evaluation_counts(
    session: Session, principal: AdminPrincipal, api_key: str, *, days: int, today: dt.date
) -> list[EvaluationCount]:
    """Flag evaluations the SDKs reported over the last `days` days, per feature and day."""
    environment = access.environment_for(session, principal, api_key)
    since = today - dt.timedelta(days=days - 1)
    return [
        EvaluationCount(name, day, count)
        for name, day, count in environment_store.evaluation_counts(session, environment.id, since)
    ]


# --- server keys ----------------------------------------------------------------------------


def _key_for(session: Session, environment: Environment, key_id: int) -> ServerKey:
    row = session.get(ServerKey, key_id) if access.is_valid_id(key_id) else None
    if row is None or row.environment_id != environment.id:
        raise NotFound("Server key not found.")
    return row


def _key_snapshot(row: ServerKey) -> dict[str, Any]:
    snapshot = row_snapshot(row)
    snapshot["key"] = row.key[:8] + "…"
    return snapshot


def list_server_keys(
    session: Session, principal: AdminPrincipal, api_key: str, window: Window
) -> Page[ServerKey]:
    environment = access.environment_for(session, principal, api_key)
    return user_store.server_keys(session, environment.id, window)


def get_server_key(
    session: Session, principal: AdminPrincipal, api_key: str, key_id: int
) -> ServerKey:
    return _key_for(session, access.environment_for(session, principal, api_key), key_id)


def create_server_key(
    session: Session,
    principal: AdminPrincipal,
    api_key: str,
    *,
    name: str,
    expires_at: dt.datetime | None = None,
) -> ServerKey:
    """A `ser.` key for server-side SDKs and local evaluation."""
    environment = access.environment_for(session, principal, api_key)
    row = ServerKey(
        environment_id=environment.id, key=new_server_key(), name=name, expires_at=expires_at
    )
    session.add(row)
    flush(session, conflict="Could not allocate a key; try again.")
    environment_store.touch_environments(session, environment_ids=[environment.id])
    audit.record(
        session,
        principal,
        action=audit.CREATED,
        resource_type="server_key",
        resource_id=row.id,
        log=f"Server key created: {name} in {environment.name!r}",
        after=_key_snapshot(row),
        project_id=environment.project_id,
        environment_id=environment.id,
    )
    return row


def update_server_key(
    session: Session, principal: AdminPrincipal, api_key: str, key_id: int, changes: dict[str, Any]
) -> ServerKey:
    environment = access.environment_for(session, principal, api_key)
    row = _key_for(session, environment, key_id)
    before = _key_snapshot(row)
    for name in ("name", "active", "expires_at"):
        if name in changes:
            setattr(row, name, changes[name])
    session.flush()
    environment_store.touch_environments(session, environment_ids=[environment.id])
    audit.record(
        session,
        principal,
        action=audit.UPDATED,
        resource_type="server_key",
        resource_id=row.id,
        log=f"Server key updated: {row.name} in {environment.name!r}",
        before=before,
        after=_key_snapshot(row),
        project_id=environment.project_id,
        environment_id=environment.id,
    )
    return row


def delete_server_key(
    session: Session, principal: AdminPrincipal, api_key: str, key_id: int
) -> None:
    environment = access.environment_for(session, principal, api_key)
    row = _key_for(session, environment, key_id)
    before = _key_snapshot(row)
    session.delete(row)
    session.flush()
    environment_store.touch_environments(session, environment_ids=[environment.id])
    audit.record(
        session,
        principal,
        action=audit.DELETED,
        resource_type="server_key",
        resource_id=key_id,
        log=f"Server key deleted: {before['name']} in {environment.name!r}",
        before=before,
        project_id=environment.project_id,
        environment_id=environment.id,
    )
