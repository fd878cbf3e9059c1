"""Features with their multivariate options and tags, segments, and each feature's states per
environment with the hashing seeds that outlive them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ensign.storage import dialect
from ensign.storage.faults import flush
from ensign.storage.models import (
    Feature,
    FeatureState,
    FeatureTag,
    HashingSeed,
    MultivariateOption,
    Project,
    Segment,
    Tag,
)
from ensign.storage.pagination import Page, Window, page

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
        statement = statement.where(dialect.contains(Feature.name, search))
    for tag_id in tag_ids:
        statement = statement.where(
            Feature.id.in_(select(FeatureTag.feature_id).where(FeatureTag.tag_id == tag_id))
        )
    return page(session, statement.order_by(Feature.id), window)


def all_features(session: Session, project_id: int) -> Sequence[Feature]:
    return session.scalars(
        select(Feature).where(Feature.project_id == project_id).order_by(Feature.id)
    ).all()


def feature_by_id(session: Session, feature_id: int) -> Feature | None:
    return session.get(Feature, feature_id)


def option_by_id(session: Session, option_id: int) -> MultivariateOption | None:
    return session.get(MultivariateOption, option_id)


def tag_by_id(session: Session, tag_id: int) -> Tag | None:
    return session.get(Tag, tag_id)


def feature_state_by_id(session: Session, state_id: int) -> FeatureState | None:
    return session.get(FeatureState, state_id)


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
    return page(session, statement, window)


def tags(session: Session, project_id: int, window: Window) -> Page[Tag]:
    statement = select(Tag).where(Tag.project_id == project_id).order_by(Tag.id)
    return page(session, statement, window)


def tags_by_id(session: Session, project_id: int, ids: Sequence[int]) -> Sequence[Tag]:
    if not ids:
        return []
    return session.scalars(
        select(Tag).where(Tag.project_id == project_id, Tag.id.in_(ids)).order_by(Tag.id)
    ).all()


def add_feature(session: Session, feature: Feature) -> Feature:
    """Add a feature; a second of the same name in its project is a `Conflict` on `name`."""
    session.add(feature)
    save_feature(session)
    return feature


def save_feature(session: Session) -> None:
    """Write a feature's edits; a name taken in its project is a `Conflict` on `name`."""
    flush(session, conflict="name: a feature with this name already exists.", field="name")


def delete_feature(session: Session, feature: Feature) -> None:
    """Delete a feature with its options, states and tag links (the foreign keys cascade)."""
    session.delete(feature)
    session.flush()


def delete_option(session: Session, feature: Feature, option: MultivariateOption) -> None:
    """Delete a variant with its weights in every state, and forget what was loaded of them."""
    feature.options.remove(option)
    session.flush()
    session.expire_all()


def add_tag(session: Session, tag: Tag) -> Tag:
    session.add(tag)
    save_tag(session)
    return tag


def save_tag(session: Session) -> None:
    """Write a tag's edits; a label taken in its project is a `Conflict` on `label`."""
    flush(session, conflict="label: a tag with this label already exists.", field="label")


def delete_tag(session: Session, tag: Tag) -> None:
    """Delete a tag; features lose it, and what was loaded of them is forgotten."""
    session.delete(tag)
    session.flush()
    session.expire_all()


def tag_id_by_label(session: Session, project_id: int, label: str) -> int | None:
    found = session.scalar(select(Tag.id).where(Tag.project_id == project_id, Tag.label == label))
    return None if found is None else int(found)


# --- feature states and hashing seeds -------------------------------------------------------


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
    return page(session, statement.order_by(*order, FeatureState.id), window)


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


def hashing_seed_for(
    session: Session, environment_id: int, feature_id: int, scope: str
) -> int | None:
    seed = session.scalar(
        select(HashingSeed.seed).where(
            HashingSeed.environment_id == environment_id,
            HashingSeed.feature_id == feature_id,
            HashingSeed.scope == scope,
        )
    )
    return None if seed is None else int(seed)


def remember_hashing_seed(
    session: Session, environment_id: int, feature_id: int, scope: str, seed: int
) -> None:
    if hashing_seed_for(session, environment_id, feature_id, scope) is None:
        session.add(
            HashingSeed(
                environment_id=environment_id, feature_id=feature_id, scope=scope, seed=seed
            )
        )


# --- segments -------------------------------------------------------------------------------


def segments(session: Session, project_id: int, window: Window) -> Page[Segment]:
    statement = select(Segment).where(Segment.project_id == project_id).order_by(Segment.id)
    return page(session, statement, window)


def segment_by_id(session: Session, segment_id: int) -> Segment | None:
    return session.get(Segment, segment_id)


def managed_segment(session: Session, project_id: int, managed_by: str) -> Segment | None:
    return session.scalar(
        select(Segment)
        .where(Segment.project_id == project_id, Segment.managed_by == managed_by)
        .order_by(Segment.id)
        .limit(1)
    )


def lock_project(session: Session, project_id: int) -> None:
    """Serialise segment creation in a project (a no-op on SQLite, whose writers are serial)."""
    dialect.lock(session, select(Project.id).where(Project.id == project_id))


def add_segment(session: Session, project_id: int, name: str, rules: list[Any], by: str) -> Segment:
    segment = Segment(project_id=project_id, name=name, rules=rules, managed_by=by)
    session.add(segment)
    session.flush()
    return segment


def add_feature_state(session: Session, state: FeatureState) -> FeatureState:
    """Add a state; a second state in the same scope is a `Conflict` on `feature`."""
    session.add(state)
    flush(session, conflict="This feature already has a state here.", field="feature")
    return state


def feature_of_state(session: Session, state: FeatureState) -> Feature:
    feature = session.get(Feature, state.feature_id)
    if feature is None:  # the foreign key makes this unreachable
        raise LookupError(f"feature {state.feature_id} of state {state.id} is gone")
    return feature


def delete_feature_state(session: Session, state: FeatureState) -> None:
    session.delete(state)
    session.flush()


def save(session: Session) -> None:
    """Write what the unit changed on loaded rows so far (ids, defaults, cascades)."""
    session.flush()
