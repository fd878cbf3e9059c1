"""The dispatcher: claims due outbox rows, sends them to their vendor, records every attempt.

Each integration is served by its own task, so one vendor's outage or hang never delays
another's deliveries. A task claims at most one vendor batch at a time (bounded memory under
any backlog), sends it through the injected `httpx.AsyncClient` with a hard deadline, and ends
each attempt as delivered, retry at T or failed. After a retryable failure the task pauses for
the backoff delay, so a vendor that is down receives one request per delay, not one per batch.
The database side of all this (claims, attempt records, sweeps) is `delivery.queue`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from ensign.delivery import metrics
from ensign.delivery.backoff import Backoff
from ensign.delivery.batches import build_apart, unbuilt_parts, unsendable
from ensign.delivery.destinations import DESTINATIONS
from ensign.delivery.housekeeping import Housekeeper, RetentionSettings
from ensign.delivery.queue import DeliveryQueue, Part
from ensign.delivery.transport import (
    REFUSED,
    DestinationRefused,
    DestinationTransport,
    network_error_message,
)
from ensign.integrations.base import (
    DeliveryOutcome,
    Destination,
    Outcome,
    network_failure,
)
from ensign.services.destinations import Resolver, resolve_host
from ensign.settings import Settings
from ensign.storage import dispatch as q
from ensign.storage.db import Database
from ensign.storage.models import utcnow

log = logging.getLogger("ensign.delivery")

# How often a task checks for rows too old to keep retrying.
GIVE_UP_SWEEP_SECONDS = 30.0
# How often the dispatcher looks for evaluations no queue row points at (a safety net: the
# delivery transaction deletes each evaluation with its last queue row).
ORPHAN_SWEEP_SECONDS = 300.0


@dataclass(frozen=True)
class DispatchSettings:
    timeout_seconds: float = 10.0
    max_age: dt.timedelta = dt.timedelta(hours=24)
    backoff: Backoff = field(default_factory=Backoff)
    poll_interval_seconds: float = 0.5
    batch_size: int = 1000
    # How often the list of integrations (and the queue-depth gauge) is refreshed.
    refresh_interval_seconds: float = 2.0
    allow_private_destinations: bool = False
    housekeeping: RetentionSettings = field(default_factory=RetentionSettings)

    @classmethod
    def from_settings(cls, settings: Settings) -> DispatchSettings:
        return cls(
            timeout_seconds=settings.delivery_timeout_seconds,
            max_age=dt.timedelta(hours=settings.delivery_max_age_hours),
            backoff=Backoff(
                settings.delivery_backoff_base_seconds, settings.delivery_backoff_cap_seconds
            ),
            poll_interval_seconds=settings.delivery_poll_interval_seconds,
            batch_size=settings.delivery_batch_size,
            allow_private_destinations=settings.allow_private_destinations,
            housekeeping=RetentionSettings.from_settings(settings),
        )

    @property
    def lease(self) -> dt.timedelta:
        """How long a claim lasts: well past the request's deadline, so that a row is only
        claimed again once its dispatcher has certainly stopped working on it."""
        return dt.timedelta(seconds=self.timeout_seconds * 2 + 30)


@dataclass(frozen=True)
class BatchResult:
    claimed: int
    outcome: DeliveryOutcome | None
    # Seconds until the batch is due again, after a retryable failure.
    pause_seconds: float = 0.0
    # The most that could have been claimed: a full batch means more may be due at once.
    limit: int = 1


class Dispatcher:
    """Delivers every integration's outbox, one task per integration."""

    def __init__(
        self,
        db: Database,
        client: httpx.AsyncClient,
        settings: DispatchSettings,
        *,
        clock: Callable[[], dt.datetime] = utcnow,
        rng: random.Random | None = None,
    ) -> None:
        self._queue = DeliveryQueue(db, max_age=settings.max_age, lease=settings.lease, clock=clock)
        self._client = client
        self._settings = settings
        self._clock = clock
        self._rng = rng or random.Random()
        self._targets: dict[int, q.DispatchTarget] = {}
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._stopping = asyncio.Event()
        self._last_sweep: dict[int, float] = {}
        self._last_orphan_sweep = time.monotonic()
        self._housekeeper = Housekeeper(db, settings.housekeeping, clock=clock)
        self._last_housekeeping = -1e9

    # --- running ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve every integration until `stop()`; expected failures never end the loop."""
        try:
            while not self._stopping.is_set():
                try:
                    await self.refresh()
                except Exception:
                    log.exception("delivery: cannot read integrations")
                if time.monotonic() - self._last_orphan_sweep > ORPHAN_SWEEP_SECONDS:
                    self._last_orphan_sweep = time.monotonic()
                    try:
                        await asyncio.to_thread(self._queue.sweep_orphans)
                    except Exception:
                        log.exception("delivery: cannot remove unreferenced evaluations")
                if time.monotonic() - self._last_housekeeping > (
                    self._settings.housekeeping.interval_seconds
                ):
                    self._last_housekeeping = time.monotonic()
                    try:
                        await asyncio.to_thread(self._housekeeper.run)
                    except Exception:
                        log.exception("delivery: outbox housekeeping failed")
                await self._sleep(self._settings.refresh_interval_seconds)
        finally:
            await self._cancel_tasks()

    def stop(self) -> None:
        self._stopping.set()

    @property
    def settings(self) -> DispatchSettings:
        return self._settings

    async def refresh(self) -> None:
        """Start a task for each new integration; tasks of deleted ones end by themselves."""
        targets = await asyncio.to_thread(self._queue.targets)
        self._targets = {t.id: t for t in targets}
        for target in targets:
            task = self._tasks.get(target.id)
            if (task is None or task.done()) and target.kind in DESTINATIONS:
                self._tasks[target.id] = asyncio.create_task(
                    self._serve(target.id), name=f"ensign-delivery-{target.id}"
                )
        depth = await asyncio.to_thread(self._queue.depth_by_kind)
        for kind in DESTINATIONS:
            metrics.QUEUE_DEPTH.labels(kind).set(depth.get(kind, 0))

    async def _cancel_tasks(self) -> None:
        tasks = list(self._tasks.values())
        if tasks:
            # Let batches in flight finish and be recorded; a task idling stops at once.
            await asyncio.wait(tasks, timeout=self._settings.timeout_seconds + 2)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    async def _serve(self, integration_id: int) -> None:
        failures = 0
        while not self._stopping.is_set():
            target = self._targets.get(integration_id)
            if target is None:
                return
            try:
                result = await self.deliver_batch(target, failures=failures)
            except Exception:
                log.exception("delivery: integration %s failed unexpectedly", integration_id)
                await self._sleep(self._settings.poll_interval_seconds)
                continue
            if result.outcome is not None and result.outcome.outcome is Outcome.RETRY:
                # A partial refusal is no failure of the vendor: the rest goes again as told.
                if not result.outcome.by_key:
                    failures += 1
                await self._sleep(result.pause_seconds)
                continue
            if result.outcome is not None:
                failures = 0
            if result.claimed < result.limit:
                # The backlog is drained: let evaluations accumulate for a poll interval, so
                # that a dispatcher keeping up sends a few large batches rather than a stream
                # of tiny ones (each costs a claim, a request and an attempt row).
                await self._sleep(self._settings.poll_interval_seconds)

    def _pause(self, failures: int, outcome: DeliveryOutcome) -> float:
        if outcome.by_key and outcome.retry_after_seconds is not None:
            # A partial refusal: the rest of the batch was fine and is sent again as told.
            return outcome.retry_after_seconds
        return self._settings.backoff.delay(
            failures, retry_after=outcome.retry_after_seconds, rng=self._rng
        )

    def _parts(
        self,
        rows: list[q.ClaimedRow],
        outcome: DeliveryOutcome,
        pause: float,
        token: str | None,
        failures: int,
    ) -> list[Part]:
        """The batch's rows grouped by fate: the request's outcome, except for the rows the
        vendor named (`outcome.by_key`), each group with its own pause."""
        groups: dict[int, tuple[DeliveryOutcome, list[q.ClaimedRow]]] = {}
        for row in rows:
            own = outcome.by_key.get(row.event_key, outcome)
            groups.setdefault(id(own), (own, []))[1].append(row)
        parts = []
        for own, members in groups.values():
            if own is outcome:
                own_pause = pause
            elif own.outcome is not Outcome.RETRY:
                own_pause = 0.0
            elif own.retry_after_seconds is not None:
                # The vendor said when these rows may go again (a throttled user's 30 s).
                own_pause = own.retry_after_seconds
            else:
                own_pause = self._settings.backoff.delay(failures + 1, rng=self._rng)
            claim = q.Claim([r.id for r in members], [r.evaluation_id for r in members], token)
            parts.append(Part(claim, own, own_pause))
        return parts

    # --- one batch ----------------------------------------------------------------------------

    async def deliver_batch(self, target: q.DispatchTarget, *, failures: int = 0) -> BatchResult:
        """Claim one batch of `target`'s due evaluations, send it and record the result."""
        destination = DESTINATIONS[target.kind]
        now = self._clock()
        if time.monotonic() - self._last_sweep.get(target.id, -1e9) > GIVE_UP_SWEEP_SECONDS:
            self._last_sweep[target.id] = time.monotonic()
            gave_up = await asyncio.to_thread(self._queue.give_up_expired, target.id, now)
            if gave_up:
                metrics.EVALUATIONS.labels(target.kind, "given_up").inc(gave_up)
        token = uuid.uuid4().hex
        limit = max(1, min(self._settings.batch_size, destination.max_batch))
        claimed = await asyncio.to_thread(self._queue.claim, target.id, now, token, limit)
        if any(row.is_test for row in claimed):
            claimed = await asyncio.to_thread(
                self._queue.tests_alone, target.id, claimed, token, now
            )
        if not claimed:
            return BatchResult(0, None, limit=limit)
        try:
            return await self._deliver(target, destination, claimed, token, failures, limit)
        finally:
            self._queue.release(target.id, claimed)

    async def _fail_unbuilt(
        self,
        target: q.DispatchTarget,
        rows: list[q.ClaimedRow],
        reasons: dict[str, str],
        token: str | None,
    ) -> None:
        """One failed attempt for the rows whose request could not be built, each with its
        reason: they would fail the same way every time."""
        parts = unbuilt_parts(rows, reasons, token)
        counts = await asyncio.to_thread(
            self._queue.record, target.id, parts[0].outcome, parts, len(rows), 0.0, self._clock()
        )
        metrics.REQUESTS.labels(target.kind, Outcome.FAILED.value).inc()
        metrics.EVALUATIONS.labels(target.kind, "failed").inc(sum(m for m, _ in counts))

    async def _deliver(
        self,
        target: q.DispatchTarget,
        destination: Destination,
        claimed: list[q.ClaimedRow],
        token: str,
        failures: int,
        limit: int,
    ) -> BatchResult:
        # Building a full batch takes milliseconds of CPU: off the event loop, which is also
        # sending the other integrations' batches.
        prepared, broken = await asyncio.to_thread(
            build_apart, destination, target, claimed, self._clock()
        )
        claim_token = None if self._queue.claims_in_memory else token
        by_key = {row.event_key: row for row in claimed}
        if broken:
            await self._fail_unbuilt(target, [by_key[k] for k in broken], broken, claim_token)
        rejected = {by_key[k].id: reason for k, reason in prepared.rejected.items()}
        if rejected:
            claim = q.Claim([r.id for r in claimed], [], claim_token)
            await asyncio.to_thread(self._queue.reject, target.id, claim, rejected)
            metrics.EVALUATIONS.labels(target.kind, "failed").inc(len(rejected))
        deferred = {by_key[k].id for k in prepared.deferred}
        if deferred:
            # Rows for another endpoint of this vendor: handed back, due at once.
            await asyncio.to_thread(self._queue.hand_back, target.id, deferred, claim_token)
        if prepared.request is None:
            return BatchResult(len(claimed), None, limit=limit)
        remaining = [
            r
            for r in claimed
            if r.id not in rejected and r.id not in deferred and r.event_key not in broken
        ]
        request = prepared.request
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self._settings.timeout_seconds):
                response = await self._client.request(
                    request.method,
                    request.url,
                    headers=dict(request.headers),
                    content=request.body,
                )
                body = await response.aread()
            outcome = destination.classify(
                response.status_code, response.headers, body, batch=prepared
            )
        except DestinationRefused:
            outcome = REFUSED
        except TimeoutError:
            outcome = network_failure(f"timed out after {self._settings.timeout_seconds:g} seconds")
        except httpx.HTTPError as error:
            outcome = network_failure(network_error_message(error, self._settings.timeout_seconds))
        except Exception as error:
            # A request httpx cannot even send (a stored URL with a control character is an
            # `InvalidURL`, no `HTTPError`) fails the same way every time: recorded as a failed
            # attempt with its reason, and the loop goes on to the next batch.
            log.warning("delivery: integration %s: request not sent", target.id, exc_info=True)
            outcome = DeliveryOutcome(Outcome.FAILED, None, unsendable(error))
        duration = time.perf_counter() - started
        metrics.REQUEST_SECONDS.labels(target.kind).observe(duration)
        metrics.REQUESTS.labels(target.kind, outcome.outcome.value).inc()
        pause = self._pause(failures + 1, outcome) if outcome.outcome is Outcome.RETRY else 0.0
        parts = self._parts(remaining, outcome, pause, claim_token, failures)
        finished = self._clock()
        counts = await asyncio.to_thread(
            self._queue.record, target.id, outcome, parts, len(prepared.sent), duration, finished
        )
        for part, (marked, given_up) in zip(parts, counts, strict=False):
            if part.outcome.outcome is Outcome.DELIVERED:
                metrics.EVALUATIONS.labels(target.kind, "delivered").inc(marked)
                latency = metrics.LATENCY_SECONDS.labels(target.kind)
                held = set(part.claim.ids)
                for row in remaining:
                    if row.id in held:
                        latency.observe(max(0.0, (finished - row.evaluated_at).total_seconds()))
            elif part.outcome.outcome is Outcome.FAILED:
                metrics.EVALUATIONS.labels(target.kind, "failed").inc(marked)
            else:
                metrics.EVALUATIONS.labels(target.kind, "retry").inc(marked)
                metrics.EVALUATIONS.labels(target.kind, "given_up").inc(given_up)
        return BatchResult(len(claimed), outcome, pause, limit)


def make_client(
    settings: DispatchSettings, *, resolve: Resolver = resolve_host
) -> httpx.AsyncClient:
    """The vendors' HTTP client: explicit timeouts, no redirects, a bounded connection pool,
    and every connection checked against the destination rules (see `transport`)."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(settings.timeout_seconds, connect=min(5.0, settings.timeout_seconds)),
        follow_redirects=False,
        transport=DestinationTransport(
            allow_private=settings.allow_private_destinations,
            resolve=resolve,
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        ),
        headers={"User-Agent": "ensign-delivery"},
    )
