"""Every query Ensign makes. Callers own the session and its transaction."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from ensign.storage.models import (
    Environment,
    Feature,
    FeatureState,
    FlagEvaluationCount,
    HashingSeed,
    Identity,
    IntegrationConfig,
    Organisation,
    Project,
    Segment,
    ServerKey,
    utcnow,
)


def hash_identifier(identifier: str) -> str:
    return hashlib.sha256(identifier.encode("utf-8", "surrogatepass")).hexdigest()


# --- environments ---------------------------------------------------------------------------


def find_environment_id_by_key(session: Session, key: str) -> int | None:
    """The environment a client key or a live server key belongs to."""
    if key.startswith("ser."):
        row = session.execute(
            select(ServerKey.environment_id, ServerKey.active, ServerKey.expires_at).where(
                ServerKey.key == key
            )
        ).first()
        if row is None or not row.active:
            return None
        if row.expires_at is not None and row.expires_at <= utcnow():
            return None
        return int(row.environment_id)
    env_id = session.scalar(select(Environment.id).where(Environment.api_key == key))
    return None if env_id is None else int(env_id)


def environment_revisions(session: Session, ids: Iterable[int]) -> dict[int, int]:
    ids = list(ids)
    if not ids:
        return {}
    rows = session.execute(
        select(Environment.id, Environment.revision).where(Environment.id.in_(ids))
    )
    return {int(r.id): int(r.revision) for r in rows}


def sync_id_sequence(session: Session, table: str) -> None:
    """After rows were inserted with explicit ids, move PostgreSQL's id sequence past them
    (SQLite picks max(id) + 1 by itself)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT GREATEST(MAX(id), 1) FROM {table}))"
            )
        )


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


def load_environment_rows(session: Session, environment_id: int) -> EnvironmentRows | None:
    environment = session.get(Environment, environment_id)
    if environment is None:
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
    identifiers: dict[int, str] = {}
    if identity_ids:
        rows = session.execute(
            select(Identity.id, Identity.identifier).where(Identity.id.in_(identity_ids))
        )
        identifiers = {int(r.id): r.identifier for r in rows}
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
        identifiers,
        integrations,
    )


# --- identities and traits -----------------------------------------------------------------


@dataclass(frozen=True)
class StoredTrait:
    id: int
    key: str
    value_type: str
    value_text: str


@dataclass(frozen=True)
class StoredIdentity:
    id: int
    identifier: str
    traits: list[StoredTrait]


def _upsert_insert(session: Session, table: Any) -> Any:
    """An INSERT that can take ON CONFLICT clauses, on SQLite and PostgreSQL alike."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql_insert(table)
    return sqlite_insert(table)


def get_or_create_identity(
    session: Session, environment_id: int, identifier: str
) -> tuple[int, bool]:
    """The identity's id, and whether this call created it. Safe when two requests race."""
    identifier_hash = hash_identifier(identifier)
    result = session.execute(
        _upsert_insert(session, Identity)
        .values(
            environment_id=environment_id,
            identifier=identifier,
            identifier_hash=identifier_hash,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["environment_id", "identifier_hash"])
        .returning(Identity.id)
    ).first()
    if result is not None:
        return int(result[0]), True
    existing = session.scalar(
        select(Identity.id).where(
            Identity.environment_id == environment_id, Identity.identifier_hash == identifier_hash
        )
    )
    assert existing is not None
    return int(existing), False


# --- feature states -------------------------------------------------------------------------


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


# --- SDK analytics --------------------------------------------------------------------------


def add_evaluation_counts(
    session: Session, environment_id: int, counts: dict[int, int], day: dt.date
) -> None:
    """Add counts per feature id for `day`, atomically, so concurrent reports all count."""
    if not counts:
        return
    statement = _upsert_insert(session, FlagEvaluationCount)
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
