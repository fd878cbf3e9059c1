"""The admin API's queries: listings with their filters and counts, and look-ups by name.

Callers own the session and its transaction, as everywhere in `storage`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, func, inspect, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ensign.errors import Conflict
from ensign.storage.models import (
    AdminApiKey,
    AuditLog,
    Environment,
    Feature,
    FeatureState,
    FeatureTag,
    Identity,
    MultivariateOption,
    Project,
    Segment,
    ServerKey,
    Tag,
    Trait,
)

T = TypeVar("T")


@dataclass(frozen=True)
class Window:
    """Which slice of a listing to read."""

    offset: int
    limit: int


@dataclass(frozen=True)
class Page(Generic[T]):
    items: Sequence[T]
    count: int


def _page(session: Session, statement: Select[T], window: Window) -> Page[T]:
    count = session.scalar(select(func.count()).select_from(statement.order_by(None).subquery()))
    items = session.scalars(statement.offset(window.offset).limit(window.limit)).all()
    return Page(items, int(count or 0))


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _contains(column: Any, text: str) -> Any:
    text = text.replace("\x00", "")  # PostgreSQL text cannot hold NUL; nothing contains it
    return func.lower(column).like(f"%{_escape_like(text.lower())}%", escape="\\")


def flush(session: Session, *, conflict: str, field: str | None = None) -> None:
    """Flush, turning a broken uniqueness rule into `Conflict`."""
    try:
        session.flush()
    except IntegrityError as error:
        raise Conflict(conflict, field=field) from error


def row_snapshot(row: Any) -> dict[str, Any]:
    """A row's columns as JSON-ready values, for the audit log's before and after."""
    values: dict[str, Any] = {}
    for attribute in inspect(row).mapper.column_attrs:
        value = getattr(row, attribute.key)
        if isinstance(value, dt.datetime | dt.date):
            value = value.isoformat()
        values[attribute.key] = value
    return values


# --- organisations and projects -------------------------------------------------------------


def master_keys(session: Session, organisation_id: int, window: Window) -> Page[AdminApiKey]:
    statement = (
        select(AdminApiKey)
        .where(AdminApiKey.organisation_id == organisation_id)
        .order_by(AdminApiKey.id)
    )
    return _page(session, statement, window)


def projects(session: Session, organisation_id: int, window: Window) -> Page[Project]:
    statement = (
        select(Project).where(Project.organisation_id == organisation_id).order_by(Project.id)
    )
    return _page(session, statement, window)


def project_ids(session: Session, organisation_id: int) -> list[int]:
    rows = session.scalars(select(Project.id).where(Project.organisation_id == organisation_id))
    return [int(r) for r in rows]


# --- environments -----------------------------------------------------------------------------


def environment_by_key(session: Session, api_key: str) -> Environment | None:
    return session.scalar(select(Environment).where(Environment.api_key == api_key))


def environments(session: Session, project_ids: Sequence[int], window: Window) -> Page[Environment]:
    statement = (
        select(Environment).where(Environment.project_id.in_(project_ids)).order_by(Environment.id)
    )
    return _page(session, statement, window)


def environment_ids(session: Session, project_id: int) -> list[int]:
    rows = session.scalars(
        select(Environment.id).where(Environment.project_id == project_id).order_by(Environment.id)
    )
    return [int(r) for r in rows]


def server_keys(session: Session, environment_id: int, window: Window) -> Page[ServerKey]:
    statement = (
        select(ServerKey).where(ServerKey.environment_id == environment_id).order_by(ServerKey.id)
    )
    return _page(session, statement, window)


# --- features, options and tags -------------------------------------------------------------


def features(
    session: Session,
    project_id: int,
    window: Window,
    *,
    search: str | None = None,
    tag_ids: Sequence[int] = (),
) -> Page[Feature]:
    statement = select(Feature).where(Feature.project_id == project_id)
    if search:
        statement = statement.where(_contains(Feature.name, search))
    for tag_id in tag_ids:
        statement = statement.where(
            Feature.id.in_(select(FeatureTag.feature_id).where(FeatureTag.tag_id == tag_id))
        )
    return _page(session, statement.order_by(Feature.id), window)


def all_features(session: Session, project_id: int) -> Sequence[Feature]:
    return session.scalars(
        select(Feature).where(Feature.project_id == project_id).order_by(Feature.id)
    ).all()


def feature_id_by_name(session: Session, project_id: int, name: str) -> int | None:
    found = session.scalar(
        select(Feature.id).where(Feature.project_id == project_id, Feature.name == name)
    )
    return None if found is None else int(found)


def options(session: Session, feature_id: int, window: Window) -> Page[MultivariateOption]:
    statement = (
        select(MultivariateOption)
        .where(MultivariateOption.feature_id == feature_id)
        .order_by(MultivariateOption.id)
    )
    return _page(session, statement, window)


def tags(session: Session, project_id: int, window: Window) -> Page[Tag]:
    statement = select(Tag).where(Tag.project_id == project_id).order_by(Tag.id)
    return _page(session, statement, window)


def tags_by_id(session: Session, project_id: int, ids: Sequence[int]) -> Sequence[Tag]:
    if not ids:
        return []
    return session.scalars(
        select(Tag).where(Tag.project_id == project_id, Tag.id.in_(ids)).order_by(Tag.id)
    ).all()


def tag_id_by_label(session: Session, project_id: int, label: str) -> int | None:
    found = session.scalar(select(Tag.id).where(Tag.project_id == project_id, Tag.label == label))
    return None if found is None else int(found)


# --- feature states -------------------------------------------------------------------------


def default_states_of_feature(session: Session, feature_id: int) -> Sequence[FeatureState]:
    return session.scalars(
        select(FeatureState)
        .where(FeatureState.feature_id == feature_id, FeatureState.scope == "")
        .order_by(FeatureState.id)
    ).all()


def feature_state_in_scope(
    session: Session, environment_id: int, feature_id: int, scope: str
) -> FeatureState | None:
    return session.scalar(
        select(FeatureState).where(
            FeatureState.environment_id == environment_id,
            FeatureState.feature_id == feature_id,
            FeatureState.scope == scope,
        )
    )


def feature_states(
    session: Session,
    window: Window,
    *,
    environment_ids: Sequence[int],
    feature_id: int | None = None,
    kind: str = "default",
    identity_id: int | None = None,
    segment_id: int | None = None,
) -> Page[FeatureState]:
    """Feature states of some environments; `kind` is "default", "segment", "identity" or "any"."""
    statement = select(FeatureState).where(FeatureState.environment_id.in_(environment_ids))
    if feature_id is not None:
        statement = statement.where(FeatureState.feature_id == feature_id)
    if kind == "default":
        statement = statement.where(FeatureState.scope == "")
    elif kind == "segment":
        statement = statement.where(FeatureState.segment_id.is_not(None))
    elif kind == "identity":
        statement = statement.where(FeatureState.identity_id.is_not(None))
    if identity_id is not None:
        statement = statement.where(FeatureState.identity_id == identity_id)
    if segment_id is not None:
        statement = statement.where(FeatureState.segment_id == segment_id)
    order = (
        (FeatureState.environment_id, FeatureState.feature_id, FeatureState.priority)
        if kind == "segment"
        else ()
    )
    return _page(session, statement.order_by(*order, FeatureState.id), window)


def segment_overrides_of(
    session: Session, environment_id: int, feature_id: int
) -> Sequence[FeatureState]:
    return session.scalars(
        select(FeatureState)
        .where(
            FeatureState.environment_id == environment_id,
            FeatureState.feature_id == feature_id,
            FeatureState.segment_id.is_not(None),
        )
        .order_by(FeatureState.priority, FeatureState.id)
    ).all()


def lowest_priority(session: Session, environment_id: int, feature_id: int) -> int | None:
    found = session.scalar(
        select(func.max(FeatureState.priority)).where(
            FeatureState.environment_id == environment_id,
            FeatureState.feature_id == feature_id,
            FeatureState.segment_id.is_not(None),
        )
    )
    return None if found is None else int(found)


# --- segments -------------------------------------------------------------------------------


def segments(session: Session, project_id: int, window: Window) -> Page[Segment]:
    statement = select(Segment).where(Segment.project_id == project_id).order_by(Segment.id)
    return _page(session, statement, window)


# --- identities -----------------------------------------------------------------------------


def identities(
    session: Session, environment_id: int, window: Window, *, search: str | None = None
) -> Page[Identity]:
    statement = select(Identity).where(Identity.environment_id == environment_id)
    if search:
        statement = statement.where(_contains(Identity.identifier, search))
    return _page(session, statement.order_by(Identity.id), window)


def traits(session: Session, identity_id: int) -> Sequence[Trait]:
    return session.scalars(
        select(Trait).where(Trait.identity_id == identity_id).order_by(Trait.id)
    ).all()


def trait_by_key(session: Session, identity_id: int, key: str) -> Trait | None:
    return session.scalar(select(Trait).where(Trait.identity_id == identity_id, Trait.key == key))


# --- audit log ------------------------------------------------------------------------------


def audit_entries(
    session: Session,
    organisation_id: int,
    window: Window,
    *,
    project_id: int | None = None,
    environment_id: int | None = None,
    search: str | None = None,
) -> Page[AuditLog]:
    statement = select(AuditLog).where(AuditLog.organisation_id == organisation_id)
    if project_id is not None:
        statement = statement.where(AuditLog.project_id == project_id)
    if environment_id is not None:
        statement = statement.where(AuditLog.environment_id == environment_id)
    if search:
        statement = statement.where(
            or_(_contains(AuditLog.log, search), _contains(AuditLog.resource_type, search))
        )
    return _page(session, statement.order_by(AuditLog.id.desc()), window)


def master_key_by_hash(session: Session, key_hash: str) -> AdminApiKey | None:
    return session.scalar(select(AdminApiKey).where(AdminApiKey.key_hash == key_hash))
