"""Requests that cannot be built or sent: each is a failed attempt with its reason, and the
dispatcher goes on delivering everything else."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from ensign.storage.models import IntegrationConfig, OutboxDelivery, RecordedEvaluation, utcnow
from ensign.web.app import create_app
from ensign.web.deps import AppState
from tests.delivery.test_worker import attempts_of, drive, identify, status_of
from tests.fakes.fixtures import Env, Served, configure
from tests.units import unit_session


@pytest.fixture
def sdk(state: AppState) -> Iterator[TestClient]:
    with TestClient(create_app(state=state)) as client:
        yield client


def rows_of(state: AppState, integration_id: int) -> list[tuple[int, str, str | None]]:
    """(evaluation id, status, last error) of the integration's queue rows."""
    with state.units.read() as unit, unit_session(unit) as session:
        found = session.execute(
            select(
                OutboxDelivery.evaluation_id, OutboxDelivery.status, OutboxDelivery.last_error
            ).where(OutboxDelivery.integration_id == integration_id)
        )
        return [(e, s, error) for e, s, error in found]


def test_dispatcher__stored_url_with_a_line_break__failed_attempt_others_still_delivered(
    state: AppState, env: Env, vendors: Served, sdk: TestClient
) -> None:
    # Given a Heap integration whose URL was stored with a line break (before the save check
    # refused them), and a healthy Mixpanel integration
    heap_id = configure(state, env, "heap", vendors.heap_url)
    mixpanel_id = configure(state, env, "mixpanel", vendors.mixpanel_url)
    with state.units.write() as unit, unit_session(unit) as session:
        session.execute(
            update(IntegrationConfig)
            .where(IntegrationConfig.id == heap_id)
            .values(base_url=vendors.heap_url + "/a\r\nX-Injected: 1")
        )
    for i in range(3):
        identify(sdk, env, i)
    # When the dispatcher runs
    drive(
        state,
        lambda: len(vendors.mixpanel.profiles) >= 3
        and status_of(state, env, "heap", heap_id).failed >= 3,
    )
    # Then Heap's rows failed, once, with the reason, and nothing reached Heap
    (attempt,) = attempts_of(state, env, "heap", heap_id)
    assert (attempt.outcome, attempt.status_code, attempt.evaluations) == ("failed", None, 3)
    assert "InvalidURL" in attempt.error
    status = status_of(state, env, "heap", heap_id)
    assert (status.pending, status.retrying, status.failed) == (0, 0, 3)
    assert "InvalidURL" in (status.last_error or "")
    assert {(s, "InvalidURL" in (e or "")) for _, s, e in rows_of(state, heap_id)} == {
        ("failed", True)
    }
    assert vendors.heap.events == []
    # and Mixpanel got every evaluation
    assert status_of(state, env, "mixpanel", mixpanel_id).delivered == 3


def test_dispatcher__record_the_destination_cannot_build__failed_alone_the_rest_delivered(
    state: AppState, env: Env, vendors: Served, sdk: TestClient
) -> None:
    # Given a Heap integration with two identify calls recorded, and an exposure record whose
    # stored JSON is broken (written directly, as no code path writes it)
    heap_id = configure(state, env, "heap", vendors.heap_url)
    identify(sdk, env, 0)
    identify(sdk, env, 1)
    with state.units.write() as unit, unit_session(unit) as session:
        broken = RecordedEvaluation(
            environment_id=env.environment_id,
            kind="exposure",
            event_key="broken-exposure",
            identifier="user-x",
            flags='{"experiment": ',
            evaluated_at=utcnow() - dt.timedelta(seconds=1),
        )
        session.add(broken)
        session.flush()
        broken_id = broken.id
        session.add(
            OutboxDelivery(
                integration_id=heap_id,
                evaluation_id=broken.id,
                next_attempt_at=utcnow() - dt.timedelta(seconds=1),
            )
        )
    # When the dispatcher runs
    drive(
        state,
        lambda: status_of(state, env, "heap", heap_id).delivered >= 2
        and status_of(state, env, "heap", heap_id).failed >= 1,
    )
    # Then the two evaluations reached Heap, and the broken record failed with its reason
    assert len(vendors.heap.events) == 2
    attempts = attempts_of(state, env, "heap", heap_id)
    failed = [a for a in attempts if a.outcome == "failed"]
    assert [(a.evaluations, a.status_code) for a in failed] == [(1, None)]
    assert "JSONDecodeError" in failed[0].error
    status = status_of(state, env, "heap", heap_id)
    assert (status.delivered, status.failed, status.pending) == (2, 1, 0)
    (row,) = [r for r in rows_of(state, heap_id) if r[0] == broken_id]
    assert row[1] == "failed" and "JSONDecodeError" in (row[2] or "")
