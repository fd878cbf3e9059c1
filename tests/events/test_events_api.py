"""`POST /v1/events` in process: the SDK's batch shape, limits, whole-batch refusal, dedupe,
and delivery of custom events to the fake Heap and Mixpanel."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from flagsmith import Flagsmith
from flagsmith.offline_handlers import LocalFileHandler

from ensign.delivery.housekeeping import Housekeeper, RetentionSettings
from ensign.services.event_rates import EventRates
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
        assert response.json() == {"accepted": 1, "duplicates": 0, "refused": []}


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
def test_events__one_bad_event__refused_alone_naming_index_field_and_reason(
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
    # The SDK drops a batch once answered: the good events are kept, the bad one named
    assert response.status_code == 202, response.text
    body = response.json()
    assert (body["accepted"], body["duplicates"]) == (2, 0)
    [refused] = body["refused"]
    assert (refused["index"], f"events[1].{refused['field']}") == (1, named)
    assert refused["reason"]
    counts = counters(client, env, organisation.headers)
    assert counts["received"] == 2
    assert counts["rejected"] == 1
    deliver(state, lambda: len(vendors.heap.events) == 2)
    assert {e["identity"] for e in vendors.heap.events} == {"good-1", "good-2"}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"not json", "JSON parse error"),
        (b"[1, 2]", "The body must be an object"),
        (b'{"events": {"a": 1}}', "events: must be a list."),
        (b'{"batch": []}', "The body must be an object"),
    ],
)
def test_events__body_not_a_batch__400_detail(
    client: TestClient, env: Env, body: bytes, expected: str
) -> None:
    response = client.post(
        "/api/v1/events",
        content=body,
        headers={"X-Environment-Key": env.client_key, "Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert response.json()["detail"].startswith(expected)


@pytest.mark.parametrize(
    ("raw_event", "field", "reason"),
    [
        ('"metadata": ' + "[" * 5000 + "]" * 5000, "metadata", "nested more than"),
        ('"metadata": {"a": ' + "[" * 40 + "]" * 40 + "}", "metadata", "nested more than"),
        ('"value": 1e400', "value", "not finite"),
        ('"value": -1e99999', "value", "not finite"),
        ('"value": 123456789012345678901234567890', "value", "integer past 64 bits"),
        ('"metadata": {"n": -' + "9" * 5000 + "}", "metadata", "integer past 64 bits"),
        ('"traits": {"n": 18446744073709551616}', "traits", "integer past 64 bits"),
        ('"timestamp": 1e300', "timestamp", "out of range"),
    ],
)
def test_events__odd_json_in_one_event__refused_alone_never_5xx(
    client: TestClient, env: Env, organisation: Any, raw_event: str, field: str, reason: str
) -> None:
    good = orjson.dumps(sdk_event(identifier="fine")).decode()
    odd = '{"event": "purchase", "identifier": "odd", "timestamp": 1, ' + raw_event + "}"
    if '"timestamp"' in raw_event:
        odd = '{"event": "purchase", "identifier": "odd", ' + raw_event + "}"
    response = client.post(
        "/api/v1/events",
        content=f'{{"events": [{good}, {odd}]}}'.encode(),
        headers={"X-Environment-Key": env.client_key, "Content-Type": "application/json"},
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["accepted"] == 1
    [refused] = body["refused"]
    assert (refused["index"], refused["field"]) == (1, field)
    assert reason in refused["reason"]
    assert counters(client, env, organisation.headers)["rejected"] == 1


def test_events__too_many_events__the_extra_ones_refused(client: TestClient, env: Env) -> None:
    response = post(client, env.client_key, [sdk_event(timestamp=i) for i in range(1001)])
    assert response.status_code == 202
    body = response.json()
    assert body["accepted"] == 1000
    assert [(r["index"], r["field"]) for r in body["refused"]] == [(1000, "")]
    assert "at most 1000 events" in body["refused"][0]["reason"]


def test_events__same_batch_twice__second_stores_nothing(
    client: TestClient, env: Env, organisation: Any, state: AppState, vendors: Served
) -> None:
    configure(state, env, "heap", vendors.heap_url, events=True)
    configure(state, env, "mixpanel", vendors.mixpanel_url, events=True)
    batch = [sdk_event(identifier=f"u{i}", value=str(i)) for i in range(10)]
    assert post(client, env.client_key, batch).json() == {
        "accepted": 10,
        "duplicates": 0,
        "refused": [],
    }
    # The SDK re-queues the events at the front of its buffer: the retry carries more.
    retry = [*batch, sdk_event(identifier="u10")]
    assert post(client, env.client_key, retry).json() == {
        "accepted": 1,
        "duplicates": 10,
        "refused": [],
    }
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
    assert post(client, env.client_key, events).json() == {
        "accepted": 4,
        "duplicates": 0,
        "refused": [],
    }
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
    labels = f'environment_id="{env.environment_id}"'
    assert f'ensign_sdk_events_total{{{labels},counter="received"}} 2' in text
    assert f'ensign_sdk_events_total{{{labels},counter="skipped"}} 1' in text
    # `/metrics` may be open: no environment's keys in it.
    assert env.client_key not in text
    assert env.server_key not in text


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


def served_variants(client: TestClient, env: Env, tmp_path: Path, *users: str) -> dict[str, Any]:
    """What the official SDK's local evaluation of Ensign's document serves each user."""
    response = client.get(
        "/api/v1/environment-document/", headers={"X-Environment-Key": env.server_key}
    )
    assert response.status_code == 200, response.text
    path = tmp_path / "document.json"
    path.write_bytes(response.content)
    local = Flagsmith(offline_mode=True, offline_handler=LocalFileHandler(str(path)))
    return {u: local.get_identity_flags(u).get_flag("checkout").variant for u in users}


def test_events__exposures__one_per_user_and_variant_to_both_vendors(
    client: TestClient,
    env: Env,
    organisation: Any,
    state: AppState,
    vendors: Served,
    tmp_path: Path,
) -> None:
    configure(state, env, "heap", vendors.heap_url)
    configure(state, env, "mixpanel", vendors.mixpanel_url)
    experiment_id = start_experiment(client, env, state, organisation.headers)
    variants = served_variants(client, env, tmp_path, "u1", "u2")
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

    # Two SDK processes report the same exposure at different times, and one claims a variant
    # the user was not served
    other = next(v for v in ("one", "two", "control") if v != variants["u2"])
    batch = [
        exposure("u1", variants["u1"], now - 5000, experiment_id=experiment_id),
        exposure("u1", variants["u1"], now - 1000),
        exposure("u2", variants["u2"], now - 4000),
        exposure("u2", other, now - 3000),
    ]
    assert post(client, env.client_key, batch).json() == {
        "accepted": 4,
        "duplicates": 0,
        "refused": [],
    }
    deliver(state, lambda: len(vendors.heap.events) == 2 and len(vendors.mixpanel.events) == 2)
    time.sleep(0.3)
    started = sorted(
        (e["properties"]["distinct_id"], e["properties"]["Variant name"], e["properties"]["time"])
        for e in vendors.mixpanel.events
    )
    assert started == [("u1", variants["u1"], now - 5000), ("u2", variants["u2"], now - 4000)]
    assert {e["event"] for e in vendors.mixpanel.events} == {"$experiment_started"}
    assert {e["properties"]["Experiment name"] for e in vendors.mixpanel.events} == {
        "Checkout test"
    }
    assert {e["event"] for e in vendors.heap.events} == {"Experiment Viewed"}
    assert sorted(
        (e["identity"], e["properties"]["Variant name"]) for e in vendors.heap.events
    ) == [("u1", variants["u1"]), ("u2", variants["u2"])]
    assert vendors.mixpanel.duplicate_events == 0
    counts = counters(client, env, organisation.headers)
    assert counts["exposures"] == 4
    assert counts["unmatched"] == 1
    assert counts["wrong_variant"] == 1
    refused = counts["unmatched_exposures"][0]
    assert (refused["identifier"], refused["variant"], refused["reason"]) == (
        "u2",
        other,
        "wrong_variant",
    )
    assert refused["served_variant"] == variants["u2"]


def test_events__exposure_with_traits__checked_with_them_else_the_stored_ones(
    client: TestClient, env: Env, organisation: Any, state: AppState
) -> None:
    # Given an experiment limited to adults, and a stored identity aged 30
    segments = client.get(
        f"/api/v1/projects/{state.cache.for_key(env.client_key).project_id}/segments/",  # type: ignore[union-attr]
        headers=organisation.headers,
    ).json()["results"]
    adults = next(s["id"] for s in segments if s["name"] == "adults")
    feature = state.cache.for_key(env.client_key).features["checkout"].id  # type: ignore[union-attr]
    response = client.post(
        f"/api/v1/environments/{env.client_key}/experiments/",
        json={"name": "Adults", "feature": feature, "segment": adults},
        headers=organisation.headers,
    )
    assert response.status_code == 201, response.text
    state.cache.check_now()
    identified = client.post(
        "/api/v1/identities/",
        json={"identifier": "grown-up", "traits": [{"trait_key": "age", "trait_value": 30}]},
        headers={"X-Environment-Key": env.client_key},
    ).json()
    flag = next(f for f in identified["flags"] if f["feature"]["name"] == "checkout")
    assert flag["metadata"]["experiment"]["in_experiment"] is True

    def exposure(identifier: str, traits: dict[str, Any] | None, at: int) -> dict[str, Any]:
        return sdk_event(
            "$flag_exposure",
            feature_name="checkout",
            identifier=identifier,
            value=flag["variant"],
            traits=traits,
            timestamp=at,
        )

    now = int(time.time() * 1000)
    # When the SDK reports the same identity as a child (its own traits), as stored (none
    # sent), and an unknown identity without traits
    batch = [
        exposure("grown-up", {"age": 10}, now - 3),
        exposure("grown-up", None, now - 2),
        exposure("stranger", None, now - 1),
    ]
    assert post(client, env.client_key, batch).status_code == 202
    # Then the child's claim and the stranger's are refused as outside the experiment, and the
    # stored adult's stands
    counts = counters(client, env, organisation.headers)
    assert counts["not_in_experiment"] == 2
    assert counts["unmatched"] == 2
    assert {e["identifier"] for e in counts["unmatched_exposures"]} == {"grown-up", "stranger"}


def test_events__over_the_keys_rate__429_retry_after_and_nothing_stored(
    client: TestClient, env: Env, organisation: Any, state: AppState
) -> None:
    # Given a key allowed 5 events a second in bursts up to 20 (ENSIGN_EVENTS_PER_SECOND,
    # ENSIGN_EVENTS_BURST)
    state.event_rates = EventRates(per_second=5, burst=20)
    first = [sdk_event(identifier=f"a{i}") for i in range(15)]
    second = [sdk_event(identifier=f"b{i}") for i in range(15)]
    assert post(client, env.client_key, first).status_code == 202
    # When the next batch would pass the burst
    response = post(client, env.client_key, second)
    # Then it is refused whole with a time to retry after, and nothing of it is stored
    assert response.status_code == 429, response.text
    assert 1 <= int(response.headers["Retry-After"]) <= 4
    assert "detail" in response.json()
    assert counters(client, env, organisation.headers)["received"] == 15
    # Another key of the same environment has its own allowance; the SDK's retry later passes
    assert post(client, env.server_key, second[:5]).status_code == 202
    time.sleep(int(response.headers["Retry-After"]) + 1)
    retried = post(client, env.client_key, second)
    assert retried.status_code == 202, retried.text
    assert retried.json()["accepted"] == 10
    assert retried.json()["duplicates"] == 5
