"""Feature states: environment defaults and their edits, shared by the override services.

A new state's multivariate seed is the one remembered for its scope, else its own id, so
deleting and re-creating an override keeps every user in the variant they had (pitfall 3).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from ensign.errors import InvalidInput, NotFound
from ensign.services import changes as change_path
from ensign.services.admin import access
from ensign.services.changes import Change
from ensign.services.keys import AdminPrincipal
from ensign.services.text import check_text
from ensign.services.values import FlagValue, encode_flag_value, flag_value_from_text
from ensign.storage import experiments as experiment_store
from ensign.storage import features as feature_store
from ensign.storage.audit import row_snapshot
from ensign.storage.models import (
    Environment,
    Feature,
    FeatureState,
    MultivariateStateValue,
    utcnow,
)
from ensign.storage.pagination import Page, Window
from ensign.storage.unit_of_work import UnitOfWork

ALLOCATIONS_FIELD = "multivariate_feature_state_values"


@dataclass(frozen=True)
class Allocation:
    option_id: int
    percentage: float


@dataclass(frozen=True)
class StateChanges:
    """What an edit sets; `None` (or `set_value=False`) leaves a part as it is."""

    enabled: bool | None = None
    value: FlagValue = None
    set_value: bool = False
    allocations: Sequence[Allocation] | None = None


def state_snapshot(state: FeatureState) -> dict[str, Any]:
    snapshot = row_snapshot(state)
    snapshot["multivariate_feature_state_values"] = [
        {
            "multivariate_feature_option": mv.option_id,
            "percentage_allocation": mv.percentage_allocation,
        }
        for mv in state.mv_values
    ]
    return snapshot


def check_allocations(
    feature: Feature, allocations: Sequence[Allocation], *, field: str = ALLOCATIONS_FIELD
) -> None:
    option_ids = {o.id for o in feature.options}
    seen: set[int] = set()
    for allocation in allocations:
        if allocation.option_id not in option_ids:
            raise InvalidInput(
                f"{field}: option {allocation.option_id} is not an option of this feature.",
                field=field,
            )
        if allocation.option_id in seen:
            raise InvalidInput(f"{field}: option {allocation.option_id} given twice.", field=field)
        seen.add(allocation.option_id)
        if not 0 <= allocation.percentage <= 100:
            raise InvalidInput(f"{field}: allocations lie between 0 and 100.", field=field)
    if sum(a.percentage for a in allocations) > 100:
        raise InvalidInput(f"{field}: the allocations add up to more than 100.", field=field)


def check_weights_frozen(
    session: Session,
    feature: Feature,
    environment_id: int,
    *,
    field: str,
    before: dict[int, float],
    after: dict[int, float],
) -> None:
    """Refuse a change of the weights of a feature's own split (`before` → `after`, option id
    → percentage) while an experiment runs on it in the environment: the sample-ratio check
    compares the exposures with one set of weights, so a change mid-experiment would make it
    meaningless. Stopping the experiment, changing the weights and starting a new one keeps
    each experiment's results honest."""
    if {k: v for k, v in before.items() if v} == {k: v for k, v in after.items() if v}:
        return
    experiment = experiment_store.running_experiment(session, environment_id, feature.id)
    if experiment is not None:
        raise InvalidInput(
            f"{field}: the weights of {feature.name!r} cannot change while the experiment "
            f"{experiment.name!r} runs on it in this environment: stop the experiment first.",
            field=field,
        )


def new_uuid() -> str:
    return str(uuid.uuid4())


def _set_allocations(state: FeatureState, allocations: Sequence[Allocation]) -> None:
    wanted = {a.option_id: a.percentage for a in allocations}
    for mv in list(state.mv_values):
        if mv.option_id in wanted:
            mv.percentage_allocation = wanted.pop(mv.option_id)
        else:
            state.mv_values.remove(mv)
    for option_id, percentage in wanted.items():
        state.mv_values.append(
            MultivariateStateValue(
                option_id=option_id,
                percentage_allocation=percentage,
                uuid=new_uuid(),
                hash_id=option_id,
            )
        )


