"""The dispatcher delivering to the fake Amplitude on a real socket: events it refuses are
dropped alone, throttled users wait while the others arrive, lost answers are deduplicated."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from ensign.integrations.vendors.amplitude.requests import THROTTLE_PAUSE_SECONDS
from ensign.storage.models import OutboxDelivery, RecordedEvaluation, utcnow
from ensign.web.deps import AppState
from tests.delivery.test_worker import attempts_of, drive, expected_properties, sdk, status_of
from tests.fakes.fixtures import Env, Served, configure

__all__ = ["sdk"]  # the fixture, reused


def identify(sdk: TestClient, env: Env, identifier: str) -> dict[str, Any]:
    response = sdk.post(
        "/api/v1/identities/",
        headers={"X-Environment-Key": env.client_key},
        json={"identifier": identifier, "traits": [{"trait_key": "plan", "trait_value": "gold"}]},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


class Clock:
    """The real time, moved forward by hand: the dispatcher's claims see rows due later."""

    def __init__(self) -> None:
        self.offset = dt.timedelta()

    def __call__(self) -> dt.datetime:
        return utcnow() + self.offset


def due_at(state: AppState, integration_id: int, identifier: str) -> dt.datetime:
    with state.db.read_session() as session:
        due = session.scalar(
            select(OutboxDelivery.next_attempt_at)
            .join(RecordedEvaluation, RecordedEvaluation.id == OutboxDelivery.evaluation_id)
            .where(
                OutboxDelivery.integration_id == integration_id,
                RecordedEvaluation.identifier == identifier,
            )
        )
    assert due is not None
    return due.replace(tzinfo=dt.UTC) if due.tzinfo is None else due


def test_amplitude__400_refusing_one_event__only_it_dropped_the_rest_arrive(
    state: AppState, env: Env, vendors: Served, sdk: TestClient
) -> None:
    # Given Amplitude refusing one user's events (and its user properties as invalid)
    amplitude_id = configure(state, env, "amplitude", vendors.amplitude_url)
    vendors.amplitude.invalid_users["user-2"] = "user_properties"
    bodies = {f"user-{i}": identify(sdk, env, f"user-{i}") for i in range(6)}
    # When
    drive(state, lambda: status_of(state, env, "amplitude", amplitude_id).delivered == 5)
    # Then the five others arrived with their flags as user properties, and one is failed
    for identifier, body in bodies.items():
        if identifier == "user-2":
            assert vendors.amplitude.user(identifier) is None
        else:
            assert vendors.amplitude.user(identifier) == expected_properties(body)
    status = status_of(state, env, "amplitude", amplitude_id)
    assert (status.failed, status.pending, status.retrying) == (1, 0, 0)
    assert "invalid field `user_properties`" in (status.last_error or "")
    first, second = reversed(attempts_of(state, env, "amplitude", amplitude_id))
    assert (first.outcome, first.status_code, first.evaluations) == ("retry", 400, 6)
    assert (second.outcome, second.evaluations) == ("delivered", 5)


def test_amplitude__429_throttling_one_user__others_at_once_that_one_after_30_s(
    state: AppState, env: Env, vendors: Served, sdk: TestClient
) -> None:
    # Given Amplitude throttling one user for one request
    amplitude_id = configure(state, env, "amplitude", vendors.amplitude_url)
    vendors.amplitude.throttled_users["user-1"] = 1
    for i in range(4):
        identify(sdk, env, f"user-{i}")
    clock = Clock()
    # When
    took = drive(state, lambda: len(vendors.amplitude.events) == 3, clock=clock)
    # Then the others arrive at once, and the throttled user is due 30 s after the 429
    assert took < 5
    assert vendors.amplitude.user("user-1") is None
    wait = due_at(state, amplitude_id, "user-1") - utcnow()
    assert THROTTLE_PAUSE_SECONDS - 5 < wait.total_seconds() <= THROTTLE_PAUSE_SECONDS
    status = status_of(state, env, "amplitude", amplitude_id)
    assert (status.delivered, status.retrying) == (3, 1)
    # And once those 30 s have passed, it arrives too
    clock.offset = dt.timedelta(seconds=THROTTLE_PAUSE_SECONDS + 1)
    drive(state, lambda: vendors.amplitude.user("user-1") is not None, clock=clock)
    assert len(vendors.amplitude.events) == 4
    assert vendors.amplitude.duplicates == 0


def test_amplitude__answers_lost_and_5xx__every_user_once(
    state: AppState, env: Env, vendors: Served, sdk: TestClient
) -> None:
    # Given an outage, then an answer lost after Amplitude ingested the batch
    amplitude_id = configure(state, env, "amplitude", vendors.amplitude_url)
    vendors.amplitude.script.fail(2, 503, body=b'{"code":503}')
    vendors.amplitude.lose_answers = 1
    for i in range(10):
        identify(sdk, env, f"user-{i}")
    # When
    drive(state, lambda: status_of(state, env, "amplitude", amplitude_id).delivered == 10)
    # Then each event is held once: the resent copies were dropped by their insert_id
    assert len(vendors.amplitude.events) == 10
    assert vendors.amplitude.duplicates == 10
    assert {e["user_id"] for e in vendors.amplitude.events} == {f"user-{i}" for i in range(10)}
    outcomes = [a.outcome for a in reversed(attempts_of(state, env, "amplitude", amplitude_id))]
    assert outcomes == ["retry", "retry", "retry", "delivered"]


def test_amplitude__wrong_api_key__failed_not_retried(
    state: AppState, env: Env, vendors: Served, sdk: TestClient
) -> None:
    amplitude_id = configure(state, env, "amplitude", vendors.amplitude_url, api_key="wrong")
    identify(sdk, env, "user-1")
    drive(state, lambda: status_of(state, env, "amplitude", amplitude_id).failed == 1)
    assert len(vendors.amplitude.requests) == 1
    status = status_of(state, env, "amplitude", amplitude_id)
    assert "Invalid API key: wrong" in (status.last_error or "")
