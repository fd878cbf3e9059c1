"""Features and their multivariate options."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from ensign.errors import Conflict, InvalidInput
from ensign.services import changes as change_path
from ensign.services.admin import access, states
from ensign.services.changes import Change
from ensign.services.keys import AdminPrincipal
from ensign.services.values import FlagValue, decode_flag_value
from ensign.storage import environments as environment_store
from ensign.storage import features as feature_store
from ensign.storage.audit import row_snapshot
from ensign.storage.models import Feature, MultivariateOption, Tag
from ensign.storage.pagination import Page, Window
from ensign.storage.unit_of_work import UnitOfWork

FEATURE_FIELDS = ("description", "initial_value", "default_enabled", "is_server_key_only")


def feature_snapshot(feature: Feature) -> dict[str, Any]:
    snapshot = row_snapshot(feature)
    snapshot["tags"] = [t.id for t in feature.tags]
    snapshot["multivariate_options"] = [option_snapshot(o) for o in feature.options]
    return snapshot


def option_snapshot(option: MultivariateOption) -> dict[str, Any]:
    snapshot = row_snapshot(option)
    snapshot["value"] = decode_flag_value(option.value_type, option.value_text)
    return snapshot


def _tags(session: Session, project_id: int, tag_ids: Sequence[int]) -> list[Tag]:
    wanted = set(tag_ids)
    found = list(
        feature_store.tags_by_id(
            session, project_id, sorted(i for i in wanted if access.is_valid_id(i))
        )
    )
    if len(found) != len(wanted):
        raise InvalidInput("tags: no such tag in this project.", field="tags")
    return found


def _check_name(session: Session, project_id: int, name: str, *, feature_id: int | None) -> None:
    existing = feature_store.feature_id_by_name(session, project_id, name)
    if existing is not None and existing != feature_id:
        raise Conflict(
            "name: a feature with this name already exists in this project.", field="name"
        )


def list_features(
    session: Session,
    principal: AdminPrincipal,
    project_id: int,
    window: Window,
    *,
    search: str | None = None,
    tag_ids: Sequence[int] = (),
) -> Page[Feature]:
    project = access.project_for(session, principal, project_id)
    if any(not access.is_valid_id(t) for t in tag_ids):
        return Page([], 0)
    return feature_store.features(session, project.id, window, search=search, tag_ids=tag_ids)


def get_feature(
    session: Session, principal: AdminPrincipal, project_id: int, feature_id: int
) -> Feature:
    return access.feature_for(
        session, access.project_for(session, principal, project_id), feature_id
    )


def get_environment_feature(
    session: Session, principal: AdminPrincipal, environment_id: int, feature_id: int
) -> Feature:
    """A feature of the project of an environment given by id (as the dashboard names it)."""
    environment = access.environment_by_id(session, principal, environment_id)
    return get_feature(session, principal, environment.project_id, feature_id)


def create_feature(
    unit: UnitOfWork,
    principal: AdminPrincipal,
    project_id: int,
    *,
    name: str,
    description: str | None = None,
    initial_value: str | None = None,
    default_enabled: bool = False,
    is_server_key_only: bool = False,
    tag_ids: Sequence[int] = (),
) -> Feature:
    """Create a feature, and its default state in every environment of the project."""
    session = unit.session
    project = access.project_for(session, principal, project_id)
    _check_name(session, project.id, name, feature_id=None)
    feature = Feature(
        project_id=project.id,
        name=name,
        description=description,
        initial_value=initial_value,
        default_enabled=default_enabled,
        is_server_key_only=is_server_key_only,
    )
    feature.tags = _tags(session, project.id, tag_ids)
    feature_store.add_feature(session, feature)
    for environment_id in environment_store.environment_ids(session, project.id):
        states.add_default_state(session, environment_id, feature)
    change_path.apply(
        unit,
        principal,
        [
            Change(
                resource_type="feature",
                resource_id=feature.id,
                action=change_path.CREATED,
                log=f"Feature created: {name}",
                project_id=project.id,
                project_wide=True,
                after=feature_snapshot(feature),
            )
        ],
    )
    return feature


def create_feature_with_value(
    unit: UnitOfWork,
    principal: AdminPrincipal,
    environment_id: int,
    *,
    name: str,
    value: FlagValue,
    initial_value: str | None,
    description: str | None = None,
    default_enabled: bool = False,
    tag_ids: Sequence[int] = (),
) -> Feature:
    """Create a feature from an environment's page: new environments start from
    `initial_value` (text), and this environment's default state serves `value` exactly as
    typed (a number stays a number)."""
    environment = access.environment_by_id(unit.session, principal, environment_id)
    feature = create_feature(
        unit,
        principal,
        environment.project_id,
        name=name,
        description=description,
        initial_value=initial_value,
        default_enabled=default_enabled,
        tag_ids=tag_ids,
    )
    state = feature_store.feature_state_in_scope(unit.session, environment.id, feature.id, "")
    if state is not None:
        states.apply_state_changes(
            unit.session, state, states.StateChanges(value=value, set_value=True)
        )
    return feature


def update_feature(
    unit: UnitOfWork,
    principal: AdminPrincipal,
    project_id: int,
    feature_id: int,
    changes: dict[str, Any],
) -> Feature:
    """Edit a feature. Its defaults apply to environments made later, as in the reference."""
    session = unit.session
    feature = get_feature(session, principal, project_id, feature_id)
    before = feature_snapshot(feature)
    if "name" in changes:
        _check_name(session, feature.project_id, changes["name"], feature_id=feature.id)
        feature.name = changes["name"]
    for name in FEATURE_FIELDS:
        if name in changes:
            setattr(feature, name, changes[name])
    if "tags" in changes:
        feature.tags = _tags(session, feature.project_id, changes["tags"])
    feature_store.save_feature(session)
    change_path.apply(
        unit,
        principal,
        [
            Change(
                resource_type="feature",
                resource_id=feature.id,
                action=change_path.UPDATED,
                log=f"Feature updated: {feature.name}",
                project_id=feature.project_id,
                project_wide=True,
                before=before,
                after=feature_snapshot(feature),
            )
        ],
    )
    return feature


def update_feature_in_environment(
    unit: UnitOfWork,
    principal: AdminPrincipal,
    environment_id: int,
    feature_id: int,
    changes: dict[str, Any],
) -> Feature:
    """`update_feature` for a feature of the environment's project."""
    environment = access.environment_by_id(unit.session, principal, environment_id)
    return update_feature(unit, principal, environment.project_id, feature_id, changes)


def delete_feature(
    unit: UnitOfWork, principal: AdminPrincipal, project_id: int, feature_id: int
) -> None:
    feature = get_feature(unit.session, principal, project_id, feature_id)
    before = feature_snapshot(feature)
    feature_store.delete_feature(unit.session, feature)
    change_path.apply(
        unit,
        principal,
        [
            Change(
                resource_type="feature",
                resource_id=feature_id,
                action=change_path.DELETED,
                log=f"Feature deleted: {before['name']}",
                project_id=project_id,
                project_wide=True,
                before=before,
            )
        ],
    )


def delete_feature_in_environment(
    unit: UnitOfWork, principal: AdminPrincipal, environment_id: int, feature_id: int
) -> None:
    """`delete_feature` for a feature of the environment's project."""
    environment = access.environment_by_id(unit.session, principal, environment_id)
    delete_feature(unit, principal, environment.project_id, feature_id)
