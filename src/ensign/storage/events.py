"""The events endpoint's tables: dedupe keys, counters, the log of exposures not recorded.

A batch is recorded on the session's raw driver cursor (one multi-row statement per table),
because a full SDK batch is a thousand rows and the ORM's per-row work would cost more than
the database's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, fields

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from ensign.storage import dialect
from ensign.storage.base import sqlite_timestamp
from ensign.storage.models import EventCounters, ReceivedEvent, UnmatchedExposure
from ensign.storage.outbox import OutboxRecord

# The unmatched-exposure log keeps this many entries per environment, newest first.
UNMATCHED_KEPT = 100


@dataclass(frozen=True)
class Counts:
    """Counter increments for one environment (and, read back, its totals)."""

    received: int = 0
    exposures: int = 0
    custom: int = 0
    duplicates: int = 0
    rejected: int = 0
    skipped: int = 0
    # Exposures not recorded: their total, then by reason.
    unmatched: int = 0
    time_adjusted: int = 0
    not_in_experiment: int = 0
    wrong_variant: int = 0
    unknown_variant: int = 0
    no_running_experiment: int = 0


COUNTER_NAMES = tuple(f.name for f in fields(Counts))


@dataclass(frozen=True)
class Unmatched:
    feature_name: str
    identifier: str | None
    variant: str | None
    experiment_id: int | None
    occurred_at: dt.datetime
    # Why it was not recorded (a `Counts` field name), and what Ensign served the identity.
    reason: str | None = None
    served_variant: str | None = None


def _stamp(moment: dt.datetime, postgres: bool) -> object:
    return moment if postgres else sqlite_timestamp(moment)


def claim_keys(
    session: Session, environment_id: int, keys: Sequence[str], now: dt.datetime
) -> set[str]:
    """Store the events' dedupe keys; answers those that were new. A key already there (an
    SDK re-sending a batch, or a concurrent request carrying the same events) is left alone:
    the unique constraint decides, so two requests racing store each event once."""
    if not keys:
        return set()
    postgres = dialect.is_postgres(session)
    received = _stamp(now, postgres)
    new: set[str] = set()
    with dialect.driver_cursor(session) as cursor:
        for chunk in dialect.chunks(keys, 1000):
            rows = ",".join("(?, ?, ?)" for _ in chunk)
            statement = dialect.driver_sql(
                f"INSERT INTO received_events (environment_id, event_key, received_at) "
                f"VALUES {rows} ON CONFLICT (environment_id, event_key) DO NOTHING "
                f"RETURNING event_key",
                postgres=postgres,
            )
            params: list[object] = []
            for key in chunk:
                params += (environment_id, key, received)
            cursor.execute(statement, params)
            new.update(row[0] for row in cursor.fetchall())
    return new


def record_outbox(session: Session, records: Sequence[OutboxRecord], now: dt.datetime) -> None:
    """The events to deliver, in the session's transaction: the same rows as the identify
    path's `insert_outbox`, but each table in one multi-row statement, the new evaluations'
    ids read back by their keys (distinct within a batch), since a batch is a thousand rows."""
    if not records:
        return
    postgres = dialect.is_postgres(session)
    created = _stamp(now, postgres)
    with dialect.driver_cursor(session) as cursor:
        for chunk in dialect.chunks(records, 500):
            rows = ",".join("(?, ?, ?, ?, ?, ?)" for _ in chunk)
            params: list[object] = []
            for r in chunk:
                params += (
                    r.environment_id,
                    r.kind,
                    r.event_key,
                    r.identifier,
                    r.flags,
                    _stamp(r.evaluated_at, postgres),
                )
            cursor.execute(
                dialect.driver_sql(
                    "INSERT INTO evaluations (environment_id, kind, event_key, identifier, flags, "
                    f"evaluated_at) VALUES {rows} RETURNING id, event_key",
                    postgres=postgres,
                ),
                params,
            )
            ids = {key: evaluation_id for evaluation_id, key in cursor.fetchall()}
            deliveries = [
                (integration_id, ids[r.event_key], created, False, created)
                for r in chunk
                for integration_id in r.integration_ids
            ]
            cursor.executemany(
                dialect.driver_sql(
                    "INSERT INTO outbox_deliveries (integration_id, evaluation_id, status, "
                    "next_attempt_at, attempts, is_test, created_at) "
                    "VALUES (?, ?, 'pending', ?, 0, ?, ?)",
                    postgres=postgres,
                ),
                deliveries,
            )


def log_unmatched(
    session: Session, environment_id: int, entries: Sequence[Unmatched], now: dt.datetime
) -> None:
    """Add to the environment's unmatched-exposure log and drop all but its newest entries."""
    if not entries:
        return
    session.execute(
        insert(UnmatchedExposure),
        [
            {
                "environment_id": environment_id,
                "feature_name": e.feature_name,
                "identifier": e.identifier,
                "variant": e.variant,
                "experiment_id": e.experiment_id,
                "occurred_at": e.occurred_at,
                "reason": e.reason,
                "served_variant": e.served_variant,
                "received_at": now,
            }
            for e in entries[-UNMATCHED_KEPT:]
        ],
    )
    oldest_kept = (
        select(UnmatchedExposure.id)
        .where(UnmatchedExposure.environment_id == environment_id)
        .order_by(UnmatchedExposure.id.desc())
        .offset(UNMATCHED_KEPT - 1)
        .limit(1)
        .scalar_subquery()
    )
    session.execute(
        delete(UnmatchedExposure)
        .where(
            UnmatchedExposure.environment_id == environment_id, UnmatchedExposure.id < oldest_kept
        )
        .execution_options(synchronize_session=False)
    )


