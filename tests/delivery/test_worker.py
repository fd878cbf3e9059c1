"""The dispatcher against fake Heap and Mixpanel servers on real sockets."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from ensign.delivery.backoff import Backoff
from ensign.delivery.worker import Dispatcher, DispatchSettings, make_client
from ensign.integrations.values import property_value
from ensign.services import integrations
from ensign.storage.models import OutboxDelivery, RecordedEvaluation, utcnow
from ensign.storage.pagination import Window
from ensign.web.app import create_app
from ensign.web.deps import AppState
from tests.fakes.fixtures import Env, Served, configure
from tests.fakes.script import Answer
from tests.units import unit_session

COLUMNS = ("id", "outcome", "status_code", "evaluations", "response", "error")


@pytest.fixture
def sdk(state: AppState) -> Iterator[TestClient]:
    with TestClient(create_app(state=state)) as client:
        yield client


def dispatch_settings(state: AppState, **overrides: Any) -> DispatchSettings:
    base = DispatchSettings.from_settings(state.settings)
    values = {**base.__dict__, "refresh_interval_seconds": 0.1, **overrides}
    return DispatchSettings(**values)


def drive(
    state: AppState,
    until: Callable[[], bool],
    *,
    timeout: float = 15.0,
    dispatchers: int = 1,
    settings: DispatchSettings | None = None,
    clock: Callable[[], dt.datetime] = utcnow,
) -> float:
    """Run dispatchers until `until()` holds; answers the seconds it took."""
    config = settings or dispatch_settings(state)

    async def run() -> float:
        clients = [make_client(config) for _ in range(dispatchers)]
        workers = [Dispatcher(state.db, c, config, clock=clock) for c in clients]
        tasks = [asyncio.create_task(w.run()) for w in workers]
        started = time.monotonic()
        try:
            while not until():
                if time.monotonic() - started > timeout:
                    raise AssertionError("the condition did not hold in time")
                await asyncio.sleep(0.02)
            return time.monotonic() - started
        finally:
            for worker in workers:
                worker.stop()
            await asyncio.gather(*tasks)
            for client in clients:
                await client.aclose()

    return asyncio.run(run())


def identify(sdk: TestClient, env: Env, i: int) -> dict[str, Any]:
    """Mixed calls: POST with traits, GET, and fully transient identities."""
    headers = {"X-Environment-Key": env.client_key}
    if i % 3 == 0:
        response = sdk.get(f"/api/v1/identities/?identifier=user-{i}", headers=headers)
    elif i % 3 == 1:
        response = sdk.post(
            "/api/v1/identities/",
            headers=headers,
            json={
                "identifier": f"user-{i}",
                "traits": [{"trait_key": "plan", "trait_value": "gold"}],
            },
        )
    else:
        response = sdk.post(
            "/api/v1/identities/",
            headers=headers,
            json={"identifier": None, "traits": [{"trait_key": "n", "trait_value": i}]},
        )
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def expected_properties(body: dict[str, Any]) -> dict[str, Any]:
    return {
        f["feature"]["name"]: property_value(f["enabled"], f["feature_state_value"])
        for f in body["flags"]
    }


def status_of(
    state: AppState, env: Env, kind: str, integration_id: int
) -> integrations.DeliveryStatus:
    with state.units.read() as unit:
        return integrations.delivery_status(
            unit, env.principal, env.client_key, kind, integration_id
        )


def attempts_of(state: AppState, env: Env, kind: str, integration_id: int) -> list[Any]:
    with state.units.read() as unit:
        found = integrations.delivery_attempts(
            unit, env.principal, env.client_key, kind, integration_id, Window(0, 1000)
        )
        return [SimpleNamespace(**{c: getattr(a, c) for c in COLUMNS}) for a in found.items]


def test_dispatcher__vendors_fail_then_recover__every_evaluation_arrives_once(
    state: AppState, env: Env, vendors: Served, sdk: TestClient
) -> None:
    # Given both vendors failing for a while
    heap_id = configure(state, env, "heap", vendors.heap_url)
    mixpanel_id = configure(state, env, "mixpanel", vendors.mixpanel_url)
    vendors.heap.script.fail(3, 500, body=b"down")
    vendors.mixpanel.script.then(Answer(429, headers={"Retry-After": "0.2"}), Answer(503))
    bodies = [identify(sdk, env, i) for i in range(30)]
    # When
    drive(
        state,
        lambda: len(vendors.heap.events) >= 30 and len(vendors.mixpanel.profiles) >= 30,
    )
    # Then every evaluation arrived, once, with its values
    heap_events = {e["identity"]: e for e in vendors.heap.events}
    assert len(vendors.heap.events) == 30
    assert len(set(vendors.heap.event_keys)) == 30
    for body in bodies:
        event = heap_events[body["identifier"]]
        assert event["properties"] == expected_properties(body)
        assert event["event"] == "Flagsmith Feature Flags"
        profile = vendors.mixpanel.profiles[("mixpanel-key", body["identifier"])]
        assert profile == expected_properties(body)
    # and the attempt log shows the retries
    heap_outcomes = [a.outcome for a in reversed(attempts_of(state, env, "heap", heap_id))]
    assert heap_outcomes[:3] == ["retry"] * 3
    assert heap_outcomes[-1] == "delivered"
    assert attempts_of(state, env, "heap", heap_id)[-1].status_code == 500
    status = status_of(state, env, "heap", heap_id)
    assert (status.delivered, status.pending, status.retrying, status.failed) == (30, 0, 0, 0)
    assert status.last_success_at is not None
    assert "500" in (status.last_error or "")
    assert status_of(state, env, "mixpanel", mixpanel_id).delivered == 30
    assert all("x-mixpanel-integration-id" not in r["headers"] for r in vendors.mixpanel.requests)


def stored_outbox(state: AppState) -> tuple[int, int]:
    """(evaluations, queue rows) still stored."""
    with state.units.read() as unit, unit_session(unit) as session:
        evaluations = session.scalar(select(func.count()).select_from(RecordedEvaluation))
        rows = session.scalar(select(func.count()).select_from(OutboxDelivery))
    return int(evaluations or 0), int(rows or 0)


def test_dispatcher__one_vendor_delivered__evaluation_kept_until_the_other_has_it(
    state: AppState, env: Env, vendors: Served, sdk: TestClient
) -> None:
    # Given both integrations, Mixpanel failing for a while
    configure(state, env, "heap", vendors.heap_url)
    configure(state, env, "mixpanel", vendors.mixpanel_url)
    vendors.mixpanel.script.fail(1, 503)
    bodies = [identify(sdk, env, i) for i in range(1, 40, 3)]  # stored identities, with traits
    settings = dispatch_settings(
        state, backoff=Backoff(base_seconds=1.0, cap_seconds=1.0), poll_interval_seconds=0.05
    )
    # When Heap has them all and Mixpanel none
    drive(state, lambda: len(vendors.heap.events) >= len(bodies), settings=settings)
    # Then each evaluation is stored once, for Mixpanel alone
    assert len(vendors.mixpanel.profiles) == 0
    assert stored_outbox(state) == (len(bodies), len(bodies))
    # When Mixpanel has them too, Then nothing is left
    drive(state, lambda: len(vendors.mixpanel.profiles) >= len(bodies), settings=settings)
    assert stored_outbox(state) == (0, 0)
    assert len(vendors.heap.events) == len(bodies)


def test_dispatcher__falsy_values__sent_as_themselves(
    state: AppState, env: Env, vendors: Served, sdk: TestClient
) -> None:
    configure(state, env, "heap", vendors.heap_url)
    configure(state, env, "mixpanel", vendors.mixpanel_url)
    identify(sdk, env, 0)
    drive(state, lambda: len(vendors.heap.events) == 1 and len(vendors.mixpanel.profiles) == 1)
    properties = vendors.heap.events[0]["properties"]
    assert properties["zero"] == 0
    assert properties["beta"] is False
    assert properties["banner"] == "hello"
    (profile,) = vendors.mixpanel.profiles.values()
    assert profile["zero"] == 0
    assert profile["beta"] is False


def test_dispatcher__vendor_answers_400__not_retried_and_message_shown(
    state: AppState, env: Env, vendors: Served, sdk: TestClient
) -> None:
    heap_id = configure(state, env, "heap", vendors.heap_url)
    vendors.heap.script.then(Answer(400, body=b"Bad request: app_id is unknown"))
    for i in range(3):
        identify(sdk, env, i)
    drive(state, lambda: status_of(state, env, "heap", heap_id).failed == 3)
    assert len(vendors.heap.requests) == 1
    (attempt,) = attempts_of(state, env, "heap", heap_id)
    assert attempt.outcome == "failed"
    assert attempt.status_code == 400
    assert attempt.response == "Bad request: app_id is unknown"
    status = status_of(state, env, "heap", heap_id)
    assert status.pending == status.retrying == 0
    assert status.last_error == "HTTP 400: Bad request: app_id is unknown"


def test_dispatcher__mixpanel_status_0__failed_with_vendor_error(
    state: AppState, env: Env, vendors: Served, sdk: TestClient
) -> None:
    mixpanel_id = configure(state, env, "mixpanel", vendors.mixpanel_url)
    vendors.mixpanel.script.then(
        Answer(
            200, body=b'{"status": 0, "error": "token not found"}', media_type="application/json"
        )
    )
    identify(sdk, env, 1)
    drive(state, lambda: status_of(state, env, "mixpanel", mixpanel_id).failed == 1)
    assert "token not found" in (status_of(state, env, "mixpanel", mixpanel_id).last_error or "")


def test_dispatcher__heap_hangs__mixpanel_not_delayed(
    state: AppState, env: Env, vendors: Served, sdk: TestClient
) -> None:
    # Given Heap hanging on every request
    heap_id = configure(state, env, "heap", vendors.heap_url)
    configure(state, env, "mixpanel", vendors.mixpanel_url)
    vendors.heap.script.always = Answer(hang_seconds=30)
    for i in range(5):
        identify(sdk, env, i)
    # When / Then Mixpanel gets everything well within Heap's timeout
    took = drive(state, lambda: len(vendors.mixpanel.profiles) == 5)
    assert took < 0.8
    # and Heap's hung requests end as timeouts to retry
    vendors.heap.script.always = Answer(hang_seconds=30)
    drive(
        state, lambda: any(a.outcome == "retry" for a in attempts_of(state, env, "heap", heap_id))
    )
    attempt = attempts_of(state, env, "heap", heap_id)[0]
    assert attempt.status_code is None
    assert "timed out" in (attempt.error or "")
    vendors.heap.script.clear()
    drive(state, lambda: len(vendors.heap.events) == 5)


def test_dispatcher__429_with_retry_after__waits_that_long(
    state: AppState, env: Env, vendors: Served, sdk: TestClient
) -> None:
    configure(state, env, "heap", vendors.heap_url)
    vendors.heap.script.then(Answer(429, headers={"Retry-After": "1"}))
    identify(sdk, env, 1)
    drive(state, lambda: len(vendors.heap.events) == 1)
    first, second = vendors.heap.requests
    assert second["at"] - first["at"] >= 1.0


def test_dispatcher__older_than_max_age__given_up_not_dropped(
    state: AppState, env: Env, vendors: Served, sdk: TestClient
) -> None:
    # Given evaluations that could not be delivered for more than the maximum age
    heap_id = configure(state, env, "heap", vendors.heap_url)
    for i in range(4):
        identify(sdk, env, i)
    later = utcnow() + dt.timedelta(hours=25)
    vendors.heap.script.always = Answer(503)
    # When
    drive(
        state,
        lambda: status_of(state, env, "heap", heap_id).given_up == 4,
        clock=lambda: later,
    )
    # Then they are marked, counted and never sent again
    status = status_of(state, env, "heap", heap_id)
    assert (status.pending, status.retrying, status.delivered) == (0, 0, 0)
    assert vendors.heap.events == []


def test_dispatcher__several_dispatchers__no_evaluation_sent_twice(
    state: AppState, env: Env, vendors: Served, sdk: TestClient
) -> None:
    configure(state, env, "heap", vendors.heap_url)
    settings = dispatch_settings(state, batch_size=3)
    for i in range(40):
        identify(sdk, env, i)
    drive(state, lambda: len(vendors.heap.events) == 40, dispatchers=4, settings=settings)
    sent = [e["idempotency_key"] for r in vendors.heap.requests for e in _events(r["body"])]
    assert len(sent) == len(set(sent)) == 40
    assert vendors.heap.duplicates == 0


def _events(body: bytes) -> list[dict[str, Any]]:
    import orjson

    events: list[dict[str, Any]] = orjson.loads(body)["events"]
    return events


def test_dispatcher__disabled_integration__records_nothing_new(
    state: AppState, env: Env, vendors: Served, sdk: TestClient
) -> None:
    heap_id = configure(state, env, "heap", vendors.heap_url, enabled=False)
    identify(sdk, env, 1)
    assert status_of(state, env, "heap", heap_id).pending == 0
