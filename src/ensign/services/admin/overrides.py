"""Segment overrides (ordered by priority, 0 first) and identity overrides."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from ensign.errors import Conflict, InvalidInput, NotFound
from ensign.services.admin import access, audit
from ensign.services.admin.states import (
    Allocation,
    check_allocations,
    describe,
    new_feature_state,
    state_snapshot,
)
from ensign.services.keys import AdminPrincipal
from ensign.services.values import FlagValue
from ensign.storage import features as feature_store
from ensign.storage.environments import touch_environments
from ensign.storage.models import Environment, FeatureState, Project
from ensign.storage.pagination import Page, Window

PRIORITY_MAX = 2**31 - 1


@dataclass(frozen=True)
class PriorityChange:
    state_id: int
    priority: int


def create_segment_override(
    session: Session,
    principal: AdminPrincipal,
    api_key: str,
    feature_id: int,
    *,
    segment_id: int,
    enabled: bool,
    value: FlagValue,
    priority: int | None = None,
    allocations: Sequence[Allocation] = (),
) -> FeatureState:
    """Override a feature for a segment in one environment.

    Without a priority the override comes last (max + 1); with one it is inserted there and
    the overrides at or after it move down one place.
    """
    environment = access.environment_for(session, principal, api_key)
    project = session.get(Project, environment.project_id)
    assert project is not None
    feature = access.feature_for(session, project, feature_id)
    try:
        segment = access.segment_for(session, project, segment_id)
    except NotFound:
        raise InvalidInput("segment: no such segment in this project.", field="segment") from None
    if segment.feature_id is not None and segment.feature_id != feature.id:
        raise InvalidInput("segment: this segment belongs to another feature.", field="segment")
    scope = f"s{segment.id}"
    if feature_store.feature_state_in_scope(session, environment.id, feature.id, scope) is not None:
        raise Conflict("This segment already overrides this feature here.", field="segment")
    check_allocations(feature, allocations)
    existing = list(feature_store.segment_overrides_of(session, environment.id, feature.id))
    if priority is None:
        lowest = feature_store.lowest_priority(session, environment.id, feature.id)
        priority = 0 if lowest is None else lowest + 1
    else:
        for other in existing:
            if other.priority is not None and other.priority >= priority:
                other.priority += 1
    if max([priority, *(o.priority or 0 for o in existing)]) > PRIORITY_MAX:
        raise InvalidInput("priority: out of range; renumber the overrides.", field="priority")
    state = new_feature_state(
        session,
        environment_id=environment.id,
        feature=feature,
        scope=scope,
        enabled=enabled,
        value=value,
        allocations=allocations,
        segment_id=segment.id,
        priority=priority,
    )
    touch_environments(session, environment_ids=[environment.id])
    audit.record(
        session,
        principal,
        action=audit.CREATED,
        resource_type="feature_state",
        resource_id=state.id,
        log=f"Segment override created: {describe(session, state)} in {environment.name!r}",
        after=state_snapshot(state),
        project_id=project.id,
        environment_id=environment.id,
    )
    return state


def list_segment_overrides(
    session: Session,
    principal: AdminPrincipal,
    window: Window,
    *,
    environment: str,
    feature_id: int | None = None,
) -> Page[FeatureState]:
    """Segment overrides of an environment (given by id or key), by feature, then priority."""
    env = _environment(session, principal, environment)
    if feature_id is not None and not access.is_valid_id(feature_id):
        return Page([], 0)
    return feature_store.feature_states(
        session, window, environment_ids=[env.id], feature_id=feature_id, kind="segment"
    )


def update_priorities(
    session: Session, principal: AdminPrincipal, changes: Sequence[PriorityChange]
) -> list[FeatureState]:
    """Reorder segment overrides; every id must be a segment override of the caller's."""
    states: list[FeatureState] = []
    touched: set[int] = set()
    for index, change in enumerate(changes):
        field = f"{index}.id"
        try:
            state, environment = access.feature_state_for(session, principal, change.state_id)
        except NotFound:
            raise InvalidInput(f"{field}: no such segment override.", field=field) from None
        if state.segment_id is None:
            raise InvalidInput(f"{field}: not a segment override.", field=field)
        if not 0 <= change.priority <= PRIORITY_MAX:
            raise InvalidInput(f"{index}.priority: out of range.", field=f"{index}.priority")
        before = state_snapshot(state)
        state.priority = change.priority
        session.flush()
        touched.add(environment.id)
        states.append(state)
        audit.record(
            session,
            principal,
            action=audit.UPDATED,
            resource_type="feature_state",
            resource_id=state.id,
            log=f"Segment override priority set to {change.priority}: "
            f"{describe(session, state)} in {environment.name!r}",
            before=before,
            after=state_snapshot(state),
            project_id=environment.project_id,
            environment_id=environment.id,
        )
    touch_environments(session, environment_ids=sorted(touched))
    return states


def _environment(session: Session, principal: AdminPrincipal, ref: str) -> Environment:
    if ref.isdigit():
        return access.environment_by_id(session, principal, int(ref))
    return access.environment_for(session, principal, ref)


# --- identity overrides ---------------------------------------------------------------------


def list_identity_overrides(
    session: Session, principal: AdminPrincipal, api_key: str, identity_id: int, window: Window
) -> Page[FeatureState]:
    environment = access.environment_for(session, principal, api_key)
    identity = access.identity_for(session, environment, identity_id)
    return feature_store.feature_states(
        session,
        window,
        environment_ids=[environment.id],
        kind="identity",
        identity_id=identity.id,
    )


def get_identity_override(
    session: Session, principal: AdminPrincipal, api_key: str, identity_id: int, state_id: int
) -> FeatureState:
    environment = access.environment_for(session, principal, api_key)
    identity = access.identity_for(session, environment, identity_id)
    state, _ = access.feature_state_for(session, principal, state_id)
    if state.identity_id != identity.id:
        raise NotFound("Feature state not found.")
    return state


def create_identity_override(
    session: Session,
    principal: AdminPrincipal,
    api_key: str,
    identity_id: int,
    *,
    feature_id: int,
    enabled: bool,
    value: FlagValue,
) -> FeatureState:
    """Override a feature for one identity; it wins over segments and the default."""
    environment = access.environment_for(session, principal, api_key)
    identity = access.identity_for(session, environment, identity_id)
    feature = access.referenced_feature(session, environment.project_id, feature_id)
    scope = f"i{identity.id}"
    if feature_store.feature_state_in_scope(session, environment.id, feature.id, scope) is not None:
        raise Conflict("This identity already overrides this feature.", field="feature")
    state = new_feature_state(
        session,
        environment_id=environment.id,
        feature=feature,
        scope=scope,
        enabled=enabled,
        value=value,
        identity_id=identity.id,
    )
    touch_environments(session, environment_ids=[environment.id])
    audit.record(
        session,
        principal,
        action=audit.CREATED,
        resource_type="feature_state",
        resource_id=state.id,
        log=f"Identity override created: {feature.name!r} for {identity.identifier!r} "
        f"in {environment.name!r}",
        after=state_snapshot(state),
        project_id=environment.project_id,
        environment_id=environment.id,
    )
    return state
