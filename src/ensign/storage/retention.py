"""Keeping the outbox bounded: purging finished rows, capping each integration's backlog and
its attempt log.

Every statement works through a bounded chunk of rows, so that each transaction stays short
(SQLite has one writer: a long purge would hold up the identify path). Callers loop until a
call answers fewer rows than the chunk. The integrations' counters are never touched by a
purge: what was delivered, failed or given up stays counted after its rows are gone.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from ensign.storage import dialect, outbox
from ensign.storage.dispatch import add_counts, real_rows
from ensign.storage.models import DeliveryAttempt, OutboxDelivery
from ensign.storage.outbox import DELIVERED, FAILED, GIVEN_UP, PENDING

# Rows per statement: a few milliseconds of work on either database.
CHUNK = 2000

FINISHED = (DELIVERED, FAILED, GIVEN_UP)
BACKLOG_MESSAGE = "gave up: the integration's backlog was over its cap"


def purge_finished(session: Session, cutoff: dt.datetime, *, limit: int = CHUNK) -> int:
    """Delete up to `limit` finished rows (delivered test events, failed, given up) recorded
    before `cutoff`, and the evaluations no row points at any more; answers how many rows."""
    rows = session.execute(
        select(OutboxDelivery.id, OutboxDelivery.evaluation_id)
        .where(OutboxDelivery.status.in_(FINISHED), OutboxDelivery.created_at < cutoff)
        .order_by(OutboxDelivery.id)
        .limit(limit)
    ).all()
    if not rows:
        return 0
    evaluation_ids = [r.evaluation_id for r in rows]
    # Evaluations are locked before their rows go, as the dispatcher does (see `outbox`).
    outbox.lock_evaluations(session, evaluation_ids)
    session.execute(
        delete(OutboxDelivery)
        .where(OutboxDelivery.id.in_([r.id for r in rows]))
        .execution_options(synchronize_session=False)
    )
    outbox.delete_unreferenced(session, evaluation_ids, locked=True)
    return len(rows)


def backlog(session: Session, integration_id: int) -> int:
    """Real rows of one integration still waiting to be delivered (first try or retry)."""
    count = session.scalar(
        select(func.count()).where(
            OutboxDelivery.integration_id == integration_id,
            OutboxDelivery.status == PENDING,
            OutboxDelivery.is_test.is_(False),
        )
    )
    return int(count or 0)


def give_up_over_cap(session: Session, integration_id: int, max_backlog: int) -> int:
    """Give up the oldest waiting rows of one integration beyond its `max_backlog` newest (at
    most `CHUNK` per call), counting them in its `given_up` counter; answers how many.

    The boundary is counted from the newest row, so dispatchers running this at the same time
    agree on it and never give up more than the excess between them."""
    waiting = (
        OutboxDelivery.integration_id == integration_id,
        OutboxDelivery.status == PENDING,
        OutboxDelivery.is_test.is_(False),
    )
    boundary = session.scalar(
        select(OutboxDelivery.id)
        .where(*waiting)
        # Ids grow with recording: the largest are the newest evaluations.
        .order_by(OutboxDelivery.id.desc())
        .offset(max(0, max_backlog))
        .limit(1)
    )
    if boundary is None:
        return 0
    oldest = (
        select(OutboxDelivery.id)
        .where(*waiting, OutboxDelivery.id <= boundary)
        .order_by(OutboxDelivery.id)
        .limit(CHUNK)
    )
    ids = list(session.scalars(oldest))
    result = session.execute(
        update(OutboxDelivery)
        # A dispatcher holding one of these rows finds it no longer pending and leaves it.
        .where(OutboxDelivery.id.in_(ids), OutboxDelivery.status == PENDING)
        .values(status=GIVEN_UP, claim_token=None, last_error=BACKLOG_MESSAGE)
        .returning(OutboxDelivery.is_test)
        .execution_options(synchronize_session=False)
    )
    gave_up = real_rows(result)
    if gave_up:
        add_counts(session, integration_id, given_up=gave_up)
    return gave_up


def trim_attempts(session: Session, integration_id: int, keep: int) -> int:
    """Delete all but the `keep` newest attempts of one integration (at most `CHUNK` per
    call); answers how many were deleted."""
    boundary = session.scalar(
        select(DeliveryAttempt.id)
        .where(DeliveryAttempt.integration_id == integration_id)
        .order_by(DeliveryAttempt.id.desc())
        .offset(max(0, keep))
        .limit(1)
    )
    if boundary is None:
        return 0
    ids = list(
        session.scalars(
            select(DeliveryAttempt.id)
            .where(DeliveryAttempt.integration_id == integration_id, DeliveryAttempt.id <= boundary)
            .order_by(DeliveryAttempt.id)
            .limit(CHUNK)
        )
    )
    result = session.execute(
        delete(DeliveryAttempt)
        .where(DeliveryAttempt.id.in_(ids))
        .execution_options(synchronize_session=False)
    )
    return dialect.rowcount(result)
