"""The "send test event" action: one sample record queued ahead of any backlog for the
dispatcher to send now, and what the vendor answered to it.

`send_test_event` is the action as both the admin API and the dashboard run it: queue, wait
for the dispatcher's attempt (in short read units, off the event loop) and discard the sample.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from dataclasses import dataclass
from typing import Any

import orjson

from ensign.integrations.values import properties
from ensign.services import outbox
from ensign.services.integrations import EnvironmentRef, get_integration, schema_of
from ensign.services.keys import AdminPrincipal
from ensign.storage import integrations as integration_store
from ensign.storage import outbox as outbox_store
from ensign.storage.models import utcnow
from ensign.storage.unit_of_work import UnitOfWork, Units

# How often the wait looks for the dispatcher's attempt.
POLL_SECONDS = 0.1

TEST_IDENTITY = "ensign-test-event"


def sample_flags(
    environment_flags: dict[str, tuple[bool, Any]] | None = None, *, context: bool = False
) -> str:
    """The test event's flags, stored as the outbox stores them: name → value sent, or with
    context (`Schema.record_context`: no traits, each flag's `enabled` and value, no
    segments)."""
    flags = environment_flags or {"ensign_test_event": (True, "sent from Ensign")}
    if context:
        return outbox.context_record({}, [(n, e, v) for n, (e, v) in flags.items()], ())
    return orjson.dumps(properties(flags)).decode()


def request_test_event(
    unit: UnitOfWork,
    principal: AdminPrincipal,
    environment: EnvironmentRef,
    kind: str,
    integration_id: int,
) -> int:
    """Queue one sample evaluation, ahead of any backlog, for the dispatcher to send now;
    answers the record's id for `test_event_result`. It changes no configuration, so it
    leaves no audit entry."""
    config = get_integration(unit, principal, environment, kind, integration_id)
    now = utcnow()
    record = outbox_store.OutboxRecord(
        config.environment_id,
        (config.id,),
        uuid.uuid4().hex,
        TEST_IDENTITY,
        sample_flags(context=schema_of(kind).record_context),
        now,
        is_test=True,
    )
    (row_id,) = outbox_store.insert_records(
        unit.session, [record], now, due_at=now - dt.timedelta(days=1)
    )
    return row_id


@dataclass(frozen=True)
class TestEventResult:
    outcome: str
    status_code: int | None
    response: str | None
    error: str | None


def test_event_result(unit: UnitOfWork, row_id: int) -> TestEventResult | None:
    """What the vendor answered to a test event, once the dispatcher has tried it."""
    row, attempt = integration_store.test_event_state(unit.session, row_id)
    if row is None:
        return TestEventResult("failed", None, None, "The test event was removed.")
    if attempt is None:
        return None
    return TestEventResult(attempt.outcome, attempt.status_code, attempt.response, attempt.error)


def discard_test_event(unit: UnitOfWork, row_id: int) -> None:
    integration_store.delete_test_event(unit.session, row_id)


async def send_test_event(
    units: Units,
    principal: AdminPrincipal,
    environment: EnvironmentRef,
    kind: str,
    integration_id: int,
    *,
    wait_seconds: float,
) -> TestEventResult | None:
    """Queue a test event and wait up to `wait_seconds` for the dispatcher's answer, which is
    then discarded with the sample; None when no dispatcher answered in time (the event stays
    queued). Each step runs in a worker thread, in a unit of its own: no transaction stays
    open, and the event loop stays free, while the vendor is asked."""

    def queue() -> int:
        with units.write() as unit:
            return request_test_event(unit, principal, environment, kind, integration_id)

    def answered(row_id: int) -> TestEventResult | None:
        with units.read() as unit:
            return test_event_result(unit, row_id)

    def discard(row_id: int) -> None:
        with units.write() as unit:
            discard_test_event(unit, row_id)

    row_id = await asyncio.to_thread(queue)
    deadline = time.monotonic() + wait_seconds
    while True:
        result = await asyncio.to_thread(answered, row_id)
        if result is not None:
            await asyncio.to_thread(discard, row_id)
            return result
        if time.monotonic() >= deadline:
            return None
        await asyncio.sleep(POLL_SECONDS)
