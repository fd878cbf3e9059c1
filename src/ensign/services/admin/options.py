"""Multivariate options of a feature: its variants and their default weights."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from ensign.errors import InvalidInput
from ensign.services import changes as change_path
from ensign.services.admin import access, states
from ensign.services.admin.features import get_feature, option_snapshot
from ensign.services.changes import Change
from ensign.services.keys import AdminPrincipal
from ensign.services.values import FlagValue, encode_flag_value
from ensign.storage import features as feature_store
from ensign.storage.models import Feature, MultivariateOption, MultivariateStateValue
from ensign.storage.pagination import Page, Window
from ensign.storage.unit_of_work import UnitOfWork

ALLOCATION_FIELD = "default_percentage_allocation"


def list_options(
    session: Session, principal: AdminPrincipal, project_id: int, feature_id: int, window: Window
) -> Page[MultivariateOption]:
    feature = get_feature(session, principal, project_id, feature_id)
    return feature_store.options(session, feature.id, window)


def get_option(
    session: Session, principal: AdminPrincipal, project_id: int, feature_id: int, option_id: int
) -> MultivariateOption:
    feature = get_feature(session, principal, project_id, feature_id)
    return access.option_for(session, feature, option_id)


def _check_option_defaults(feature: Feature) -> None:
    if sum(o.default_percentage_allocation for o in feature.options) > 100:
        raise InvalidInput(
            f"{ALLOCATION_FIELD}: the options' default allocations add up to more than 100.",
            field=ALLOCATION_FIELD,
        )


def _option_change(
    feature: Feature,
    option_id: int,
    action: str,
    log: str,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> Change:
    return Change(
        resource_type="multivariate_option",
        resource_id=option_id,
        action=action,
        log=log,
        project_id=feature.project_id,
        project_wide=True,
        before=before,
        after=after,
    )


def create_option(
    unit: UnitOfWork,
    principal: AdminPrincipal,
    project_id: int,
    feature_id: int,
    *,
    value: FlagValue,
    key: str | None = None,
    default_percentage_allocation: float = 0.0,
) -> MultivariateOption:
    """Add a variant; every environment's default state gets it at its default allocation."""
    session = unit.session
    feature = get_feature(session, principal, project_id, feature_id)
    if not 0 <= default_percentage_allocation <= 100:
        raise InvalidInput(
            f"{ALLOCATION_FIELD}: must lie between 0 and 100.", field=ALLOCATION_FIELD
        )
    value_type, value_text = encode_flag_value(value)
    option = MultivariateOption(
        value_type=value_type,
        value_text=value_text,
        key=key,
        default_percentage_allocation=default_percentage_allocation,
    )
    feature.options.append(option)
    _check_option_defaults(feature)
    feature_store.save(session)
    for state in feature_store.default_states_of_feature(session, feature.id):
        states.check_weights_frozen(
            session,
            feature,
            state.environment_id,
            field=ALLOCATION_FIELD,
            before={},
            after={option.id: default_percentage_allocation},
        )
        total = sum(mv.percentage_allocation for mv in state.mv_values)
        if total + default_percentage_allocation > 100:
            raise InvalidInput(
                f"{ALLOCATION_FIELD}: the allocations in environment {state.environment_id} "
                "would add up to more than 100.",
                field=ALLOCATION_FIELD,
            )
        state.mv_values.append(
            MultivariateStateValue(
                option_id=option.id,
                percentage_allocation=default_percentage_allocation,
                uuid=states.new_uuid(),
                hash_id=option.id,
            )
        )
    feature_store.save(session)
    change = _option_change(
        feature,
        option.id,
        change_path.CREATED,
        f"Multivariate option created for {feature.name!r}",
        after=option_snapshot(option),
    )
    change_path.apply(unit, principal, [change])
    return option


def create_option_in_environment(
    unit: UnitOfWork,
    principal: AdminPrincipal,
    environment_id: int,
    feature_id: int,
    *,
    value: FlagValue,
    key: str | None = None,
    default_percentage_allocation: float = 0.0,
) -> MultivariateOption:
    """`create_option` for a feature of the environment's project."""
    environment = access.environment_by_id(unit.session, principal, environment_id)
    return create_option(
        unit,
        principal,
        environment.project_id,
        feature_id,
        value=value,
        key=key,
        default_percentage_allocation=default_percentage_allocation,
    )


def update_option(
    unit: UnitOfWork,
    principal: AdminPrincipal,
    project_id: int,
    feature_id: int,
    option_id: int,
    changes: dict[str, Any],
) -> MultivariateOption:
    """Edit a variant. A new default allocation applies to environments made later."""
    session = unit.session
    feature = get_feature(session, principal, project_id, feature_id)
    option = access.option_for(session, feature, option_id)
    before = option_snapshot(option)
    if "value" in changes:
        option.value_type, option.value_text = encode_flag_value(changes["value"])
    if "key" in changes:
        option.key = changes["key"]
    if ALLOCATION_FIELD in changes:
        option.default_percentage_allocation = changes[ALLOCATION_FIELD]
        _check_option_defaults(feature)
    feature_store.save(session)
    change = _option_change(
        feature,
        option.id,
        change_path.UPDATED,
        f"Multivariate option updated for {feature.name!r}",
        before=before,
        after=option_snapshot(option),
    )
    change_path.apply(unit, principal, [change])
    return option


def delete_option(
    unit: UnitOfWork, principal: AdminPrincipal, project_id: int, feature_id: int, option_id: int
) -> None:
    session = unit.session
    feature = get_feature(session, principal, project_id, feature_id)
    option = access.option_for(session, feature, option_id)
    for state in feature_store.default_states_of_feature(session, feature.id):
        states.check_weights_frozen(
            session,
            feature,
            state.environment_id,
            field="option",
            before={mv.option_id: mv.percentage_allocation for mv in state.mv_values},
            after={
                mv.option_id: mv.percentage_allocation
                for mv in state.mv_values
                if mv.option_id != option_id
            },
        )
    before = option_snapshot(option)
    change = _option_change(
        feature,
        option_id,
        change_path.DELETED,
        f"Multivariate option deleted from {feature.name!r}",
        before=before,
    )
    feature_store.delete_option(session, feature, option)
    change_path.apply(unit, principal, [change])


def delete_option_in_environment(
    unit: UnitOfWork,
    principal: AdminPrincipal,
    environment_id: int,
    feature_id: int,
    option_id: int,
) -> None:
    """`delete_option` for a feature of the environment's project."""
    environment = access.environment_by_id(unit.session, principal, environment_id)
    delete_option(unit, principal, environment.project_id, feature_id, option_id)
