"""Environments, their server keys, their document and their evaluation counts."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from ensign.errors import NotFound
from ensign.services import changes as change_path
from ensign.services.admin import access, states
from ensign.services.admin.access import EnvironmentRef
from ensign.services.changes import Change, Reach
from ensign.services.documents import build_document
from ensign.services.keys import AdminPrincipal, new_client_key, new_server_key
from ensign.storage import environments as environment_store
from ensign.storage import features as feature_store
from ensign.storage import users as user_store
from ensign.storage.audit import row_snapshot
from ensign.storage.models import Environment, ServerKey, utcnow
from ensign.storage.pagination import Page, Window
from ensign.storage.unit_of_work import UnitOfWork

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
    unit: UnitOfWork, principal: AdminPrincipal, window: Window, *, project_id: int | None
) -> Page[Environment]:
    session = unit.session
    if project_id is None:
        project_ids = environment_store.project_ids(session, principal.organisation_id)
    else:
        project_ids = [access.project_for(session, principal, project_id).id]
    return environment_store.environments(session, project_ids, window)


def get_environment(
    unit: UnitOfWork, principal: AdminPrincipal, environment: EnvironmentRef
) -> Environment:
    return access.environment_ref(unit.session, principal, environment)


def create_environment(
    unit: UnitOfWork,
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
    session = unit.session
    project = access.referenced_project(session, principal, project_id)
    environment = environment_store.add_environment(
        session,
        Environment(
            project_id=project.id,
            name=name,
            api_key=new_client_key(),
            description=description,
            allow_client_traits=allow_client_traits,
            hide_sensitive_data=hide_sensitive_data,
            hide_disabled_flags=hide_disabled_flags,
            use_identity_composite_key_for_hashing=use_identity_composite_key_for_hashing,
            use_identity_overrides_in_local_eval=use_identity_overrides_in_local_eval,
        ),
    )
    for feature in feature_store.all_features(session, project.id):
        states.add_default_state(session, environment.id, feature)
    change_path.apply(
        unit,
        principal,
        [
            Change(
                resource_type="environment",
                resource_id=environment.id,
                action=change_path.CREATED,
                log=f"Environment created: {name}",
                project_id=project.id,
                environment_ids=(environment.id,),
                after=row_snapshot(environment),
                # A new environment has no revision anyone serves yet.
                reach=Reach.AUDIT,
            )
        ],
    )
    return environment


def update_environment(
    unit: UnitOfWork,
    principal: AdminPrincipal,
    environment: EnvironmentRef,
    changes: dict[str, Any],
) -> Environment:
    """Change an environment's settings, which its snapshot holds."""
    env = access.environment_ref(unit.session, principal, environment)
    before = row_snapshot(env)
    for name in ENVIRONMENT_FIELDS:
        if name in changes:
            setattr(env, name, changes[name])
    env.updated_at = utcnow()
    environment_store.save(unit.session)
    after = row_snapshot(env)
    change_path.apply(
        unit,
        principal,
        [
            Change(
                resource_type="environment",
                resource_id=env.id,
                action=change_path.UPDATED,
                log=f"Environment updated: {env.name}",
                project_id=env.project_id,
                environment_ids=(env.id,),
                before=before,
                after=after,
                reach=Reach.SERVED if _serving_changed(before, after) else Reach.SNAPSHOT,
            )
        ],
    )
    return env


# Settings that only describe the environment; every other one changes what SDKs are served
# (hidden flags, hashing, identity overrides in the document, client traits).
_DESCRIPTIVE_FIELDS = frozenset({"name", "description", "updated_at", "revision"})


def _serving_changed(before: dict[str, Any], after: dict[str, Any]) -> bool:
    return any(
        before.get(name) != after.get(name) for name in after if name not in _DESCRIPTIVE_FIELDS
    )


def delete_environment(
    unit: UnitOfWork, principal: AdminPrincipal, environment: EnvironmentRef
) -> int:
    """Delete an environment with everything in it; answers its project's id."""
    env = access.environment_ref(unit.session, principal, environment)
    before = row_snapshot(env)
    environment_store.delete_environment(unit.session, env)
    change_path.apply(
        unit,
        principal,
        [
            Change(
                resource_type="environment",
                resource_id=before["id"],
                action=change_path.DELETED,
                log=f"Environment deleted: {before['name']}",
                project_id=before["project_id"],
                before=before,
                reach=Reach.AUDIT,
            )
        ],
    )
    return int(before["project_id"])