def add_counts(
    session: Session, environment_id: int, counts: Counts, now: dt.datetime | None = None
) -> None:
    """Add to the environment's counters (creating them at the first event)."""
    values = {name: getattr(counts, name) for name in COUNTER_NAMES}
    table = EventCounters.__table__
    statement = dialect.upsert(session, table).values(
        environment_id=environment_id, last_received_at=now, **values
    )
    updates = {name: table.c[name] + statement.excluded[name] for name in COUNTER_NAMES}
    if now is not None:
        updates["last_received_at"] = statement.excluded.last_received_at
    session.execute(
        statement.on_conflict_do_update(index_elements=["environment_id"], set_=updates)
    )


def counts_of(session: Session, environment_ids: Sequence[int]) -> dict[int, Counts]:
    """Each environment's totals (environments that never received an event are absent)."""
    if not environment_ids:
        return {}
    rows = session.scalars(
        select(EventCounters).where(EventCounters.environment_id.in_(list(environment_ids)))
    )
    return {
        row.environment_id: Counts(**{name: int(getattr(row, name)) for name in COUNTER_NAMES})
        for row in rows
    }


def all_counts(session: Session) -> list[tuple[int, Counts]]:
    """Every environment's totals by its id, for the metrics (never by its key: `/metrics` may
    be read by anyone who can reach it, and a client key is a credential)."""
    rows = session.scalars(select(EventCounters).order_by(EventCounters.environment_id))
    return [
        (row.environment_id, Counts(**{n: int(getattr(row, n)) for n in COUNTER_NAMES}))
        for row in rows
    ]


def last_received_at(session: Session, environment_id: int) -> dt.datetime | None:
    return session.scalar(
        select(EventCounters.last_received_at).where(EventCounters.environment_id == environment_id)
    )


def unmatched_log(session: Session, environment_id: int, limit: int) -> list[UnmatchedExposure]:
    return list(
        session.scalars(
            select(UnmatchedExposure)
            .where(UnmatchedExposure.environment_id == environment_id)
            .order_by(UnmatchedExposure.id.desc())
            .limit(limit)
        )
    )


def forget_keys(session: Session, before: dt.datetime, limit: int = 10_000) -> int:
    """Delete up to `limit` dedupe keys received before `before`; answers how many."""
    ids = select(ReceivedEvent.id).where(ReceivedEvent.received_at < before).limit(limit)
    result = session.execute(
        delete(ReceivedEvent)
        .where(ReceivedEvent.id.in_(ids.scalar_subquery()))
        .execution_options(synchronize_session=False)
    )
    return dialect.rowcount(result)
