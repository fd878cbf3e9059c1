"""Organisations, projects and environments, and the rows an environment's flags are served
from (`load_environment_rows`, read whole into a snapshot), with the revision that tells every
process when to read them again. The evaluation counts SDKs report are kept per environment."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from ensign.storage import dialect
from ensign.storage.base import utcnow
from ensign.storage.experiments import running_experiments
from ensign.storage.faults import flush
from ensign.storage.identities import identifiers_of
from ensign.storage.models import (
    Environment,
    Experiment,
    Feature,
    FeatureState,
    FlagEvaluationCount,
    IntegrationConfig,
    Organisation,
    Project,
    Segment,
    ServerKey,
)
from ensign.storage.pagination import Page, Window, page

# --- organisations and projects -------------------------------------------------------------


def first_organisation(session: Session) -> Organisation | None:
    return session.scalar(select(Organisation).order_by(Organisation.id).limit(1))


def has_projects(session: Session) -> bool:
    return bool(session.scalar(select(func.count()).select_from(Project)))


def projects(session: Session, organisation_id: int, window: Window) -> Page[Project]:
    statement = (
        select(Project).where(Project.organisation_id == organisation_id).order_by(Project.id)
    )
    return page(session, statement, window)


def project_ids(session: Session, organisation_id: int) -> list[int]:
    rows = session.scalars(select(Project.id).where(Project.organisation_id == organisation_id))
    return [int(r) for r in rows]


def organisation_by_id(session: Session, organisation_id: int) -> Organisation | None:
    return session.get(Organisation, organisation_id)


def project_by_id(session: Session, project_id: int) -> Project | None:
    return session.get(Project, project_id)


def add_organisation(session: Session, organisation: Organisation) -> Organisation:
    session.add(organisation)
    session.flush()
    return organisation


def add_project(session: Session, project: Project) -> Project:
    session.add(project)
    session.flush()
    return project


def delete_project(session: Session, project: Project) -> None:
    """Delete a project with everything in it (the database cascades)."""
    session.delete(project)
    session.flush()


def save(session: Session) -> None:
    """Write what the unit changed on loaded rows so far."""
    session.flush()


# --- environments -----------------------------------------------------------------------------


def find_environment_id_by_key(session: Session, key: str) -> int | None:
    """The environment a client key or a live server key belongs to (none while importing)."""
    if key.startswith("ser."):
        row = session.execute(
            select(ServerKey.environment_id, ServerKey.active, ServerKey.expires_at)
            .join(Environment, Environment.id == ServerKey.environment_id)
            .where(ServerKey.key == key, Environment.importing.is_(False))
        ).first()
        if row is None or not row.active:
            return None
        if row.expires_at is not None and row.expires_at <= utcnow():
            return None
        return int(row.environment_id)
    env_id = session.scalar(
        select(Environment.id).where(Environment.api_key == key, Environment.importing.is_(False))
    )
    return None if env_id is None else int(env_id)


def environment_by_key(session: Session, api_key: str) -> Environment | None:
    return session.scalar(select(Environment).where(Environment.api_key == api_key))


def environment_by_id(session: Session, environment_id: int) -> Environment | None:
    return session.get(Environment, environment_id)


def add_environment(session: Session, environment: Environment) -> Environment:
    """Add an environment; a clash of its random key is a `Conflict` to retry."""
    session.add(environment)
    flush(session, conflict="Could not allocate an environment key; try again.")
    return environment


def delete_environment(session: Session, environment: Environment) -> None:
    session.delete(environment)
    session.flush()


def first_environment(session: Session) -> Environment | None:
    return session.scalar(select(Environment).order_by(Environment.id).limit(1))


def environments(session: Session, project_ids: Sequence[int], window: Window) -> Page[Environment]:
    statement = (
        select(Environment).where(Environment.project_id.in_(project_ids)).order_by(Environment.id)
    )
    return page(session, statement, window)


def environment_ids(session: Session, project_id: int) -> list[int]:
    rows = session.scalars(
        select(Environment.id).where(Environment.project_id == project_id).order_by(Environment.id)
    )
    return [int(r) for r in rows]


def environment_revisions(session: Session, ids: Iterable[int]) -> dict[int, int]:
    ids = list(ids)
    if not ids:
        return {}
    rows = session.execute(
        select(Environment.id, Environment.revision).where(Environment.id.in_(ids))
    )
    return {int(r.id): int(r.revision) for r in rows}


def touch_environments(
    session: Session, *, environment_ids: Iterable[int] = (), project_id: int | None = None
) -> None:
    """Mark environments changed so that every process rebuilds their flags."""
    now = utcnow()
    statement = update(Environment).values(revision=Environment.revision + 1, updated_at=now)
    if project_id is not None:
        session.execute(statement.where(Environment.project_id == project_id))
    ids = list(environment_ids)
    if ids:
        session.execute(statement.where(Environment.id.in_(ids)))


# --- the rows a snapshot is built from --------------------------------------------------------


@dataclass(frozen=True)
class EnvironmentRows:
    """Everything needed to serve one environment's flags, read in one go."""

    environment: Environment
    project: Project
    organisation: Organisation
    server_keys: Sequence[ServerKey]
    features: Sequence[Feature]
    feature_states: Sequence[FeatureState]
    segments: Sequence[Segment]
    identifiers: dict[int, str]
    integrations: Sequence[IntegrationConfig] = ()
    # The running experiments (at most one per feature).
    experiments: Sequence[Experiment] = ()


