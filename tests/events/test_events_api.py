"""`POST /v1/events` in process: the SDK's batch shape, limits, whole-batch refusal, dedupe,
and delivery of custom events to the fake Heap and Mixpanel."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ensign.delivery.housekeeping import Housekeeper, RetentionSettings
from ensign.web.deps import AppState
from tests.delivery.dispatching import deliver
from tests.fakes.fixtures import Env, Served, configure


def sdk_event(name: str = "purchase", **fields: Any) -> dict[str, Any]:
    """An event as the Python SDK 6.3 buffers it."""
    event = {
        "event": name,
        "feature_name": None,
        "identifier": "user-1",
        "value": "9.99",
        "traits": None,
        "metadata": {"sdk_version": "6.3.0"},
        "timestamp": int(time.time() * 1000),
    }
    event.update(fields)
    return event


def post(client: TestClient, key: str, events: list[Any], path: str = "/api/v1/events") -> Any:
    return client.post(
        path,
        json={"events": events},
        headers={"X-Environment-Key": key, "Content-Type": "application/json; charset=utf-8"},
    )


def counters(client: TestClient, env: Env, headers: dict[str, str]) -> dict[str, Any]:
    response = client.get(f"/api/v1/environments/{env.client_key}/events/", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.parametrize("path", ["/api/v1/events", "/api/v1/events/", "/v1/events", "/v1/events/"])
def test_events__every_path_and_both_keys__accepted_with_202(
    client: TestClient, env: Env, path: str
) -> None:
    for key in (env.client_key, env.server_key):
        response = post(
            client, key, [sdk_event(timestamp=int(time.time() * 1000) + len(key))], path
        )
        assert response.status_code == 202, response.text
        assert response.json() == {"accepted": 1, "duplicates": 0}


def test_events__unknown_key__403_detail(client: TestClient) -> None:
    response = post(client, "nope", [sdk_event()])
    assert response.status_code == 403
    assert "detail" in response.json()


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        ({"event": "$pageview"}, "events[1].event"),
        ({"event": ""}, "events[1].event"),
        ({"event": "x" * 256}, "events[1].event"),
        ({"timestamp": "yesterday"}, "events[1].timestamp"),
        ({"timestamp": None}, "events[1].timestamp"),
        ({"identifier": 42}, "events[1].identifier"),
        ({"value": {"amount": 1}}, "events[1].value"),
        ({"metadata": [1, 2]}, "events[1].metadata"),
        ({"metadata": {f"k{i}": i for i in range(101)}}, "events[1].metadata"),
        ({"event": "$flag_exposure", "feature_name": None}, "events[1].feature_name"),
        ({"traits": "gold"}, "events[1].traits"),
        ({"identifier": "a\x00b"}, "events[1].identifier"),
    ],
)
def test_events__one_bad_event__whole_batch_refused_naming_index_and_field(
    client: TestClient,
    env: Env,
    organisation: Any,
    state: AppState,
    vendors: Served,
    bad: dict[str, Any],
    named: str,
) -> None:
    configure(state, env, "heap", vendors.heap_url, events=True)
    events = [sdk_event(identifier="good-1"), sdk_event(**bad), sdk_event(identifier="good-2")]
    response = post(client, env.client_key, events)
    assert response.status_code == 400, response.text
    body = response.json()
    assert list(body) == ["detail"]
    assert body["detail"].startswith(named + ":"), body
    counts = counters(client, env, organisation.headers)
    assert counts["received"] == 0
    assert counts["rejected"] == 3
    # Nothing of the batch was stored: sending the good events alone records them anew.
    response = post(client, env.client_key, [events[0], events[2]])
    assert response.json() == {"accepted": 2, "duplicates": 0}


def test_events__too_many_events__refused(client: TestClient, env: Env) -> None:
    response = post(client, env.client_key, [sdk_event(timestamp=i) for i in range(1001)])
    assert response.status_code == 400
    assert "at most 1000 events" in response.json()["detail"]


def test_events__same_batch_twice__second_stores_nothing(
    client: TestClient, env: Env, organisation: Any, state: AppState, vendors: Served
) -> None:
    configure(state, env, "heap", vendors.heap_url, events=True)
    configure(state, env, "mixpanel", vendors.mixpanel_url, events=True)
    batch = [sdk_event(identifier=f"u{i}", value=str(i)) for i in range(10)]
    assert post(client, env.client_key, batch).json() == {"accepted": 10, "duplicates": 0}
    # The SDK re-queues the events at the front of its buffer: the retry carries more.
    retry = [*batch, sdk_event(identifier="u10")]
    assert post(client, env.client_key, retry).json() == {"accepted": 1, "duplicates": 10}
    deliver(state, lambda: len(vendors.heap.events) == 11 and len(vendors.mixpanel.events) == 11)
    assert vendors.heap.duplicates == 0
    assert vendors.mixpanel.duplicate_events == 0
    counts = counters(client, env, organisation.headers)
    assert counts["received"] == 11
    assert counts["custom"] == 11
    assert counts["duplicates"] == 10


def test_events__custom_event__heap_and_mixpanel_receive_it_as_sent(
    client: TestClient, env: Env, state: AppState, vendors: Served
) -> None:
    configure(state, env, "heap", vendors.heap_url, events=True)
    configure(state, env, "mixpanel", vendors.mixpanel_url, events=True)
    at = int(time.time() * 1000) - 60_000
    metadata = {"sdk_version": "6.3.0", "plan": "gold", "nested": {"x": 1}, "token": "evil"}
    event = sdk_event(identifier="buyer-7", value="19.5", metadata=metadata, timestamp=at)
    assert post(client, env.client_key, [event]).status_code == 202
    deliver(state, lambda: len(vendors.heap.events) == 1 and len(vendors.mixpanel.events) == 1)
    heap = vendors.heap.events[0]
    assert heap["event"] == "purchase"
    assert heap["identity"] == "buyer-7"
    assert heap["properties"] == {
        "sdk_version": "6.3.0",
        "plan": "gold",
        "token": "evil",
        "value": "19.5",
    }
    assert heap["timestamp"].startswith(time.strftime("%Y-%m-%dT%H:%M", time.gmtime(at / 1000)))
    mixpanel = vendors.mixpanel.events[0]
    assert mixpanel["event"] == "purchase"
    props = mixpanel["properties"]
    assert props["distinct_id"] == "buyer-7"
    assert props["token"] == "mixpanel-key"
    assert props["time"] == at
    assert props["$insert_id"] == heap["idempotency_key"]
    assert props["value"] == "19.5"
    assert props["plan"] == "gold"


def test_events__integration_without_events__receives_nothing(
    client: TestClient, env: Env, organisation: Any, state: AppState, vendors: Served
) -> None:
    configure(state, env, "heap", vendors.heap_url)
    configure(state, env, "mixpanel", vendors.mixpanel_url, events=True)
    assert post(client, env.client_key, [sdk_event()]).status_code == 202
    deliver(state, lambda: len(vendors.mixpanel.events) == 1)
    assert vendors.heap.events == []


def test_events__no_identifier_and_exposures__counted_not_sent(
    client: TestClient, env: Env, organisation: Any, state: AppState, vendors: Served
) -> None:
    configure(state, env, "mixpanel", vendors.mixpanel_url, events=True)
    events = [
        sdk_event(identifier=None),
        sdk_event(identifier=""),
        sdk_event("$flag_exposure", feature_name="banner", value="control"),
        sdk_event(identifier="u-sent"),
    ]
    assert post(client, env.client_key, events).json() == {"accepted": 4, "duplicates": 0}
    deliver(state, lambda: len(vendors.mixpanel.events) == 1)
    assert vendors.mixpanel.events[0]["properties"]["distinct_id"] == "u-sent"
    counts = counters(client, env, organisation.headers)
    assert counts["skipped"] == 2
    assert counts["exposures"] == 1
    assert counts["unmatched"] == 1
    assert counts["custom"] == 3
    assert counts["unmatched_exposures"][0]["feature_name"] == "banner"
    assert counts["unmatched_exposures"][0]["variant"] == "control"


def test_events__timestamps_out_of_range__receive_time_and_flagged(
    client: TestClient, env: Env, organisation: Any, state: AppState, vendors: Served
) -> None:
    configure(state, env, "mixpanel", vendors.mixpanel_url, events=True)
    now_ms = int(time.time() * 1000)
    old = now_ms - 6 * 24 * 3600 * 1000
    future = now_ms + 3600 * 1000
    events = [
        sdk_event(identifier="old", timestamp=old),
        sdk_event(identifier="f", timestamp=future),
    ]
    assert post(client, env.client_key, events).status_code == 202
    deliver(state, lambda: len(vendors.mixpanel.events) == 2)
    for event in vendors.mixpanel.events:
        props = event["properties"]
        assert abs(props["time"] - now_ms) < 60_000
        assert props["sdk_timestamp"] in (old, future)
    assert counters(client, env, organisation.headers)["time_adjusted"] == 2


def test_events__metrics__counters_per_environment(client: TestClient, env: Env) -> None:
    post(client, env.client_key, [sdk_event(identifier=None), sdk_event()])
    text = client.get("/metrics").text
    assert f'ensign_sdk_events_total{{environment="{env.client_key}",counter="received"}} 2' in text
    assert f'ensign_sdk_events_total{{environment="{env.client_key}",counter="skipped"}} 1' in text


def test_events__keys_past_their_time__forgotten_by_housekeeping(
    client: TestClient, env: Env, state: AppState
) -> None:
    batch = [sdk_event()]
    post(client, env.client_key, batch)
    assert post(client, env.client_key, batch).json()["duplicates"] == 1
    # When housekeeping runs after the dedupe window
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=49)
    result = Housekeeper(state.db, RetentionSettings(), clock=lambda: later).run()
    # Then the key is gone, and the same event would be taken as new
    assert result.event_keys_forgotten == 1
    assert post(client, env.client_key, batch).json()["accepted"] == 1


def start_experiment(client: TestClient, env: Env, state: AppState, headers: dict[str, str]) -> int:
    feature = state.cache.for_key(env.client_key)
    assert feature is not None
    response = client.post(
        f"/api/v1/environments/{env.client_key}/experiments/",
        json={"name": "Checkout test", "feature": feature.features["checkout"].id},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    state.cache.check_now()
    return int(response.json()["id"])


def test_events__exposures__one_per_user_and_variant_to_both_vendors(
    client: TestClient, env: Env, organisation: Any, state: AppState, vendors: Served
) -> None:
    configure(state, env, "heap", vendors.heap_url)
    configure(state, env, "mixpanel", vendors.mixpanel_url)
    experiment_id = start_experiment(client, env, state, organisation.headers)
    now = int(time.time() * 1000)

    def exposure(identifier: str, variant: str, at: int, **metadata: Any) -> dict[str, Any]:
        return sdk_event(
            "$flag_exposure",
            feature_name="checkout",
            identifier=identifier,
            value=variant,
            timestamp=at,
            metadata={"sdk_version": "6.3.0", **metadata},
        )

    # Two SDK processes report the same exposure at different times, and one user changes variant
    batch = [
        exposure("u1", "express", now - 5000, experiment_id=experiment_id),
        exposure("u1", "express", now - 1000),
        exposure("u2", "control", now - 4000),
        exposure("u2", "one_page", now - 3000),
    ]
    assert post(client, env.client_key, batch).json() == {"accepted": 4, "duplicates": 0}
    deliver(state, lambda: len(vendors.heap.events) == 3 and len(vendors.mixpanel.events) == 3)
    started = sorted(
        (e["properties"]["distinct_id"], e["properties"]["Variant name"], e["properties"]["time"])
        for e in vendors.mixpanel.events
    )
    assert started == [
        ("u1", "express", now - 5000),
        ("u2", "control", now - 4000),
        ("u2", "one_page", now - 3000),
    ]
    assert {e["event"] for e in vendors.mixpanel.events} == {"$experiment_started"}
    assert {e["properties"]["Experiment name"] for e in vendors.mixpanel.events} == {
        "Checkout test"
    }
    assert {e["event"] for e in vendors.heap.events} == {"Experiment Viewed"}
    assert sorted(
        (e["identity"], e["properties"]["Variant name"]) for e in vendors.heap.events
    ) == [
        ("u1", "express"),
        ("u2", "control"),
        ("u2", "one_page"),
    ]
    assert vendors.mixpanel.duplicate_events == 0
    counts = counters(client, env, organisation.headers)
    assert counts["exposures"] == 4
    assert counts["unmatched"] == 0
