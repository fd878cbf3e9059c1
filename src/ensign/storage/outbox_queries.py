"""The analytics outbox: recording evaluations, claiming them for delivery, recording results.

A dispatcher claims due rows of one integration by giving them its claim token and pushing
`next_attempt_at` forward by a lease; every result is then written only to rows still
carrying that token. On PostgreSQL the claim skips rows another dispatcher has locked, so any
number of dispatchers share the work without sending a row twice at the same time; on SQLite
writes are serialised, which gives the same guarantee.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, delete, func, insert, select, update
from sqlalchemy.orm import Session

from ensign.storage.models import (
    DeliveryAttempt,
    IntegrationConfig,
    OutboxEvaluation,
)

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"
GIVEN_UP = "given_up"


@dataclass(frozen=True)
class OutboxRecord:
    """One evaluation to record for one integration; `flags` is JSON text."""

    integration_id: int
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
    event_key: str
    identifier: str
    flags: str
    evaluated_at: dt.datetime
    created_at: dt.datetime


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
    """Record evaluations, due at `due_at` (now by default). The identify path records through
    `IdentityStore.insert_outbox` instead."""
    ids = []
    for record in records:
        row = OutboxEvaluation(
            integration_id=record.integration_id,
            status=PENDING,
            event_key=record.event_key,
            identifier=record.identifier,
            flags=record.flags,
            evaluated_at=record.evaluated_at,
            next_attempt_at=due_at or now,
            attempts=0,
            is_test=record.is_test,
            created_at=now,
        )
        session.add(row)
        session.flush()
        ids.append(row.id)
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
    session.execute(delete(OutboxEvaluation).where(OutboxEvaluation.integration_id == config.id))
    session.execute(delete(DeliveryAttempt).where(DeliveryAttempt.integration_id == config.id))
    session.delete(config)
    session.flush()


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


def claim_due(
    session: Session,
    integration_id: int,
    *,
    now: dt.datetime,
    lease_until: dt.datetime,
    limit: int,
    token: str,
) -> list[ClaimedRow]:
    """Take up to `limit` due rows of one integration, oldest first, for this dispatcher."""
    due = (
        select(OutboxEvaluation.id)
        .where(
            OutboxEvaluation.integration_id == integration_id,
            OutboxEvaluation.status == PENDING,
            OutboxEvaluation.next_attempt_at <= now,
        )
        .order_by(OutboxEvaluation.next_attempt_at, OutboxEvaluation.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows = session.execute(
        update(OutboxEvaluation)
        .where(OutboxEvaluation.id.in_(due.scalar_subquery()))
        .values(claim_token=token, next_attempt_at=lease_until)
        .returning(
            OutboxEvaluation.id,
            OutboxEvaluation.event_key,
            OutboxEvaluation.identifier,
            OutboxEvaluation.flags,
            OutboxEvaluation.evaluated_at,
            OutboxEvaluation.created_at,
        )
        .execution_options(synchronize_session=False)
    ).all()
    claimed = [ClaimedRow(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows]
    claimed.sort(key=lambda r: r.id)
    return claimed


def give_up_expired(session: Session, integration_id: int, cutoff: dt.datetime) -> int:
    """Mark pending rows recorded before `cutoff` as given up; answers how many."""
    result = session.execute(
        update(OutboxEvaluation)
        .where(
            OutboxEvaluation.integration_id == integration_id,
            OutboxEvaluation.status == PENDING,
            OutboxEvaluation.created_at < cutoff,
        )
        .values(status=GIVEN_UP, claim_token=None, last_error="gave up: too old to deliver")
        .execution_options(synchronize_session=False)
    )
    count = int(getattr(result, "rowcount", 0) or 0)
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


def mark_delivered(
    session: Session, integration_id: int, token: str, attempt_id: int, now: dt.datetime
) -> int:
    """Delivered rows are deleted (test events are kept, for their sender to read)."""
    deleted = session.execute(
        delete(OutboxEvaluation)
        .where(OutboxEvaluation.claim_token == token, OutboxEvaluation.is_test.is_(False))
        .execution_options(synchronize_session=False)
    )
    kept = session.execute(
        update(OutboxEvaluation)
        .where(OutboxEvaluation.claim_token == token)
        .values(
            status=DELIVERED,
            claim_token=None,
            attempts=OutboxEvaluation.attempts + 1,
            last_attempt_id=attempt_id,
        )
        .execution_options(synchronize_session=False)
    )
    count = _rowcount(deleted) + _rowcount(kept)
    _add_counts(session, integration_id, delivered=count, success_at=now)
    return count


def mark_failed(
    session: Session,
    integration_id: int,
    token: str,
    *,
    attempt_id: int | None,
    message: str,
    now: dt.datetime,
    ids: Sequence[int] | None = None,
) -> int:
    """A permanent failure: the rows (all the claim's, or `ids` of it) are not retried."""
    statement = update(OutboxEvaluation).where(OutboxEvaluation.claim_token == token)
    if ids is not None:
        statement = statement.where(OutboxEvaluation.id.in_(ids))
    result = session.execute(
        statement.values(
            status=FAILED,
            claim_token=None,
            attempts=OutboxEvaluation.attempts + (0 if attempt_id is None else 1),
            last_attempt_id=attempt_id,
            last_error=message,
        ).execution_options(synchronize_session=False)
    )
    count = _rowcount(result)
    _add_counts(session, integration_id, failed=count, error_at=now, error=message)
    return count


def mark_retry(
    session: Session,
    integration_id: int,
    token: str,
    *,
    attempt_id: int,
    message: str,
    now: dt.datetime,
    next_attempt_at: dt.datetime,
    cutoff: dt.datetime,
) -> tuple[int, int]:
    """Retry the claim's rows at `next_attempt_at`, except those recorded before `cutoff`,
    which are given up. Answers (retrying, given up)."""
    expired = (OutboxEvaluation.created_at < cutoff) | (OutboxEvaluation.is_test.is_(True))
    given_up = session.execute(
        update(OutboxEvaluation)
        .where(OutboxEvaluation.claim_token == token, expired)
        .values(
            status=case((OutboxEvaluation.is_test.is_(True), FAILED), else_=GIVEN_UP),
            claim_token=None,
            attempts=OutboxEvaluation.attempts + 1,
            last_attempt_id=attempt_id,
            last_error=message,
        )
        .execution_options(synchronize_session=False)
    )
    retrying = session.execute(
        update(OutboxEvaluation)
        .where(OutboxEvaluation.claim_token == token)
        .values(
            claim_token=None,
            next_attempt_at=next_attempt_at,
            attempts=OutboxEvaluation.attempts + 1,
            last_attempt_id=attempt_id,
            last_error=message,
        )
        .execution_options(synchronize_session=False)
    )
    gave_up = _rowcount(given_up)
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
            func.count().filter(OutboxEvaluation.attempts == 0),
            func.count().filter(OutboxEvaluation.attempts > 0),
        ).where(
            OutboxEvaluation.integration_id == integration_id,
            OutboxEvaluation.status == PENDING,
            OutboxEvaluation.is_test.is_(False),
        )
    ).one()
    return QueueCounts(int(row[0] or 0), int(row[1] or 0))


def queue_depth_by_kind(session: Session) -> dict[str, int]:
    rows = session.execute(
        select(IntegrationConfig.kind, func.count(OutboxEvaluation.id))
        .join(
            OutboxEvaluation,
            and_(
                OutboxEvaluation.integration_id == IntegrationConfig.id,
                OutboxEvaluation.status == PENDING,
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
) -> tuple[OutboxEvaluation | None, DeliveryAttempt | None]:
    """A test event's row and its last attempt, if it was tried."""
    row = session.get(OutboxEvaluation, row_id)
    if row is None or row.last_attempt_id is None:
        return row, None
    return row, session.get(DeliveryAttempt, row.last_attempt_id)


def delete_test_event(session: Session, row_id: int) -> None:
    session.execute(
        delete(OutboxEvaluation).where(
            OutboxEvaluation.id == row_id, OutboxEvaluation.is_test.is_(True)
        )
    )
