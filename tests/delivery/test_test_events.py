""" "Send test event": the sample travels alone and leaves real deliveries' counters alone."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest
from fastapi.testclient import TestClient

from ensign.services import integrations, test_events
from ensign.web.app import create_app
from ensign.web.deps import AppState
from tests.delivery.dispatching import deliver
from tests.fakes.fixtures import Env, Served, configure
from tests.fakes.script import Answer


@pytest.fixture
def sdk(state: AppState) -> Iterator[TestClient]:
    with TestClient(create_app(state=state)) as client:
        yield client


def status(state: AppState, env: Env, integration_id: int) -> integrations.DeliveryStatus:
    with state.units.read() as unit:
        return integrations.delivery_status(
            unit, env.principal, env.client_key, "heap", integration_id
        )


def queue_test_event(state: AppState, env: Env, integration_id: int) -> int:
    with state.units.write() as unit:
        return test_events.request_test_event(
            unit, env.principal, env.client_key, "heap", integration_id
        )


def result(state: AppState, row_id: int) -> test_events.TestEventResult | None:
    with state.units.read() as unit:
        return test_events.test_event_result(unit, row_id)


def identities(request: dict[str, object]) -> list[str]:
    body = orjson.loads(request["body"])  # type: ignore[arg-type]
    return [e["identity"] for e in body.get("events", [body])]


def test_test_event__failed_with_a_real_evaluation_pending__sent_alone_counters_untouched(
    state: AppState, env: Env, sdk: TestClient, vendors: Served
) -> None:
    # Given a real evaluation waiting, and a test event queued that the vendor will refuse
    heap_id = configure(state, env, "heap", vendors.heap_url)
    response = sdk.get(
        "/api/v1/identities/?identifier=user-1", headers={"X-Environment-Key": env.client_key}
    )
    assert response.status_code == 200
    row_id = queue_test_event(state, env, heap_id)
    vendors.heap.script.then(Answer(500, body=b"down"))
    # When the dispatcher runs
    deliver(state, lambda: status(state, env, heap_id).delivered == 1)
    # Then the test event went alone, and the real evaluation in a request of its own
    assert [identities(r) for r in vendors.heap.requests] == [["ensign-test-event"], ["user-1"]]
    answered = result(state, row_id)
    assert answered is not None
    assert answered.status_code == 500
    # and the failed test event counts as nothing given up or failed
    after = status(state, env, heap_id)
    assert (after.delivered, after.pending, after.retrying, after.failed, after.given_up) == (
        1,
        0,
        0,
        0,
        0,
    )


def test_test_event__delivered__not_counted_as_a_delivery(
    state: AppState, env: Env, vendors: Served
) -> None:
    heap_id = configure(state, env, "heap", vendors.heap_url)
    row_id = queue_test_event(state, env, heap_id)
    deliver(state, lambda: result(state, row_id) is not None)
    answered = result(state, row_id)
    assert answered is not None
    assert answered.outcome == "delivered"
    assert status(state, env, heap_id).delivered == 0
    assert [identities(r) for r in vendors.heap.requests] == [["ensign-test-event"]]
