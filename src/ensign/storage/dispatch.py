"""Delivering the outbox: claiming due rows for a dispatcher, and recording each attempt's
result on the rows it claimed, by id, with the integration's counters.

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

from sqlalchemy import and_, case, delete, insert, select, update
from sqlalchemy.orm import Session

from ensign.storage import dialect, outbox
from ensign.storage.models import (
    DeliveryAttempt,
    IntegrationConfig,
    OutboxDelivery,
    RecordedEvaluation,
)
from ensign.storage.outbox import DELIVERED, FAILED, GIVEN_UP, PENDING


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
    kind: str = "flags"


@dataclass(frozen=True)
class AttemptRecord:
    outcome: str
    status_code: int | None
    evaluations: int
    duration_ms: float
    response: str | None
    error: str | None


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
    RecordedEvaluation.kind,
)


def _claimed(row: Any) -> ClaimedRow:
    values: tuple[Any, ...] = tuple(row)
    return ClaimedRow(*values)


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
    due = dialect.for_update(
        select(OutboxDelivery.id)
        .where(_due(integration_id, now))
        .order_by(OutboxDelivery.next_attempt_at, OutboxDelivery.id)
        .limit(limit),
        skip_locked=True,
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
    claimed = [_claimed(r) for r in rows]
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
    claimed = [_claimed(r) for r in rows]
    claimed.sort(key=lambda r: r.id)
    return claimed


def release_claim(session: Session, claim: Claim, now: dt.datetime) -> None:
    """Hand a claim's rows back, due at once, unsent (PostgreSQL; SQLite's claims are held
    in memory)."""
    session.execute(
        update(OutboxDelivery)
        .where(_held(session, claim))
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
    count = real_rows(result)
    if count:
        add_counts(session, integration_id, given_up=count)
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


def real_rows(result: Any) -> int:
    """How many of the rows a statement returned (by their `is_test`) are real deliveries:
    test events never count in an integration's delivery counters."""
    return sum(1 for is_test in result.scalars() if not is_test)


def add_counts(
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


def _held(session: Session, claim: Claim, ids: Sequence[int] | None = None) -> Any:
    """The claim's rows (or `ids` of them) that are still pending and still its own."""
    chosen = claim.ids if ids is None else ids
    condition = and_(
        dialect.ids_in(session, OutboxDelivery.id, chosen), OutboxDelivery.status == PENDING
    )
    if claim.token is not None:
        condition = and_(condition, OutboxDelivery.claim_token == claim.token)
    return condition


def mark_delivered(
    session: Session, integration_id: int, claim: Claim, attempt_id: int, now: dt.datetime
) -> int:
    """Delivered rows are deleted (test events are kept, for their sender to read), and so
    is every evaluation no integration still has to send; answers how many real deliveries
    were delivered."""
    if not dialect.is_postgres(session):
        count = _delivered_on_sqlite(session, claim, attempt_id)
        add_counts(session, integration_id, delivered=count, success_at=now)
        return count
    outbox.lock_evaluations(session, claim.evaluation_ids)
    deleted = session.execute(
        delete(OutboxDelivery)
        .where(_held(session, claim), OutboxDelivery.is_test.is_(False))
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(OutboxDelivery)
        .where(_held(session, claim))
        .values(
            status=DELIVERED,
            claim_token=None,
            attempts=OutboxDelivery.attempts + 1,
            last_attempt_id=attempt_id,
        )
        .execution_options(synchronize_session=False)
    )
    count = dialect.rowcount(deleted)
    outbox.delete_unreferenced(session, claim.evaluation_ids, locked=True)
    add_counts(session, integration_id, delivered=count, success_at=now)
    return count


_SQLITE_DELETE_DELIVERED = (
    "DELETE FROM outbox_deliveries WHERE id IN ({ids}) AND status = 'pending' AND is_test = 0"
)
_SQLITE_KEEP_TESTS = (
    "UPDATE outbox_deliveries SET status = 'delivered', claim_token = NULL, "
    "attempts = attempts + 1, last_attempt_id = ? WHERE id IN ({ids}) AND status = 'pending'"
)


def _delivered_on_sqlite(session: Session, claim: Claim, attempt_id: int) -> int:
    """`mark_delivered` on SQLite, in a few plain statements on the driver: this transaction
    holds the only write lock, and every identify call of `ensign serve` waits for it, so it
    must be short. Built by SQLAlchemy, its IN lists of a thousand ids took a few
    milliseconds of Python per batch, holding the lock and the GIL."""
    count = 0
    with dialect.driver_cursor(session) as cursor:
        for chunk in dialect.chunks(list(claim.ids)):
            ids = ", ".join("?" * len(chunk))
            cursor.execute(_SQLITE_DELETE_DELIVERED.format(ids=ids), chunk)
            deleted = max(cursor.rowcount, 0)
            count += deleted
            if deleted < len(chunk):
                # Test events stay (for their sender to read), marked delivered.
                cursor.execute(_SQLITE_KEEP_TESTS.format(ids=ids), (attempt_id, *chunk))
        outbox.delete_unreferenced_on(cursor, claim.evaluation_ids)
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
        .where(_held(session, claim, ids))
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
    count = real_rows(result)
    add_counts(session, integration_id, failed=count, error_at=now, error=message)
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
        .where(_held(session, claim), expired)
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
        .where(_held(session, claim))
        .values(
            claim_token=None,
            next_attempt_at=next_attempt_at,
            attempts=OutboxDelivery.attempts + 1,
            last_attempt_id=attempt_id,
            last_error=message,
        )
        .execution_options(synchronize_session=False)
    )
    gave_up = real_rows(given_up)
    add_counts(session, integration_id, given_up=gave_up, error_at=now, error=message)
    return dialect.rowcount(retrying), gave_up
