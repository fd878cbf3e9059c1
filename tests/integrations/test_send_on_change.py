"""Send on change (issue 10, item 1): an integration with deliver="changes" records an
identity's flags only when they changed, or after `resend_after_hours`; the rest are counted
as suppressed. Driven through the SDK API of an app whose clock the test sets."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from ensign.integrations.values import property_value
from ensign.settings import Settings
from ensign.storage.models import OutboxDelivery, RecordedEvaluation
from ensign.web.app import build_state, create_app
from ensign.web.deps import AppState
from tests.conftest import Organisation
from tests.fakes.fixtures import Env, configure


class Clock:
    """A clock the test moves by hand, given to the app as its clock."""

    def __init__(self) -> None:
        self.now = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def state(settings: Settings, clock: Clock) -> Iterator[AppState]:
    app_state = build_state(settings, clock=clock)
    yield app_state
    app_state.db.dispose()


@pytest.fixture
def client(state: AppState) -> Iterator[TestClient]:
    with TestClient(create_app(state=state)) as test_client:
        yield test_client


def identify(
    client: TestClient, env: Env, identifier: str, traits: dict[str, Any] | None = None, **more: Any
) -> None:
    body = {
        "identifier": identifier,
        "traits": [{"trait_key": k, "trait_value": v} for k, v in (traits or {}).items()],
        **more,
    }
    response = client.post(
        "/api/v1/identities/", json=body, headers={"X-Environment-Key": env.server_key}
    )
    assert response.status_code == 200, response.text


def recorded(state: AppState, integration_id: int) -> int:
    """Deliveries recorded for the integration (no dispatcher runs here, so none leave)."""
    with state.db.read_session() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(OutboxDelivery)
                .where(OutboxDelivery.integration_id == integration_id)
            )
            or 0
        )


def counters(client: TestClient, org: Organisation, env: Env, kind: str, id_: int) -> Any:
    url = f"/api/v1/environments/{env.client_key}/integrations/{kind}/{id_}/deliveries/"
    response = client.get(url, headers=org.headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_repeat_identify__changes_once__every_evaluation_each_time(
    client: TestClient, state: AppState, organisation: Organisation, env: Env
) -> None:
    # Given Heap sending on change (the default) and Mixpanel on every evaluation
    heap = configure(state, env, "heap", "https://heap.example")
    mixpanel = configure(
        state, env, "mixpanel", "https://mixpanel.example", deliver="every_evaluation"
    )
    # When 5 users are identified three times each with the same traits
    for _ in range(3):
        for i in range(5):
            identify(client, env, f"user-{i}", {"plan": "free"})
    # Then Heap has one delivery per user, Mixpanel three, and Heap counts the rest suppressed
    assert recorded(state, heap) == 5
    assert recorded(state, mixpanel) == 15
    assert counters(client, organisation, env, "heap", heap)["suppressed"] == 10
    assert counters(client, organisation, env, "mixpanel", mixpanel)["suppressed"] == 0
    # And the GET form compares with the same record
    response = client.get(
        "/api/v1/identities/?identifier=user-0", headers={"X-Environment-Key": env.server_key}
    )
    assert response.status_code == 200
    assert recorded(state, heap) == 5
    # And a trait that changes the flags the user gets is sent
    identify(client, env, "user-0", {"plan": "gold"})
    assert recorded(state, heap) == 6
    # And /metrics counts the suppressed calls
    metrics = client.get("/metrics").text
    assert 'ensign_delivery_suppressed_total{kind="heap"}' in metrics


def test_flag_selection__change_outside_it__suppressed(
    client: TestClient, state: AppState, env: Env
) -> None:
    # Given Heap sending only "limit", on change
    heap = configure(state, env, "heap", "https://heap.example", feature_names=["limit"])
    identify(client, env, "ann", {"plan": "free"})
    # When a trait changes a flag Heap does not send ("banner" for gold users)
    identify(client, env, "ann", {"plan": "gold"})
    # Then nothing new is recorded for Heap
    assert recorded(state, heap) == 1


def test_resend_after_hours__honoured_with_the_clock(
    client: TestClient, state: AppState, clock: Clock, env: Env
) -> None:
    # Given Heap resending after 24 hours (the default) and Mixpanel never resending
    heap = configure(state, env, "heap", "https://heap.example")
    mixpanel = configure(state, env, "mixpanel", "https://mixpanel.example", resend_after_hours=0)
    identify(client, env, "ann")
    # When the same flags are asked for 23 hours later
    clock.advance(hours=23)
    identify(client, env, "ann")
    # Then nothing is resent yet
    assert (recorded(state, heap), recorded(state, mixpanel)) == (1, 1)
    # When more than 24 hours have passed since the last recording
    clock.advance(hours=1, seconds=1)
    identify(client, env, "ann")
    # Then Heap receives them again, Mixpanel never does
    assert (recorded(state, heap), recorded(state, mixpanel)) == (2, 1)
    # And the next 24 hours count from that resend
    clock.advance(hours=23)
    identify(client, env, "ann")
    assert recorded(state, heap) == 2
    clock.advance(days=400)
    identify(client, env, "ann")
    assert (recorded(state, heap), recorded(state, mixpanel)) == (3, 1)


def test_transient_and_anonymous__always_sent(
    client: TestClient, state: AppState, env: Env
) -> None:
    heap = configure(state, env, "heap", "https://heap.example")
    headers = {"X-Environment-Key": env.server_key}
    # When a transient identity is identified three times, by POST and by GET
    for _ in range(3):
        identify(client, env, "passer-by", {"plan": "free"}, transient=True)
        response = client.get(
            "/api/v1/identities/?identifier=ghost&transient=true", headers=headers
        )
        assert response.status_code == 200
    # Then each call is recorded: nothing is stored to compare with
    assert recorded(state, heap) == 6
    # And identities made from traits alone (no identifier) are too
    for _ in range(2):
        response = client.post(
            "/api/v1/identities/",
            json={"identifier": "", "traits": [{"trait_key": "plan", "trait_value": "x"}]},
            headers=headers,
        )
        assert response.status_code == 200
    assert recorded(state, heap) == 8


def test_switching_to_every_evaluation__sends_each_call(
    client: TestClient, state: AppState, organisation: Organisation, env: Env
) -> None:
    heap = configure(state, env, "heap", "https://heap.example")
    identify(client, env, "ann")
    identify(client, env, "ann")
    url = f"/api/v1/environments/{env.client_key}/integrations/heap/{heap}/"
    response = client.patch(url, json={"deliver": "every_evaluation"}, headers=organisation.headers)
    assert response.status_code == 200
    assert response.json()["deliver"] == "every_evaluation"
    identify(client, env, "ann")
    identify(client, env, "ann")
    assert recorded(state, heap) == 3


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"deliver": "sometimes"}, "deliver"),
        ({"deliver": 3}, "deliver"),
        ({"resend_after_hours": -1}, "resend_after_hours"),
        ({"resend_after_hours": 8761}, "resend_after_hours"),
        ({"resend_after_hours": "24"}, "resend_after_hours"),
        ({"resend_after_hours": 1.5}, "resend_after_hours"),
        ({"resend_after_hours": True}, "resend_after_hours"),
    ],
)
def test_admin_api__bad_delivery_fields__400_naming_field(
    client: TestClient, organisation: Organisation, env: Env, body: dict[str, Any], field: str
) -> None:
    url = f"/api/v1/environments/{env.client_key}/integrations/heap/"
    response = client.post(url, json={"api_key": "k", **body}, headers=organisation.headers)
    assert response.status_code == 400, response.text
    assert response.json()["field"] == field


def test_admin_api__defaults_and_round_trip(
    client: TestClient, organisation: Organisation, env: Env
) -> None:
    url = f"/api/v1/environments/{env.client_key}/integrations/mixpanel/"
    created = client.post(url, json={"api_key": "k"}, headers=organisation.headers)
    assert created.status_code == 201, created.text
    assert (created.json()["deliver"], created.json()["resend_after_hours"]) == ("changes", 24)
    updated = client.patch(
        f"{url}{created.json()['id']}/",
        json={"deliver": "every_evaluation", "resend_after_hours": 0},
        headers=organisation.headers,
    )
    assert updated.status_code == 200, updated.text
    assert (updated.json()["deliver"], updated.json()["resend_after_hours"]) == (
        "every_evaluation",
        0,
    )


def test_concurrent_calls__one_identity__latest_flags_always_recorded(
    state: AppState, env: Env
) -> None:
    """Calls for one identity at once (on PostgreSQL they run on several database threads),
    half of them with a transient trait that changes its flags for that call only: whatever
    order they commit in, the last flags recorded for the identity are the ones it has now,
    so the vendor is never left with the transient call's flags."""
    heap = configure(state, env, "heap", "https://heap.example")
    app = create_app(state=state)
    headers = {"X-Environment-Key": env.server_key}

    async def run() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ensign") as client:

            async def call(transient: bool) -> None:
                trait = {"trait_key": "plan", "trait_value": "gold", "transient": True}
                body = {"identifier": "shared", "traits": [trait] if transient else []}
                response = await client.post("/api/v1/identities/", json=body, headers=headers)
                assert response.status_code == 200, response.text

            for _ in range(20):
                await asyncio.gather(*(call(i % 2 == 0) for i in range(16)))
                await call(False)
                response = await client.get(
                    "/api/v1/identities/?identifier=shared", headers=headers
                )
                current = {
                    f["feature"]["name"]: property_value(f["enabled"], f["feature_state_value"])
                    for f in response.json()["flags"]
                }
                assert latest_recorded(state, heap, "shared") == current

    asyncio.run(run())


def latest_recorded(state: AppState, integration_id: int, identifier: str) -> Any:
    with state.db.read_session() as session:
        flags = session.scalar(
            select(RecordedEvaluation.flags)
            .join(OutboxDelivery, OutboxDelivery.evaluation_id == RecordedEvaluation.id)
            .where(
                OutboxDelivery.integration_id == integration_id,
                RecordedEvaluation.identifier == identifier,
            )
            .order_by(RecordedEvaluation.evaluated_at.desc(), RecordedEvaluation.id.desc())
            .limit(1)
        )
    return None if flags is None else orjson.loads(flags)
