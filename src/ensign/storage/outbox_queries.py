"""The analytics outbox: recording evaluations, claiming them for delivery, recording results.

An evaluation's flags are stored once (`evaluations`); each integration that sends it has a
narrow queue row (`outbox_deliveries`) pointing at it, and the evaluation is deleted with the
last of its rows. Results are written to the rows a dispatcher claimed, by id.

On PostgreSQL a dispatcher claims due rows by giving them its claim token and pushing
`next_attempt_at` forward by a lease, skipping rows another dispatcher has locked, so any
number of dispatchers share the work without sending a row twice at the same time; results are
written only to rows still carrying the token. On SQLite (one dispatcher process) rows are read
with a plain SELECT and claimed in that process's memory (`read_due`), which costs no write.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, delete, exists, func, insert, select, update
from sqlalchemy.orm import Session

from ensign.storage.models import (
    DeliveryAttempt,
    IntegrationConfig,
    OutboxDelivery,
    RecordedEvaluation,
)

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"
GIVEN_UP = "given_up"

# Ids per statement when deleting evaluations by id.
_CHUNK = 500


@dataclass(frozen=True)
class OutboxRecord:
    """One evaluation to record for each of `integration_ids`; `flags` is JSON text
    {feature name: value sent} (see `services.outbox.sent_values`)."""

    environment_id: int
    integration_ids: tuple[int, ...]
    event_key: str
    identifier: str
    flags: str
    evaluated_at: dt.datetime
    is_test: bool = False


@dataclass(frozen=True)
class DispatchTarget:
    id: int
    kind: str
    api_key: str
    base_url: str
    options: dict[str, Any]


@dataclass(frozen=True)
class ClaimedRow:
    id: int
    evaluation_id: int
    event_key: str
    identifier: str
    flags: str
    evaluated_at: dt.datetime
    is_test: bool = False


@dataclass(frozen=True)
class AttemptRecord:
    outcome: str
    status_code: int | None
    evaluations: int
    duration_ms: float
    response: str | None
    error: str | None


def insert_records(
    session: Session,
    records: Sequence[OutboxRecord],
    now: dt.datetime,
    *,
    due_at: dt.datetime | None = None,
) -> list[int]:
    """Record evaluations, due at `due_at` (now by default); answers the queue rows' ids. The
    identify path records through `IdentityStore.insert_outbox` instead."""
    ids = []
    for record in records:
        evaluation_id = session.execute(
            insert(RecordedEvaluation)
            .values(
                environment_id=record.environment_id,
                event_key=record.event_key,
                identifier=record.identifier,
                flags=record.flags,
                evaluated_at=record.evaluated_at,
            )
            .returning(RecordedEvaluation.id)
        ).scalar_one()
        for integration_id in record.integration_ids:
            row_id = session.execute(
                insert(OutboxDelivery)
                .values(
                    integration_id=integration_id,
                    evaluation_id=evaluation_id,
                    status=PENDING,
                    next_attempt_at=due_at or now,
                    attempts=0,
                    is_test=record.is_test,
                    created_at=now,
                )
                .returning(OutboxDelivery.id)
            ).scalar_one()
            ids.append(int(row_id))
    return ids


def configs_of_environment(session: Session, environment_id: int) -> list[IntegrationConfig]:
    return list(
        session.scalars(
            select(IntegrationConfig)
            .where(IntegrationConfig.environment_id == environment_id)
            .order_by(IntegrationConfig.id)
        ).all()
    )


def config_by_id(session: Session, integration_id: int) -> IntegrationConfig | None:
    if not 1 <= integration_id <= 2**31 - 1:
        return None
    return session.get(IntegrationConfig, integration_id)


def add_config(session: Session, config: IntegrationConfig) -> None:
    session.add(config)
    session.flush()


def delete_config(session: Session, config: IntegrationConfig) -> None:
    # Deleted explicitly, not left to ON DELETE CASCADE: SQLite only cascades with foreign
    # keys switched on, which a connection made elsewhere may not do.
    evaluation_ids = list(
        session.scalars(
            select(OutboxDelivery.evaluation_id).where(OutboxDelivery.integration_id == config.id)
        )
    )
    session.execute(delete(OutboxDelivery).where(OutboxDelivery.integration_id == config.id))
    delete_unreferenced(session, evaluation_ids)
    session.execute(delete(DeliveryAttempt).where(DeliveryAttempt.integration_id == config.id))
    session.delete(config)
    session.flush()


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
    lock = not locked and session.get_bind().dialect.name == "postgresql"
    for start in range(0, len(unique), _CHUNK):
        chunk = unique[start : start + _CHUNK]
        if lock:
            session.execute(
                select(RecordedEvaluation.id)
                .where(RecordedEvaluation.id.in_(chunk))
                .order_by(RecordedEvaluation.id)
                .with_for_update()
            ).all()
        referenced = exists().where(OutboxDelivery.evaluation_id == RecordedEvaluation.id)
        result = session.execute(
            delete(RecordedEvaluation)
            .where(RecordedEvaluation.id.in_(chunk), ~referenced)
            .execution_options(synchronize_session=False)
        )
        count += _rowcount(result)
    return count


def lock_evaluations(session: Session, evaluation_ids: Sequence[int]) -> None:
    """On PostgreSQL, lock evaluations (in id order) before deleting queue rows pointing at
    them, so that `delete_unreferenced` in two transactions runs one after the other."""
    if session.get_bind().dialect.name != "postgresql":
        return
    unique = sorted(set(evaluation_ids))
    for start in range(0, len(unique), _CHUNK):
        session.execute(
            select(RecordedEvaluation.id)
            .where(RecordedEvaluation.id.in_(unique[start : start + _CHUNK]))
            .order_by(RecordedEvaluation.id)
            .with_for_update()
        ).all()


def unreferenced_evaluations(session: Session, limit: int) -> list[int]:
    """Up to `limit` evaluations no queue row points at (none are expected: a safety net)."""
    referenced = exists().where(OutboxDelivery.evaluation_id == RecordedEvaluation.id)
    return list(session.scalars(select(RecordedEvaluation.id).where(~referenced).limit(limit)))


def dispatch_targets(session: Session) -> list[DispatchTarget]:
    """Every configured integration. Disabled ones record nothing new, but what they recorded
    while enabled is still delivered."""
    rows = session.execute(
        select(
            IntegrationConfig.id,
            IntegrationConfig.kind,
            IntegrationConfig.api_key,
            IntegrationConfig.base_url,
            IntegrationConfig.options,
        ).order_by(IntegrationConfig.id)
    )
    return [
        DispatchTarget(r.id, r.kind, r.api_key, r.base_url, dict(r.options or {})) for r in rows
    ]


_CLAIMED_COLUMNS = (
    OutboxDelivery.id,
    OutboxDelivery.evaluation_id,
    RecordedEvaluation.event_key,
    RecordedEvaluation.identifier,
    RecordedEvaluation.flags,
    RecordedEvaluation.evaluated_at,
    OutboxDelivery.is_test,
)


def _due(integration_id: int, now: dt.datetime) -> Any:
    return and_(
        OutboxDelivery.integration_id == integration_id,
        OutboxDelivery.status == PENDING,
        OutboxDelivery.next_attempt_at <= now,
    )


def claim_due(
    session: Session,
    integration_id: int,
    *,
    now: dt.datetime,
    lease_until: dt.datetime,
    limit: int,
    token: str,
) -> list[ClaimedRow]:
    """Take up to `limit` due rows of one integration, oldest first, for this dispatcher
    (PostgreSQL: rows locked by another dispatcher are skipped)."""
    due = (
        select(OutboxDelivery.id)
        .where(_due(integration_id, now))
        .order_by(OutboxDelivery.next_attempt_at, OutboxDelivery.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows = session.execute(
        update(OutboxDelivery)
        .where(
            OutboxDelivery.id.in_(due.scalar_subquery()),
            OutboxDelivery.evaluation_id == RecordedEvaluation.id,
        )
        .values(claim_token=token, next_attempt_at=lease_until)
        .returning(*_CLAIMED_COLUMNS)
        .execution_options(synchronize_session=False)
    ).all()
    claimed = [ClaimedRow(*r) for r in rows]
    claimed.sort(key=lambda r: r.id)
    return claimed


def read_due(
    session: Session,
    integration_id: int,
    *,
    now: dt.datetime,
    limit: int,
    exclude: Collection[int] = (),
) -> list[ClaimedRow]:
    """Up to `limit` due rows of one integration, oldest first, except `exclude`, read without
    writing anything: the caller (SQLite's single dispatcher process) keeps the claim itself."""
    statement = (
        select(*_CLAIMED_COLUMNS)
        .join(RecordedEvaluation, RecordedEvaluation.id == OutboxDelivery.evaluation_id)
        .where(_due(integration_id, now))
        .order_by(OutboxDelivery.next_attempt_at, OutboxDelivery.id)
        .limit(limit)
    )
    if exclude:
        statement = statement.where(OutboxDelivery.id.not_in(list(exclude)))
    rows = session.execute(statement).all()
    claimed = [ClaimedRow(*r) for r in rows]
    claimed.sort(key=lambda r: r.id)
    return claimed


def release_claim(session: Session, claim: Claim, now: dt.datetime) -> None:
    """Hand a claim's rows back, due at once, unsent (PostgreSQL; SQLite's claims are held
    in memory)."""
    session.execute(
        update(OutboxDelivery)
        .where(_held(claim))
        .values(claim_token=None, next_attempt_at=now)
        .execution_options(synchronize_session=False)
    )


def give_up_expired(session: Session, integration_id: int, cutoff: dt.datetime) -> int:
    """Mark pending rows recorded before `cutoff` as given up; answers how many."""
    result = session.execute(
        update(OutboxDelivery)
        .where(
            OutboxDelivery.integration_id == integration_id,
            OutboxDelivery.status == PENDING,
            OutboxDelivery.created_at < cutoff,
        )
        .values(status=GIVEN_UP, claim_token=None, last_error="gave up: too old to deliver")
        .returning(OutboxDelivery.is_test)
        .execution_options(synchronize_session=False)
    )
    count = _real(result)
    if count:
        _add_counts(session, integration_id, given_up=count)
    return count


def add_attempt(
    session: Session, integration_id: int, attempt: AttemptRecord, now: dt.datetime
) -> int:
    result = session.execute(
        insert(DeliveryAttempt)
        .values(
            integration_id=integration_id,
            created_at=now,
            outcome=attempt.outcome,
            status_code=attempt.status_code,
            evaluations=attempt.evaluations,
            duration_ms=attempt.duration_ms,
            response=attempt.response,
            error=attempt.error,
        )
        .returning(DeliveryAttempt.id)
    )
    return int(result.scalar_one())


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def _real(result: Any) -> int:
    """How many of the rows a statement returned (by their `is_test`) are real deliveries:
    test events never count in an integration's delivery counters."""
    return sum(1 for is_test in result.scalars() if not is_test)


def _add_counts(
    session: Session,
    integration_id: int,
    *,
    delivered: int = 0,
    failed: int = 0,
    given_up: int = 0,
    success_at: dt.datetime | None = None,
    error_at: dt.datetime | None = None,
    error: str | None = None,
) -> None:
    values: dict[str, Any] = {
        "delivered_count": IntegrationConfig.delivered_count + delivered,
        "failed_count": IntegrationConfig.failed_count + failed,
        "given_up_count": IntegrationConfig.given_up_count + given_up,
    }
    if success_at is not None:
        values["last_success_at"] = success_at
    if error_at is not None:
        values["last_error_at"] = error_at
        values["last_error"] = error
    session.execute(
        update(IntegrationConfig).where(IntegrationConfig.id == integration_id).values(**values)
    )


@dataclass(frozen=True)
class Claim:
    """The rows a dispatcher holds: their ids, their evaluations' ids, and on PostgreSQL the
    claim token they carry (None on SQLite, where the claim is kept in memory)."""

    ids: Sequence[int]
    evaluation_ids: Sequence[int]
    token: str | None


def _held(claim: Claim, ids: Sequence[int] | None = None) -> Any:
    """The claim's rows (or `ids` of them) that are still pending and still its own."""
    chosen = list(claim.ids if ids is None else ids)
    condition = and_(OutboxDelivery.id.in_(chosen), OutboxDelivery.status == PENDING)
    if claim.token is not None:
        condition = and_(condition, OutboxDelivery.claim_token == claim.token)
    return condition


def mark_delivered(
    session: Session, integration_id: int, claim: Claim, attempt_id: int, now: dt.datetime
) -> int:
    """Delivered rows are deleted (test events are kept, for their sender to read), and so
    is every evaluation no integration still has to send; answers how many real deliveries
    were delivered."""
    lock_evaluations(session, claim.evaluation_ids)
    deleted = session.execute(
        delete(OutboxDelivery)
        .where(_held(claim), OutboxDelivery.is_test.is_(False))
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(OutboxDelivery)
        .where(_held(claim))
        .values(
            status=DELIVERED,
            claim_token=None,
            attempts=OutboxDelivery.attempts + 1,
            last_attempt_id=attempt_id,
        )
        .execution_options(synchronize_session=False)
    )
    count = _rowcount(deleted)
    delete_unreferenced(session, claim.evaluation_ids, locked=True)
    _add_counts(session, integration_id, delivered=count, success_at=now)
    return count


def mark_failed(
    session: Session,
    integration_id: int,
    claim: Claim,
    *,
    attempt_id: int | None,
    message: str,
    now: dt.datetime,
    ids: Sequence[int] | None = None,
) -> int:
    """A permanent failure: the rows (all the claim's, or `ids` of it) are not retried;
    answers how many real deliveries failed."""
    result = session.execute(
        update(OutboxDelivery)
        .where(_held(claim, ids))
        .values(
            status=FAILED,
            claim_token=None,
            attempts=OutboxDelivery.attempts + (0 if attempt_id is None else 1),
            last_attempt_id=attempt_id,
            last_error=message,
        )
        .returning(OutboxDelivery.is_test)
        .execution_options(synchronize_session=False)
    )
    count = _real(result)
    _add_counts(session, integration_id, failed=count, error_at=now, error=message)
    return count


def mark_retry(
    session: Session,
    integration_id: int,
    claim: Claim,
    *,
    attempt_id: int,
    message: str,
    now: dt.datetime,
    next_attempt_at: dt.datetime,
    cutoff: dt.datetime,
) -> tuple[int, int]:
    """Retry the claim's rows at `next_attempt_at`, except those recorded before `cutoff`,
    which are given up (test events fail at once). Answers (retrying, real ones given up)."""
    expired = (OutboxDelivery.created_at < cutoff) | (OutboxDelivery.is_test.is_(True))
    given_up = session.execute(
        update(OutboxDelivery)
        .where(_held(claim), expired)
        .values(
            status=case((OutboxDelivery.is_test.is_(True), FAILED), else_=GIVEN_UP),
            claim_token=None,
            attempts=OutboxDelivery.attempts + 1,
            last_attempt_id=attempt_id,
            last_error=message,
        )
        .returning(OutboxDelivery.is_test)
        .execution_options(synchronize_session=False)
    )
    retrying = session.execute(
        update(OutboxDelivery)
        .where(_held(claim))
        .values(
            claim_token=None,
            next_attempt_at=next_attempt_at,
            attempts=OutboxDelivery.attempts + 1,
            last_attempt_id=attempt_id,
            last_error=message,
        )
        .execution_options(synchronize_session=False)
    )
    gave_up = _real(given_up)
    _add_counts(session, integration_id, given_up=gave_up, error_at=now, error=message)
    return _rowcount(retrying), gave_up


# --- what the admin API and metrics show --------------------------------------------------------


@dataclass(frozen=True)
class QueueCounts:
    pending: int
    retrying: int


def queue_counts(session: Session, integration_id: int) -> QueueCounts:
    """Pending evaluations never tried, and those waiting to be retried."""
    row = session.execute(
        select(
            func.count().filter(OutboxDelivery.attempts == 0),
            func.count().filter(OutboxDelivery.attempts > 0),
        ).where(
            OutboxDelivery.integration_id == integration_id,
            OutboxDelivery.status == PENDING,
            OutboxDelivery.is_test.is_(False),
        )
    ).one()
    return QueueCounts(int(row[0] or 0), int(row[1] or 0))


def queue_depth_by_kind(session: Session) -> dict[str, int]:
    rows = session.execute(
        select(IntegrationConfig.kind, func.count(OutboxDelivery.id))
        .join(
            OutboxDelivery,
            and_(
                OutboxDelivery.integration_id == IntegrationConfig.id,
                OutboxDelivery.status == PENDING,
            ),
        )
        .group_by(IntegrationConfig.kind)
    )
    return {r[0]: int(r[1]) for r in rows}


def attempts_page(
    session: Session, integration_id: int, *, offset: int, limit: int
) -> tuple[list[DeliveryAttempt], int]:
    """The integration's attempts, newest first."""
    count = session.scalar(
        select(func.count())
        .select_from(DeliveryAttempt)
        .where(DeliveryAttempt.integration_id == integration_id)
    )
    items = session.scalars(
        select(DeliveryAttempt)
        .where(DeliveryAttempt.integration_id == integration_id)
        .order_by(DeliveryAttempt.id.desc())
        .offset(offset)
        .limit(limit)
    ).all()
    return list(items), int(count or 0)


def test_event_state(
    session: Session, row_id: int
) -> tuple[OutboxDelivery | None, DeliveryAttempt | None]:
    """A test event's row and its last attempt, if it was tried."""
    row = session.get(OutboxDelivery, row_id)
    if row is None or row.last_attempt_id is None:
        return row, None
    return row, session.get(DeliveryAttempt, row.last_attempt_id)


def delete_test_event(session: Session, row_id: int) -> None:
    evaluation_ids = list(
        session.scalars(
            delete(OutboxDelivery)
            .where(OutboxDelivery.id == row_id, OutboxDelivery.is_test.is_(True))
            .returning(OutboxDelivery.evaluation_id)
        )
    )
    delete_unreferenced(session, evaluation_ids)