def load_environment_rows(session: Session, environment_id: int) -> EnvironmentRows | None:
    environment = session.get(Environment, environment_id)
    if environment is None or environment.importing:
        return None
    project = session.get(Project, environment.project_id)
    assert project is not None
    organisation = session.get(Organisation, project.organisation_id)
    assert organisation is not None
    server_keys = session.scalars(
        select(ServerKey).where(ServerKey.environment_id == environment_id)
    ).all()
    features = session.scalars(
        select(Feature).where(Feature.project_id == project.id).order_by(Feature.id)
    ).all()
    feature_states = session.scalars(
        select(FeatureState)
        .where(FeatureState.environment_id == environment_id)
        .order_by(FeatureState.id)
    ).all()
    segments = session.scalars(
        select(Segment).where(Segment.project_id == project.id).order_by(Segment.id)
    ).all()
    identity_ids = {fs.identity_id for fs in feature_states if fs.identity_id is not None}
    integrations = session.scalars(
        select(IntegrationConfig)
        .where(IntegrationConfig.environment_id == environment_id)
        .order_by(IntegrationConfig.id)
    ).all()
    return EnvironmentRows(
        environment,
        project,
        organisation,
        server_keys,
        features,
        feature_states,
        segments,
        identifiers_of(session, sorted(identity_ids)),
        integrations,
        running_experiments(session, environment_id),
    )


# --- evaluation counts reported by SDKs ---------------------------------------------------------


def add_evaluation_counts(
    session: Session, environment_id: int, counts: dict[int, int], day: dt.date
) -> None:
    """Add counts per feature id for `day`, atomically, so concurrent reports all count."""
    if not counts:
        return
    statement = dialect.upsert(session, FlagEvaluationCount)
    statement = statement.on_conflict_do_update(
        index_elements=["environment_id", "feature_id", "day"],
        set_={"count": FlagEvaluationCount.count + statement.excluded.count},
    )
    session.execute(
        statement,
        [
            {"environment_id": environment_id, "feature_id": f, "day": day, "count": c}
            for f, c in sorted(counts.items())
        ],
    )


def evaluation_counts(
    session: Session, environment_id: int, since: dt.date
) -> list[tuple[str, dt.date, int]]:
    rows = session.execute(
        select(Feature.name, FlagEvaluationCount.day, func.sum(FlagEvaluationCount.count))
        .join(Feature, Feature.id == FlagEvaluationCount.feature_id)
        .where(
            FlagEvaluationCount.environment_id == environment_id,
            FlagEvaluationCount.day >= since,
        )
        .group_by(Feature.name, FlagEvaluationCount.day)
        .order_by(FlagEvaluationCount.day, Feature.name)
    )
    return [(r[0], r[1], int(r[2])) for r in rows]
