"""Segment overrides (ordered by priority, 0 first) and identity overrides.

An override's environment is given by its client key (`str`, as the admin API's paths do) or
by its id (`int`, as the dashboard's do).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from ensign.errors import Conflict, EnsignError, InvalidInput, NotFound
from ensign.services import changes as change_path
from ensign.services.admin import access, states
from ensign.services.admin.states import (
    Allocation,
    StateChanges,
    check_allocations,
    describe,
    new_feature_state,
    state_snapshot,
)
from ensign.services.changes import Change
from ensign.services.keys import AdminPrincipal
from ensign.services.values import FlagValue
from ensign.storage import features as feature_store
from ensign.storage.models import Environment, FeatureState
from ensign.storage.pagination import Page, Window
from ensign.storage.unit_of_work import UnitOfWork

PRIORITY_MAX = 2**31 - 1


@dataclass(frozen=True)
class PriorityChange:
    state_id: int
    priority: int


def _environment_of(
    session: Session, principal: AdminPrincipal, environment: int | str
) -> Environment:
    if isinstance(environment, int):
        return access.environment_by_id(session, principal, environment)
    return access.environment_for(session, principal, environment)


def _created(state: FeatureState, environment: Environment, log: str) -> Change:
    return Change(
        resource_type="feature_state",
        resource_id=state.id,
        action=change_path.CREATED,
        log=log,
        project_id=environment.project_id,
        environment_ids=(environment.id,),
        after=state_snapshot(state),
    )


# --- segment overrides ----------------------------------------------------------------------


def create_segment_override(
    unit: UnitOfWork,
    principal: AdminPrincipal,
    environment_ref: int | str,
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
    session = unit.session
    environment = _environment_of(session, principal, environment_ref)
    project = access.project_for(session, principal, environment.project_id)
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
    log = f"Segment override created: {describe(session, state)} in {environment.name!r}"
    change_path.apply(unit, principal, [_created(state, environment, log)])
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
    unit: UnitOfWork, principal: AdminPrincipal, changes: Sequence[PriorityChange]
) -> list[FeatureState]:
    """Reorder segment overrides; every id must be a segment override of the caller's."""
    session = unit.session
    found: list[FeatureState] = []
    recorded: list[Change] = []
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
        feature_store.save(session)
        found.append(state)
        recorded.append(
            Change(
                resource_type="feature_state",
                resource_id=state.id,
                action=change_path.UPDATED,
                log=f"Segment override priority set to {change.priority}: "
                f"{describe(session, state)} in {environment.name!r}",
                project_id=environment.project_id,
                environment_ids=(environment.id,),
                before=before,
                after=state_snapshot(state),
            )
        )
    change_path.apply(unit, principal, recorded)
    return found


def _environment(session: Session, principal: AdminPrincipal, ref: str) -> Environment:
    if ref.isdigit():
        return access.environment_by_id(session, principal, int(ref))
    return access.environment_for(session, principal, ref)


def segment_override_of(
    session: Session, principal: AdminPrincipal, environment_id: int, feature_id: int, state_id: int
) -> FeatureState:
    """A segment override of this feature in this environment, as the dashboard names one."""
    environment = access.environment_by_id(session, principal, environment_id)
    state = states.get_feature_state(session, principal, state_id)
    here = state.environment_id == environment.id and state.feature_id == feature_id
    if not here or not state.segment_id:
        raise EnsignError("Not a segment override of this feature here.")
    return state


def update_segment_override(
    unit: UnitOfWork,
    principal: AdminPrincipal,
    environment_id: int,
    feature_id: int,
    state_id: int,
    changes: StateChanges,
) -> FeatureState:
    segment_override_of(unit.session, principal, environment_id, feature_id, state_id)
    return states.update_feature_state(unit, principal, state_id, changes)


def delete_segment_override(
    unit: UnitOfWork, principal: AdminPrincipal, environment_id: int, feature_id: int, state_id: int
) -> None:
    segment_override_of(unit.session, principal, environment_id, feature_id, state_id)
    states.delete_feature_state(unit, principal, state_id)


def move_segment_override(
    unit: UnitOfWork,
    principal: AdminPrincipal,
    environment_id: int,
    feature_id: int,
    state_id: int,
    direction: str,
) -> None:
    """Swap an override with its neighbour ("up" is earlier); priorities are renumbered
    0, 1, 2… in order. At either end nothing moves."""
    segment_override_of(unit.session, principal, environment_id, feature_id, state_id)
    ordered = feature_store.segment_overrides_of(unit.session, environment_id, feature_id)
    ids = [o.id for o in ordered]
    index = ids.index(state_id)
    other = index - 1 if direction == "up" else index + 1
    if 0 <= other < len(ids):
        ids[index], ids[other] = ids[other], ids[index]
        update_priorities(unit, principal, [PriorityChange(i, p) for p, i in enumerate(ids)])


# --- identity overrides ---------------------------------------------------------------------


def list_identity_overrides(
    session: Session,
    principal: AdminPrincipal,
    environment_ref: int | str,
    identity_id: int,
    window: Window,
) -> Page[FeatureState]:
    environment = _environment_of(session, principal, environment_ref)
    identity = access.identity_for(session, environment, identity_id)
    return feature_store.feature_states(
        session,
        window,
        environment_ids=[environment.id],
        kind="identity",
        identity_id=identity.id,
    )


def get_identity_override(
    session: Session,
    principal: AdminPrincipal,
    environment_ref: int | str,
    identity_id: int,
    state_id: int,
) -> FeatureState:
    environment = _environment_of(session, principal, environment_ref)
    identity = access.identity_for(session, environment, identity_id)
    state, _ = access.feature_state_for(session, principal, state_id)
    if state.identity_id != identity.id:
        raise NotFound("Feature state not found.")
    return state


def create_identity_override(
    unit: UnitOfWork,
    principal: AdminPrincipal,
    environment_ref: int | str,
    identity_id: int,
    *,
    feature_id: int,
    enabled: bool,
    value: FlagValue,
) -> FeatureState:
    """Override a feature for one identity; it wins over segments and the default."""
    session = unit.session
    environment = _environment_of(session, principal, environment_ref)
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
    log = (
        f"Identity override created: {feature.name!r} for {identity.identifier!r} "
        f"in {environment.name!r}"
    )
    change_path.apply(unit, principal, [_created(state, environment, log)])
    return state


def update_identity_override(
    unit: UnitOfWork,
    principal: AdminPrincipal,
    environment_ref: int | str,
    identity_id: int,
    state_id: int,
    changes: StateChanges,
) -> FeatureState:
    get_identity_override(unit.session, principal, environment_ref, identity_id, state_id)
    return states.update_feature_state(unit, principal, state_id, changes)


def delete_identity_override(
    unit: UnitOfWork,
    principal: AdminPrincipal,
    environment_ref: int | str,
    identity_id: int,
    state_id: int,
) -> None:
    get_identity_override(unit.session, principal, environment_ref, identity_id, state_id)
    states.delete_feature_state(unit, principal, state_id)
