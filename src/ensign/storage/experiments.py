"""Experiments and their exposures: the admin queries, the running experiments a snapshot is
built with, and the insert-if-absent that records an exposure on the identify path's cursor."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ensign.storage import dialect, experiment_metrics
from ensign.storage.base import sqlite_timestamp, utcnow
from ensign.storage.models import Experiment
from ensign.storage.outbox import OutboxRecord, insert_records
from ensign.storage.pagination import Page, Window, page

# The unique key decides: a row already there means the identity saw this variant before.
# The experiment may have been deleted since the snapshot naming it was built (a process serves
# its snapshot until it sees the new revision): then nothing is inserted, rather than the
# foreign key failing the whole identify call. On PostgreSQL the experiment row is locked as
# the foreign key check would lock it, so that a delete committing meanwhile is waited for and
# then seen as gone instead of failing the check; SQLite has one writer, so nothing races it.
_INSERT_EXPOSURE = (
    "INSERT INTO exposures (experiment_id, identifier, variant, exposed_at) "
    "SELECT experiments.id, ?, ?, ? FROM experiments WHERE experiments.id = ?{lock} "
    "ON CONFLICT (experiment_id, identifier, variant) DO NOTHING RETURNING id"
)
_SQLITE_INSERT_EXPOSURE = _INSERT_EXPOSURE.format(lock="")
_POSTGRES_INSERT_EXPOSURE = dialect.driver_sql(
    _INSERT_EXPOSURE.format(lock=" FOR KEY SHARE"), postgres=True
)


def experiments(session: Session, environment_id: int, window: Window) -> Page[Experiment]:
    statement = (
        select(Experiment)
        .where(Experiment.environment_id == environment_id)
        .order_by(Experiment.id)
    )
    return page(session, statement, window)


def experiment_by_id(session: Session, experiment_id: int) -> Experiment | None:
    return session.get(Experiment, experiment_id)


def running_experiment(session: Session, environment_id: int, feature_id: int) -> Experiment | None:
    """The experiment running on a feature in an environment, if any."""
    return session.scalar(
        select(Experiment).where(
            Experiment.environment_id == environment_id,
            Experiment.feature_id == feature_id,
            Experiment.running.is_(True),
        )
    )


def running_experiments(session: Session, environment_id: int) -> Sequence[Experiment]:
    """An environment's running experiments, read with its snapshot rows."""
    return session.scalars(
        select(Experiment)
        .where(Experiment.environment_id == environment_id, Experiment.running.is_(True))
        .order_by(Experiment.id)
    ).all()


def stop_for_segment(session: Session, segment_id: int, at: dt.datetime) -> list[int]:
    """Stop the running experiments limited to a segment; answers their environments' ids."""
    rows = session.scalars(
        select(Experiment).where(Experiment.segment_id == segment_id, Experiment.running.is_(True))
    ).all()
    for row in rows:
        row.running, row.stopped_at = False, at
    session.flush()
    return sorted({row.environment_id for row in rows})


def save_experiment(session: Session, experiment: Experiment) -> bool:
    """Flush an added or changed experiment; False when another one already runs on its feature
    (the partial unique index decides, so two concurrent starts cannot both succeed)."""
    try:
        with session.begin_nested():
            session.add(experiment)
            session.flush()
    except IntegrityError:
        return False
    return True


def delete_experiment(session: Session, experiment: Experiment) -> None:
    session.delete(experiment)
    session.flush()


def insert_exposure(
    cursor: Any,
    experiment_id: int,
    identifier: str,
    variant: str,
    at: dt.datetime,
    *,
    postgres: bool,
) -> bool:
    """Record that `identifier` was served `variant` on a raw driver cursor, in the caller's
    transaction; True only when this is the first time (one statement, no read before it).
    False, and nothing recorded, when the experiment no longer exists."""
    if postgres:
        cursor.execute(_POSTGRES_INSERT_EXPOSURE, (identifier, variant, at, experiment_id))
    else:
        stamp = sqlite_timestamp(at)
        cursor.execute(_SQLITE_INSERT_EXPOSURE, (identifier, variant, stamp, experiment_id))
    if cursor.fetchone() is None:
        return False
    experiment_metrics.note_exposure(
        cursor, experiment_id, identifier, variant, at, postgres=postgres
    )
    return True


class SessionExposures:
    """`insert_exposure` and `outbox.insert_records` inside an ORM session's transaction: the
    writer that `services.exposures.record_exposure` takes off the identify path (the events
    API)."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def insert_exposure(
        self, experiment_id: int, identifier: str, variant: str, at: dt.datetime
    ) -> bool:
        session = self._session
        with dialect.driver_cursor(session) as cursor:
            return insert_exposure(
                cursor,
                experiment_id,
                identifier,
                variant,
                at,
                postgres=dialect.is_postgres(session),
            )

    def insert_outbox(self, records: Sequence[OutboxRecord]) -> None:
        insert_records(self._session, records, utcnow())