def new_feature_state(
    session: Session,
    *,
    environment_id: int,
    feature: Feature,
    scope: str = "",
    enabled: bool,
    value: FlagValue,
    allocations: Sequence[Allocation] = (),
    segment_id: int | None = None,
    identity_id: int | None = None,
    priority: int | None = None,
) -> FeatureState:
    """Add a feature state with a stable multivariate seed. The caller touches environments."""
    value_type, value_text = encode_flag_value(value)
    state = FeatureState(
        environment_id=environment_id,
        feature_id=feature.id,
        scope=scope,
        segment_id=segment_id,
        identity_id=identity_id,
        priority=priority,
        enabled=enabled,
        value_type=value_type,
        value_text=value_text,
        uuid=str(uuid.uuid4()),
    )
    feature_store.add_feature_state(session, state)
    seed = feature_store.hashing_seed_for(session, environment_id, feature.id, scope)
    if seed is None:
        seed = state.id
        feature_store.remember_hashing_seed(session, environment_id, feature.id, scope, seed)
    state.hash_seed = seed
    _set_allocations(state, allocations)
    feature_store.save(session)
    return state


def default_allocations(feature: Feature) -> list[Allocation]:
    return [Allocation(o.id, o.default_percentage_allocation) for o in feature.options]


def add_default_state(session: Session, environment_id: int, feature: Feature) -> FeatureState:
    """An environment's default state of a feature, as the feature's defaults describe it."""
    return new_feature_state(
        session,
        environment_id=environment_id,
        feature=feature,
        enabled=feature.default_enabled,
        value=flag_value_from_text(feature.initial_value),
        allocations=default_allocations(feature),
    )


def apply_state_changes(session: Session, state: FeatureState, changes: StateChanges) -> None:
    feature = feature_store.feature_of_state(session, state)
    if changes.enabled is not None:
        state.enabled = changes.enabled
    if changes.set_value:
        state.value_type, state.value_text = encode_flag_value(changes.value)
    if changes.allocations is not None:
        check_allocations(feature, changes.allocations)
        if state.segment_id is None and state.identity_id is None:
            check_weights_frozen(
                session,
                feature,
                state.environment_id,
                field=ALLOCATIONS_FIELD,
                before={mv.option_id: mv.percentage_allocation for mv in state.mv_values},
                after={a.option_id: a.percentage for a in changes.allocations},
            )
        _set_allocations(state, changes.allocations)
    state.updated_at = utcnow()
    feature_store.save(session)


def describe(session: Session, state: FeatureState) -> str:
    name = feature_store.feature_of_state(session, state).name
    if state.segment_id is not None:
        return f"segment override of {name!r} (segment {state.segment_id})"
    if state.identity_id is not None:
        return f"identity override of {name!r} (identity {state.identity_id})"
    return f"{name!r}"


# --- use cases ------------------------------------------------------------------------------


def list_environment_states(
    session: Session,
    principal: AdminPrincipal,
    api_key: str,
    window: Window,
    *,
    feature_id: int | None = None,
    feature_name: str | None = None,
    any_identity: bool = False,
) -> Page[FeatureState]:
    """The environment's default states, or with `any_identity` its identity overrides, as
    the reference's list does; segment overrides are listed elsewhere.

    A name matches exactly, case included: names differing only in case are distinct features
    here, and a script that PATCHes the first result must get the flag it named."""
    environment = access.environment_for(session, principal, api_key)
    if feature_id is not None and not access.is_valid_id(feature_id):
        return Page([], 0)
    if feature_name is not None:
        check_text(feature_name, "feature_name")
        named = feature_store.feature_id_by_name(session, environment.project_id, feature_name)
        if named is None or (feature_id is not None and named != feature_id):
            return Page([], 0)
        feature_id = named
    return feature_store.feature_states(
        session,
        window,
        environment_ids=[environment.id],
        feature_id=feature_id,
        kind="identity" if any_identity else "default",
    )


