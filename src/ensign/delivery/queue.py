"""The outbox as a dispatcher works it: claiming due rows, recording each attempt and its
outcome, and the sweeps. Blocking database work, which the dispatcher runs on worker threads."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from ensign.delivery.claims import local_claims
from ensign.integrations.base import DeliveryOutcome, Outcome, truncate
from ensign.storage import dispatch as q
from ensign.storage import integrations as integration_store
from ensign.storage import outbox as outbox_store
from ensign.storage.db import Database

# How many unreferenced evaluations one orphan sweep deletes at most.
ORPHAN_SWEEP_LIMIT = 5000


class DeliveryQueue:
    def __init__(
        self,
        db: Database,
        *,
        max_age: dt.timedelta,
        lease: dt.timedelta,
        clock: Callable[[], dt.datetime],
    ) -> None:
        self._db = db
        self._max_age = max_age
        self._lease = lease
        self._clock = clock
        self._local = local_claims(db) if db.is_sqlite else None

    @property
    def claims_in_memory(self) -> bool:
        """Whether claims are held in this process (SQLite) rather than by a token in the row."""
        return self._local is not None

    def targets(self) -> list[q.DispatchTarget]:
        with self._db.read_session() as session:
            return q.dispatch_targets(session)

    def depth_by_kind(self) -> dict[str, int]:
        with self._db.read_session() as session:
            return integration_store.queue_depth_by_kind(session)

    def sweep_orphans(self) -> int:
        """Delete evaluations no queue row points at; answers how many."""
        with self._db.read_session() as session:
            ids = outbox_store.unreferenced_evaluations(session, ORPHAN_SWEEP_LIMIT)
        if not ids:
            return 0
        with self._db.session() as session:
            return outbox_store.delete_unreferenced(session, ids)

    def give_up_expired(self, integration_id: int, now: dt.datetime) -> int:
        """Give up on rows too old to keep retrying; answers how many."""
        with self._db.session() as session:
            return q.give_up_expired(session, integration_id, now - self._max_age)

    def claim(
        self, integration_id: int, now: dt.datetime, token: str, limit: int
    ) -> list[q.ClaimedRow]:
        if self._local is not None:
            # SQLite: read without writing; the claim is held in memory.
            held = self._local.held(integration_id)
            with self._db.read_session() as session:
                rows = q.read_due(session, integration_id, now=now, limit=limit, exclude=held)
            taken = set(self._local.take(integration_id, [r.id for r in rows]))
            return [r for r in rows if r.id in taken]
        with self._db.session() as session:
            return q.claim_due(
                session,
                integration_id,
                now=now,
                lease_until=now + self._lease,
                limit=limit,
                token=token,
            )

    def release(self, integration_id: int, rows: Sequence[q.ClaimedRow]) -> None:
        """Let go of rows claimed in memory (a claim by token ends with the row's update)."""
        if self._local is not None:
            self._local.release(integration_id, [row.id for row in rows])

    def tests_alone(
        self, integration_id: int, claimed: list[q.ClaimedRow], token: str, now: dt.datetime
    ) -> list[q.ClaimedRow]:
        """Keep only the test events of a claim: a test request carries the sample alone, so
        no real evaluation is sent early or shares the test's outcome."""
        others = [row.id for row in claimed if not row.is_test]
        if others and self._local is not None:
            self._local.release(integration_id, others)
        elif others:
            with self._db.session() as session:
                q.release_claim(session, q.Claim(others, [], token), now)
        return [row for row in claimed if row.is_test]

    def hand_back(self, integration_id: int, ids: set[int], token: str | None) -> None:
        """Let go of claimed rows unsent, due at once (in memory, the claim ends with the
        batch anyway)."""
        if token is not None:
            with self._db.session() as session:
                q.release_claim(session, q.Claim(sorted(ids), [], token), self._clock())

    def reject(self, integration_id: int, claim: q.Claim, rejected: dict[int, str]) -> None:
        """Fail the rows the destination refused to build, each with its reason."""
        now = self._clock()
        with self._db.session() as session:
            for row_id, reason in rejected.items():
                q.mark_failed(
                    session,
                    integration_id,
                    claim,
                    attempt_id=None,
                    message=reason,
                    now=now,
                    ids=[row_id],
                )

    def record(
        self,
        integration_id: int,
        attempt: DeliveryOutcome,
        parts: Sequence[Part],
        sent: int,
        duration: float,
        now: dt.datetime,
    ) -> list[tuple[int, int]]:
        """Store the attempt (`attempt`: the request's outcome) and mark each part's rows
        delivered, failed or due again after its pause, in one transaction; answers, per part,
        the rows so marked and, on a retry, the rows given up as too old."""
        error = None if attempt.outcome is Outcome.DELIVERED else describe(attempt)
        row = q.AttemptRecord(
            outcome=attempt.outcome.value,
            status_code=attempt.status_code,
            evaluations=sent,
            duration_ms=round(duration * 1000, 3),
            response=attempt.message if attempt.status_code is not None else None,
            error=error,
        )
        with self._db.session() as session:
            attempt_id = q.add_attempt(session, integration_id, row, now)
            return [
                self._mark(session, integration_id, part, attempt_id, now)
                for part in parts
                if part.claim.ids
            ]

    def _mark(
        self, session: Session, integration_id: int, part: Part, attempt_id: int, now: dt.datetime
    ) -> tuple[int, int]:
        outcome, claim = part.outcome, part.claim
        if outcome.outcome is Outcome.DELIVERED:
            return q.mark_delivered(session, integration_id, claim, attempt_id, now), 0
        message = describe(outcome)
        if outcome.outcome is Outcome.FAILED:
            count = q.mark_failed(
                session, integration_id, claim, attempt_id=attempt_id, message=message, now=now
            )
            return count, 0
        return q.mark_retry(
            session,
            integration_id,
            claim,
            attempt_id=attempt_id,
            message=message,
            now=now,
            next_attempt_at=now + dt.timedelta(seconds=part.pause),
            cutoff=now - self._max_age,
        )


@dataclass(frozen=True)
class Part:
    """Rows of one attempt that share a fate: the whole batch, or (when a vendor refused only
    some events) each group of rows with its own outcome, retried after `pause` seconds."""

    claim: q.Claim
    outcome: DeliveryOutcome
    pause: float = 0.0


def describe(outcome: DeliveryOutcome) -> str:
    """An attempt's error as the attempt log shows it."""
    if outcome.status_code is None:
        return outcome.message
    text = f"HTTP {outcome.status_code}"
    return truncate(f"{text}: {outcome.message}") if outcome.message else text