def environment_document(
    unit: UnitOfWork, principal: AdminPrincipal, api_key: str
) -> dict[str, Any]:
    """The document an SDK in local-evaluation mode would download for this environment."""
    environment = access.environment_for(unit.session, principal, api_key)
    rows = environment_store.load_environment_rows(unit.session, environment.id)
    if rows is None:
        raise NotFound("This environment is still being imported.")
    return build_document(rows)


@dataclass(frozen=True)
class EvaluationCount:
    feature: str
    day: dt.date
    count: int


def evaluation_counts(
    unit: UnitOfWork, principal: AdminPrincipal, api_key: str, *, days: int, today: dt.date
) -> list[EvaluationCount]:
    """Flag evaluations the SDKs reported over the last `days` days, per feature and day."""
    environment = access.environment_for(unit.session, principal, api_key)
    since = today - dt.timedelta(days=days - 1)
    counts = environment_store.evaluation_counts(unit.session, environment.id, since)
    return [EvaluationCount(name, day, count) for name, day, count in counts]


# --- server keys ----------------------------------------------------------------------------


def _key_for(unit: UnitOfWork, environment: Environment, key_id: int) -> ServerKey:
    row = user_store.server_key_by_id(unit.session, key_id) if access.is_valid_id(key_id) else None
    if row is None or row.environment_id != environment.id:
        raise NotFound("Server key not found.")
    return row


def _key_snapshot(row: ServerKey) -> dict[str, Any]:
    snapshot = row_snapshot(row)
    snapshot["key"] = row.key[:8] + "…"
    return snapshot


def _key_change(
    environment: Environment,
    key_id: int,
    action: str,
    log: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> Change:
    # A server key is in the environment's snapshot (it authenticates local evaluation).
    return Change(
        resource_type="server_key",
        resource_id=key_id,
        action=action,
        log=log,
        project_id=environment.project_id,
        environment_ids=(environment.id,),
        before=before,
        after=after,
        reach=Reach.SNAPSHOT,
    )


def list_server_keys(
    unit: UnitOfWork, principal: AdminPrincipal, environment: EnvironmentRef, window: Window
) -> Page[ServerKey]:
    env = access.environment_ref(unit.session, principal, environment)
    return user_store.server_keys(unit.session, env.id, window)


def get_server_key(
    unit: UnitOfWork, principal: AdminPrincipal, environment: EnvironmentRef, key_id: int
) -> ServerKey:
    return _key_for(unit, access.environment_ref(unit.session, principal, environment), key_id)


def create_server_key(
    unit: UnitOfWork,
    principal: AdminPrincipal,
    environment: EnvironmentRef,
    *,
    name: str,
    expires_at: dt.datetime | None = None,
) -> ServerKey:
    """A `ser.` key for server-side SDKs and local evaluation."""
    env = access.environment_ref(unit.session, principal, environment)
    row = user_store.add_server_key(
        unit.session,
        ServerKey(environment_id=env.id, key=new_server_key(), name=name, expires_at=expires_at),
    )
    log = f"Server key created: {name} in {env.name!r}"
    change = _key_change(env, row.id, change_path.CREATED, log, None, _key_snapshot(row))
    change_path.apply(unit, principal, [change])
    return row


def update_server_key(
    unit: UnitOfWork,
    principal: AdminPrincipal,
    environment: EnvironmentRef,
    key_id: int,
    changes: dict[str, Any],
) -> ServerKey:
    env = access.environment_ref(unit.session, principal, environment)
    row = _key_for(unit, env, key_id)
    before = _key_snapshot(row)
    for name in ("name", "active", "expires_at"):
        if name in changes:
            setattr(row, name, changes[name])
    user_store.save(unit.session)
    log = f"Server key updated: {row.name} in {env.name!r}"
    change = _key_change(env, row.id, change_path.UPDATED, log, before, _key_snapshot(row))
    change_path.apply(unit, principal, [change])
    return row


def delete_server_key(
    unit: UnitOfWork, principal: AdminPrincipal, environment: EnvironmentRef, key_id: int
) -> None:
    env = access.environment_ref(unit.session, principal, environment)
    row = _key_for(unit, env, key_id)
    before = _key_snapshot(row)
    user_store.delete_server_key(unit.session, row)
    log = f"Server key deleted: {before['name']} in {env.name!r}"
    change = _key_change(env, key_id, change_path.DELETED, log, before, None)
    change_path.apply(unit, principal, [change])