def get_environment_state(
    session: Session, principal: AdminPrincipal, api_key: str, state_id: int
) -> FeatureState:
    environment = access.environment_for(session, principal, api_key)
    state, state_environment = access.feature_state_for(session, principal, state_id)
    if state_environment.id != environment.id:
        raise NotFound("Feature state not found.")
    return state


def get_feature_state(session: Session, principal: AdminPrincipal, state_id: int) -> FeatureState:
    return access.feature_state_for(session, principal, state_id)[0]


def default_state(
    session: Session, principal: AdminPrincipal, environment_id: int, feature_id: int
) -> FeatureState:
    """A feature's default state in an environment (given by id, as the dashboard does)."""
    environment = access.environment_by_id(session, principal, environment_id)
    project = access.project_for(session, principal, environment.project_id)
    feature = access.feature_for(session, project, feature_id)
    state = feature_store.feature_state_in_scope(session, environment.id, feature.id, "")
    if state is None:  # every environment has one per feature; a fault if not
        raise NotFound("Feature state not found.")
    return state


def update_default_state(
    unit: UnitOfWork,
    principal: AdminPrincipal,
    environment_id: int,
    feature_id: int,
    changes: StateChanges,
) -> FeatureState:
    """Edit a feature's default state in an environment given by id."""
    state = default_state(unit.session, principal, environment_id, feature_id)
    environment = access.environment_by_id(unit.session, principal, environment_id)
    return _update(unit, principal, state, environment, changes)


def update_feature_state(
    unit: UnitOfWork, principal: AdminPrincipal, state_id: int, changes: StateChanges
) -> FeatureState:
    """Edit any feature state (default or override) of the caller's organisation."""
    state, environment = access.feature_state_for(unit.session, principal, state_id)
    return _update(unit, principal, state, environment, changes)


def update_environment_state(
    unit: UnitOfWork,
    principal: AdminPrincipal,
    api_key: str,
    state_id: int,
    changes: StateChanges,
) -> FeatureState:
    state = get_environment_state(unit.session, principal, api_key, state_id)
    environment = access.environment_by_id(unit.session, principal, state.environment_id)
    return _update(unit, principal, state, environment, changes)


def _update(
    unit: UnitOfWork,
    principal: AdminPrincipal,
    state: FeatureState,
    environment: Environment,
    changes: StateChanges,
) -> FeatureState:
    before = state_snapshot(state)
    apply_state_changes(unit.session, state, changes)
    change_path.apply(
        unit,
        principal,
        [
            Change(
                resource_type="feature_state",
                resource_id=state.id,
                action=change_path.UPDATED,
                log=f"Flag state updated: {describe(unit.session, state)} in {environment.name!r}",
                project_id=environment.project_id,
                environment_ids=(environment.id,),
                before=before,
                after=state_snapshot(state),
            )
        ],
    )
    return state


def delete_feature_state(unit: UnitOfWork, principal: AdminPrincipal, state_id: int) -> None:
    """Delete an override. An environment default exists as long as its feature does."""
    state, environment = access.feature_state_for(unit.session, principal, state_id)
    if state.scope == "":
        raise InvalidInput(
            "An environment's default feature state cannot be deleted; delete the feature.",
            field="id",
        )
    before = state_snapshot(state)
    log = f"Override deleted: {describe(unit.session, state)} in {environment.name!r}"
    feature_store.delete_feature_state(unit.session, state)
    change_path.apply(
        unit,
        principal,
        [
            Change(
                resource_type="feature_state",
                resource_id=state_id,
                action=change_path.DELETED,
                log=log,
                project_id=environment.project_id,
                environment_ids=(environment.id,),
                before=before,
            )
        ],
    )
