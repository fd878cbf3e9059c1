"""The webhook destination through the app: configured by the admin API, its records carrying
traits, flags and segments (Heap's unchanged beside it), send on change comparing all of it,
and a dispatcher delivering signed requests to the fake receiver."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from ensign.services import test_events
from ensign.storage.models import OutboxDelivery, RecordedEvaluation
from ensign.web.deps import AppState
from tests.conftest import Organisation
from tests.delivery.dispatching import deliver
from tests.fakes.fixtures import Env, Served, configure

SECRET = "whsec-records-test"


def identify(client: TestClient, env: Env, identifier: str, traits: dict[str, Any]) -> None:
    body = {
        "identifier": identifier,
        "traits": [{"trait_key": k, "trait_value": v} for k, v in traits.items()],
    }
    response = client.post(
        "/api/v1/identities/", json=body, headers={"X-Environment-Key": env.server_key}
    )
    assert response.status_code == 200, response.text


def records(state: AppState, integration_id: int) -> list[str]:
    """The flags text recorded for an integration, oldest first."""
    with state.db.read_session() as session:
        return list(
            session.scalars(
                select(RecordedEvaluation.flags)
                .join(OutboxDelivery, OutboxDelivery.evaluation_id == RecordedEvaluation.id)
                .where(OutboxDelivery.integration_id == integration_id)
                .order_by(OutboxDelivery.id)
            )
        )


def test_admin_api__url_alias_secret__created_write_only_without_api_key(
    client: TestClient, organisation: Organisation, env: Env
) -> None:
    path = f"/api/v1/environments/{env.client_key}/integrations/webhook/"
    # Without a secret: refused, naming the field
    missing = client.post(
        path, headers=organisation.headers, json={"url": "https://hooks.example/in"}
    )
    assert missing.status_code == 400
    assert "secret" in missing.text
    # With one, and no api_key at all
    created = client.post(
        path,
        headers=organisation.headers,
        json={"url": "https://hooks.example/in/", "secret": SECRET},
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["url"] == body["base_url"] == "https://hooks.example/in"
    assert body["secret_set"] is True
    assert SECRET not in created.text
    # An update leaving the secret out keeps it
    updated = client.patch(
        f"{path}{body['id']}/", headers=organisation.headers, json={"enabled": False}
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["secret_set"] is True


@pytest.mark.parametrize(
    "address", ["https://127.0.0.1:8080/hook", "https://10.0.0.7/hook", "https://[::1]/hook"]
)
def test_admin_api__private_url_without_allow_private__400(
    strict_client: tuple[TestClient, AppState], organisation: Organisation, env: Env, address: str
) -> None:
    client, _ = strict_client
    response = client.post(
        f"/api/v1/environments/{env.client_key}/integrations/webhook/",
        headers=organisation.headers,
        json={"url": address, "secret": SECRET},
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid"
    assert "base_url: must resolve only to public addresses" in response.json()["detail"]


def test_identify__heap_and_webhook__heap_record_unchanged_webhook_has_context(
    client: TestClient, state: AppState, env: Env
) -> None:
    # Given Heap (every flag) and a webhook sending two features
    heap = configure(state, env, "heap", "https://heap.example")
    webhook = configure(
        state,
        env,
        "webhook",
        "https://hooks.example/in",
        secret=SECRET,
        feature_names=["banner", "beta"],
    )
    # When an adult gold user is identified
    identify(client, env, "ann", {"plan": "gold", "age": 30})
    # Then Heap's record is the values sent, as before, to the byte
    (heap_record,) = records(state, heap)
    checkout = orjson.loads(heap_record)["checkout"]  # the multivariate split's pick
    assert (
        heap_record
        == orjson.dumps(
            {"banner": "hello adult", "beta": True, "checkout": checkout, "limit": 10, "zero": 0}
        ).decode()
    )
    # And the webhook's holds the traits, the selected flags in full and both segments
    (webhook_record,) = records(state, webhook)
    assert orjson.loads(webhook_record) == {
        "traits": {"age": 30, "plan": "gold"},
        "flags": [
            {"feature": "banner", "enabled": True, "value": "hello adult"},
            {"feature": "beta", "enabled": True, "value": None},
        ],
        "segments": ["adults", "gold_users"],
    }


def test_send_on_change__webhook__a_trait_change_alone_is_sent(
    client: TestClient, state: AppState, env: Env
) -> None:
    # Given Heap and a webhook, both sending on change
    heap = configure(state, env, "heap", "https://heap.example")
    webhook = configure(state, env, "webhook", "https://hooks.example/in", secret=SECRET)
    identify(client, env, "bob", {"plan": "free"})
    # When the same call comes again, then one with a trait that changes no flag
    identify(client, env, "bob", {"plan": "free"})
    identify(client, env, "bob", {"plan": "free", "colour": "red"})
    # Then Heap records once (its flags never changed); the webhook, whose items carry the
    # traits, records the change too
    assert len(records(state, heap)) == 1
    sent = [orjson.loads(r)["traits"] for r in records(state, webhook)]
    assert sent == [{"plan": "free"}, {"colour": "red", "plan": "free"}]


def test_dispatcher__identify_and_test_event__signed_items_received_once(
    client: TestClient, state: AppState, env: Env, vendors: Served
) -> None:
    # Given a webhook to the fake receiver, which fails twice first
    vendors.webhook.secrets["env-a"] = SECRET
    webhook = configure(state, env, "webhook", f"{vendors.webhook_url}/env-a", secret=SECRET)
    vendors.webhook.script.fail(1, 503).fail(1, 429, headers={"Retry-After": "0"})
    # When two users are identified, and a test event is asked for
    identify(client, env, "ann", {"plan": "gold"})
    identify(client, env, "bob", {"age": 12})
    deliver(state, until=lambda: len(vendors.webhook.received("env-a")) == 2)
    with state.units.write() as unit:
        test_events.request_test_event(unit, env.principal, env.client_key, "webhook", webhook)
    deliver(state, until=lambda: len(vendors.webhook.received("env-a")) == 3)
    # Then each item arrived once, signed, with its identity, traits, flags and segments
    items = {i["identity"]: i for i in vendors.webhook.received("env-a")}
    assert items["ann"]["traits"] == {"plan": "gold"}
    assert items["ann"]["segments"] == ["gold_users"]
    assert {"feature": "banner", "enabled": True, "value": "hello gold"} in items["ann"]["flags"]
    assert items["bob"]["segments"] == []
    assert items["ensign-test-event"]["flags"] == [
        {"feature": "ensign_test_event", "enabled": True, "value": "sent from Ensign"}
    ]
    assert vendors.webhook.refused == []
    assert vendors.webhook.duplicates == 0


def test_dispatcher__exposure_and_custom_event__their_own_item_types(
    client: TestClient, state: AppState, organisation: Organisation, env: Env, vendors: Served
) -> None:
    # Given a webhook taking events too, and an experiment running on "checkout"
    vendors.webhook.secrets["env-a"] = SECRET
    configure(state, env, "webhook", f"{vendors.webhook_url}/env-a", secret=SECRET, events=True)
    flags = client.get("/api/v1/flags/", headers={"X-Environment-Key": env.client_key}).json()
    feature = next(f["feature"]["id"] for f in flags if f["feature"]["name"] == "checkout")
    started = client.post(
        f"/api/v1/environments/{env.client_key}/experiments/",
        headers=organisation.headers,
        json={"name": "Checkout test", "feature": feature},
    )
    assert started.status_code == 201, started.text
    # When a user is identified (exposed) and the SDK reports a purchase
    identify(client, env, "ann", {})
    event = {
        "event": "purchase",
        "identifier": "ann",
        "value": "9.5",
        "metadata": {"plan": "gold"},
        "timestamp": int(time.time() * 1000),
    }
    sent = client.post(
        "/api/v1/events", json={"events": [event]}, headers={"X-Environment-Key": env.client_key}
    )
    assert sent.status_code == 202, sent.text
    deliver(state, until=lambda: len(vendors.webhook.received("env-a")) == 3)
    # Then the flags, the exposure and the event arrive, each as its own type
    by_type = {i["type"]: i for i in vendors.webhook.received("env-a")}
    assert set(by_type) == {"flags", "exposure", "event"}
    assert by_type["exposure"]["identity"] == "ann"
    assert by_type["exposure"]["experiment"] == "Checkout test"
    assert by_type["exposure"]["feature"] == "checkout"
    assert by_type["event"]["event"] == "purchase"
    assert by_type["event"]["properties"] == {"plan": "gold", "value": "9.5"}
    assert vendors.webhook.refused == []
