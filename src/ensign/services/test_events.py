"""The "send test event" action: one sample record queued ahead of any backlog for the
dispatcher to send now, and what the vendor answered to it."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy.orm import Session

from ensign.integrations.values import properties
from ensign.services import outbox
from ensign.services.integrations import get_integration, schema_of
from ensign.services.keys import AdminPrincipal
from ensign.storage import integrations as integration_store
from ensign.storage import outbox as outbox_store
from ensign.storage.models import utcnow

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
    session: Session, principal: AdminPrincipal, api_key: str, kind: str, integration_id: int
) -> int:
    """Queue one sample evaluation, ahead of any backlog, for the dispatcher to send now;
    answers the record's id for `test_event_result`."""
    config = get_integration(session, principal, api_key, kind, integration_id)
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
        session, [record], now, due_at=now - dt.timedelta(days=1)
    )
    return row_id


@dataclass(frozen=True)
class TestEventResult:
    outcome: str
    status_code: int | None
    response: str | None
    error: str | None


def test_event_result(session: Session, row_id: int) -> TestEventResult | None:
    """What the vendor answered to a test event, once the dispatcher has tried it."""
    row, attempt = integration_store.test_event_state(session, row_id)
    if row is None:
        return TestEventResult("failed", None, None, "The test event was removed.")
    if attempt is None:
        return None
    return TestEventResult(attempt.outcome, attempt.status_code, attempt.response, attempt.error)


def discard_test_event(session: Session, row_id: int) -> None:
    integration_store.delete_test_event(session, row_id)
