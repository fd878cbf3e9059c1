"""The analytics outbox: recording evaluations, and deleting them once delivered.

An evaluation's flags are stored once (`evaluations`); each integration that sends it has a
narrow queue row (`outbox_deliveries`) pointing at it, and the evaluation is deleted with the
last of its rows. The identify path records on its raw driver connection (`insert_outbox`);
ORM sessions run the same statements on theirs (`insert_records`). Claiming rows and writing
delivery results is `dispatch`'s.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session

from ensign.storage import dialect
from ensign.storage.base import sqlite_timestamp, utcnow
from ensign.storage.models import OutboxDelivery, RecordedEvaluation

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"
GIVEN_UP = "given_up"

# Ids per statement when deleting evaluations by id.
_CHUNK = 500

_INSERT_EVALUATION = (
    "INSERT INTO evaluations (environment_id, kind, event_key, identifier, flags, evaluated_at) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
_INSERT_DELIVERY = (
    "INSERT INTO outbox_deliveries (integration_id, evaluation_id, status, next_attempt_at, "
    "attempts, is_test, created_at) VALUES (?, ?, 'pending', ?, 0, ?, ?)"
)
# PostgreSQL: the evaluation and its queue rows in one statement, one round trip (the identify
# transaction's round trips are most of its time), answering the evaluation's id.
_POSTGRES_INSERT = (
    "WITH e AS ("
    + dialect.driver_sql(_INSERT_EVALUATION, postgres=True)
    + " RETURNING id), d AS (INSERT INTO outbox_deliveries (integration_id, evaluation_id, "
    "status, next_attempt_at, attempts, is_test, created_at) "
    "SELECT i, e.id, 'pending', %s, 0, %s, %s FROM e, unnest(%s::bigint[]) AS i) "
    "SELECT id FROM e"
)


@dataclass(frozen=True)
class OutboxRecord:
    """One evaluation to record for each of `integration_ids`; `flags` is JSON text
    {feature name: value sent} (by `integrations.values.property_value`)."""

    environment_id: int
    integration_ids: tuple[int, ...]
    event_key: str
    identifier: str
    flags: str
    evaluated_at: dt.datetime
    is_test: bool = False
    # `flags` (an identity's flag set), `exposure` (an experiment exposure: `flags` then
    # holds {"experiment": name, "variant": key, "experiment_id": id, "feature": name}) or
    # `event` (an SDK's custom event: `flags` then holds {"event": name, "properties": {…}}).
    kind: str = "flags"


def insert_outbox(
    cursor: Any,
    records: Sequence[OutboxRecord],
    *,
    postgres: bool,
    now: dt.datetime | None = None,
    due_at: dt.datetime | None = None,
) -> list[int]:
    """Record evaluations on a raw driver cursor: each evaluation's flags once, and a narrow
    queue row for each integration sending it, due at `due_at` (at once by default). Answers
    the evaluations' ids."""
    if not records:
        return []
    # One call's records share their evaluation time: format each moment once.
    created = _stamp(now or utcnow(), postgres)
    due = created if due_at is None else _stamp(due_at, postgres)
    stamps: dict[Any, Any] = {}
    evaluation_ids = []
    rows = []
    for r in records:
        evaluated_at = stamps.get(r.evaluated_at)
        if evaluated_at is None:
            evaluated_at = stamps[r.evaluated_at] = _stamp(r.evaluated_at, postgres)
        evaluation = (r.environment_id, r.kind, r.event_key, r.identifier, r.flags, evaluated_at)
        if postgres:
            cursor.execute(
                _POSTGRES_INSERT, (*evaluation, due, r.is_test, created, list(r.integration_ids))
            )
            evaluation_ids.append(cursor.fetchone()[0])
            continue
        cursor.execute(_INSERT_EVALUATION, evaluation)
        evaluation_id = cursor.lastrowid
        evaluation_ids.append(evaluation_id)
        for integration_id in r.integration_ids:
            rows.append((integration_id, evaluation_id, due, r.is_test, created))
    if rows:
        cursor.executemany(_INSERT_DELIVERY, rows)
    return evaluation_ids


