"""Housekeeping of the outbox, on a timer of its own: give up what is too old, cap each
integration's backlog, purge finished rows after the retention, trim the attempt log.

It runs whether or not an integration's delivery task is awake: a task pausing for a long
backoff (or a vendor that never answers) no longer delays give-up, and a long outage cannot
fill the disk.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

from ensign.delivery import metrics
from ensign.settings import Settings
from ensign.storage import dispatch as q
from ensign.storage import events as event_store
from ensign.storage import retention
from ensign.storage.db import Database
from ensign.storage.models import utcnow

log = logging.getLogger("ensign.delivery")


@dataclass(frozen=True)
class RetentionSettings:
    max_age: dt.timedelta = dt.timedelta(hours=24)
    retention: dt.timedelta = dt.timedelta(hours=72)
    max_backlog: int = 100_000
    attempts_kept: int = 1000
    # How often the dispatcher runs `Housekeeper.run` (each run's statements are short).
    interval_seconds: float = 30.0
    # How long the key of each SDK event is kept to recognise the SDK re-sending it.
    event_keys_kept: dt.timedelta = dt.timedelta(hours=48)

    @classmethod
    def from_settings(cls, settings: Settings) -> RetentionSettings:
        return cls(
            max_age=dt.timedelta(hours=settings.delivery_max_age_hours),
            retention=dt.timedelta(hours=settings.outbox_retention_hours),
            max_backlog=settings.outbox_max_backlog,
            attempts_kept=settings.delivery_attempts_kept,
            event_keys_kept=dt.timedelta(hours=settings.events_dedupe_hours),
        )


@dataclass
class HousekeepingResult:
    expired: int = 0
    over_backlog: int = 0
    purged: int = 0
    attempts_trimmed: int = 0
    event_keys_forgotten: int = 0


class Housekeeper:
    """One pass over every integration; each step works in short transactions."""

    def __init__(
        self,
        db: Database,
        settings: RetentionSettings,
        *,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self._db = db
        self._settings = settings
        self._clock = clock

    def run(self) -> HousekeepingResult:
        result = HousekeepingResult()
        now = self._clock()
        with self._db.read_session() as session:
            targets = q.dispatch_targets(session)
        for target in targets:
            expired = self._give_up_expired(target.id, now - self._settings.max_age)
            over = self._cap_backlog(target.id)
            if expired or over:
                metrics.EVALUATIONS.labels(target.kind, "given_up").inc(expired + over)
            if over:
                log.warning(
                    "delivery: integration %s had more than %d evaluations waiting; "
                    "gave up the %d oldest",
                    target.id,
                    self._settings.max_backlog,
                    over,
                )
            result.expired += expired
            result.over_backlog += over
            result.attempts_trimmed += self._until_done(
                lambda s, i=target.id: retention.trim_attempts(s, i, self._settings.attempts_kept)
            )
        cutoff = now - self._settings.retention
        result.purged = self._until_done(lambda s: retention.purge_finished(s, cutoff))
        keys_before = now - self._settings.event_keys_kept
        result.event_keys_forgotten = self._until_done(
            lambda s: event_store.forget_keys(s, keys_before, retention.CHUNK)
        )
        return result

    def _give_up_expired(self, integration_id: int, cutoff: dt.datetime) -> int:
        with self._db.session() as session:
            return q.give_up_expired(session, integration_id, cutoff)

    def _cap_backlog(self, integration_id: int) -> int:
        cap = self._settings.max_backlog
        with self._db.read_session() as session:
            # A count first: the usual case, under the cap, writes nothing.
            if retention.backlog(session, integration_id) <= cap:
                return 0
        return self._until_done(lambda s: retention.give_up_over_cap(s, integration_id, cap))

    def _until_done(self, step: Callable[..., int]) -> int:
        """Run `step` in its own transaction until it answers less than a full chunk."""
        total = 0
        while True:
            with self._db.session() as session:
                done = step(session)
            total += done
            if done < retention.CHUNK:
                return total