def _stamp(moment: dt.datetime, postgres: bool) -> Any:
    return moment if postgres else sqlite_timestamp(moment)


def insert_records(
    session: Session,
    records: Sequence[OutboxRecord],
    now: dt.datetime,
    *,
    due_at: dt.datetime | None = None,
) -> list[int]:
    """`insert_outbox` inside an ORM session's transaction; answers the queue rows' ids."""
    with dialect.driver_cursor(session) as cursor:
        evaluation_ids = insert_outbox(
            cursor, records, postgres=dialect.is_postgres(session), now=now, due_at=due_at
        )
    if not evaluation_ids:
        return []
    ids = session.scalars(
        select(OutboxDelivery.id)
        .where(OutboxDelivery.evaluation_id.in_(evaluation_ids))
        .order_by(OutboxDelivery.id)
    )
    return [int(i) for i in ids]


def _lock_statement(session: Session, ids: Sequence[int]) -> Any:
    return (
        select(RecordedEvaluation.id)
        .where(dialect.ids_in(session, RecordedEvaluation.id, ids))
        .order_by(RecordedEvaluation.id)
    )


def lock_evaluations(session: Session, evaluation_ids: Sequence[int]) -> None:
    """On PostgreSQL, lock evaluations (in id order) before deleting queue rows pointing at
    them, so that `delete_unreferenced` in two transactions runs one after the other."""
    unique = sorted(set(evaluation_ids))
    for start in range(0, len(unique), _CHUNK):
        dialect.lock(session, _lock_statement(session, unique[start : start + _CHUNK]))


def delete_unreferenced(
    session: Session, evaluation_ids: Sequence[int], *, locked: bool = False
) -> int:
    """Delete those of `evaluation_ids` that no queue row points at any more.

    On PostgreSQL the evaluations are locked first (in id order, so two dispatchers never
    deadlock): two integrations delivering the same evaluation at once then check one after
    the other, and the second sees the first's deletion, so the evaluation is never left behind.
    """
    unique = sorted(set(evaluation_ids))
    count = 0
    for start in range(0, len(unique), _CHUNK):
        chunk = unique[start : start + _CHUNK]
        if not locked:
            dialect.lock(session, _lock_statement(session, chunk))
        referenced = exists().where(OutboxDelivery.evaluation_id == RecordedEvaluation.id)
        result = session.execute(
            delete(RecordedEvaluation)
            .where(dialect.ids_in(session, RecordedEvaluation.id, chunk), ~referenced)
            .execution_options(synchronize_session=False)
        )
        count += dialect.rowcount(result)
    return count


_SQLITE_DELETE_UNREFERENCED = (
    "DELETE FROM evaluations WHERE id IN ({ids}) AND NOT EXISTS "
    "(SELECT 1 FROM outbox_deliveries WHERE outbox_deliveries.evaluation_id = evaluations.id)"
)


def delete_unreferenced_on(cursor: Any, evaluation_ids: Sequence[int]) -> int:
    """`delete_unreferenced` on a raw SQLite cursor (whose writer holds the whole file, so
    nothing needs locking)."""
    count = 0
    for chunk in dialect.chunks(sorted(set(evaluation_ids)), _CHUNK):
        cursor.execute(_SQLITE_DELETE_UNREFERENCED.format(ids=", ".join("?" * len(chunk))), chunk)
        count += max(cursor.rowcount, 0)
    return count


def unreferenced_evaluations(session: Session, limit: int) -> list[int]:
    """Up to `limit` evaluations no queue row points at (none are expected: a safety net)."""
    referenced = exists().where(OutboxDelivery.evaluation_id == RecordedEvaluation.id)
    return list(session.scalars(select(RecordedEvaluation.id).where(~referenced).limit(limit)))
