"""Amplitude's requests and the reading of its answers, purely; and the requests built here
accepted by the strict fake, in process."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt

import httpx
import orjson
import pytest

from ensign.integrations.base import Evaluation, Outcome, PreparedBatch, Target
from ensign.integrations.vendors.amplitude.requests import DESTINATION as AMPLITUDE
from ensign.integrations.vendors.amplitude.requests import (
    MAX_BODY_BYTES,
    MAX_ID_CHARS,
    SPLIT_PAUSE_SECONDS,
    THROTTLE_PAUSE_SECONDS,
)
from tests.fakes.amplitude import FakeAmplitude

AT = dt.datetime(2026, 11, 26, 19, 0, 0, 123000, tzinfo=dt.UTC)
AT_MS = 1795719600123
TARGET = Target("amp-key", "https://api2.amplitude.com/")


def flags(key: str, identity: str = "user-1", values: str = '{"checkout":"express"}') -> Evaluation:
    return Evaluation(key, identity, {}, AT, values_json=values)


def exposure(key: str, identity: str = "user-1", *, feature: str | None = "checkout") -> Evaluation:
    payload: dict[str, object] = {"experiment": "Checkout test", "variant": "two"}
    if feature is not None:
        payload["feature"] = feature
    return Evaluation(
        key, identity, {}, AT, values_json=orjson.dumps(payload).decode(), kind="exposure"
    )


def event(key: str, identity: str = "user-1") -> Evaluation:
    payload = {"event": "purchase", "properties": {"value": "42.5", "plan": "gold"}}
    return Evaluation(
        key, identity, {}, AT, values_json=orjson.dumps(payload).decode(), kind="event"
    )


def test_amplitude_build__every_kind__exact_request() -> None:
    batch = AMPLITUDE.build(
        TARGET,
        [
            flags("k1", values='{"checkout":"express","limit":10,"beta":false}'),
            exposure("k2", identity="u2"),
            event("k3", identity="a"),
        ],
    )

    assert batch.request is not None
    assert batch.request.method == "POST"
    assert batch.request.url == "https://api2.amplitude.com/2/httpapi"
    assert batch.request.headers["Content-Type"] == "application/json"
    assert orjson.loads(batch.request.body) == {
        "api_key": "amp-key",
        "events": [
            {
                "event_type": "$identify",
                "user_id": "user-1",
                "user_properties": {"$set": {"checkout": "express", "limit": 10, "beta": False}},
                "time": AT_MS,
                "insert_id": "k1",
            },
            {
                "event_type": "$exposure",
                "user_id": "u2",
                "event_properties": {
                    "flag_key": "checkout",
                    "variant": "two",
                    "experiment_key": "Checkout test",
                },
                "time": AT_MS,
                "insert_id": "k2",
            },
            {
                "event_type": "purchase",
                "user_id": "a",
                "event_properties": {"value": "42.5", "plan": "gold"},
                "time": AT_MS,
                "insert_id": "k3",
            },
        ],
        "options": {"min_id_length": 1},
    }
    assert batch.sent == ("k1", "k2", "k3")
    assert batch.identities == ("user-1", "u2", "a")
    assert batch.rejected == {}
    assert batch.deferred == ()


def test_amplitude_build__exposure_recorded_without_feature__no_flag_key() -> None:
    batch = AMPLITUDE.build(TARGET, [exposure("k1", feature=None)])

    assert batch.request is not None
    sent = orjson.loads(batch.request.body)["events"][0]["event_properties"]
    assert sent == {"variant": "two", "experiment_key": "Checkout test"}


def test_amplitude_build__identifier_too_long_or_empty__rejected_with_reason() -> None:
    batch = AMPLITUDE.build(
        TARGET, [flags("k1", "x" * (MAX_ID_CHARS + 1)), flags("k2", ""), flags("k3", "x" * 1024)]
    )

    assert batch.sent == ("k3",)
    assert "longer than 1024 characters" in batch.rejected["k1"]
    assert "empty identifier" in batch.rejected["k2"]


def test_amplitude_build__past_one_megabyte__rest_deferred_in_order() -> None:
    big = orjson.dumps({"banner": "b" * 100_000}).decode()
    evaluations = [flags(f"k{i}", values=big) for i in range(25)]

    batch = AMPLITUDE.build(TARGET, evaluations)

    assert batch.request is not None
    assert MAX_BODY_BYTES - 110_000 < len(batch.request.body) < MAX_BODY_BYTES
    assert len(orjson.loads(batch.request.body)["events"]) == len(batch.sent) == 9
    assert batch.sent + batch.deferred == tuple(e.key for e in evaluations)


def test_amplitude_build__one_event_over_the_limit__rejected_not_deferred() -> None:
    huge = orjson.dumps({"banner": "b" * MAX_BODY_BYTES}).decode()

    batch = AMPLITUDE.build(TARGET, [flags("k1", values=huge), flags("k2")])

    assert batch.sent == ("k2",)
    assert "1 MB" in batch.rejected["k1"]
    assert batch.deferred == ()


def test_amplitude_build__more_than_2000__refused() -> None:
    with pytest.raises(ValueError, match="2000"):
        AMPLITUDE.build(TARGET, [flags(f"k{i}") for i in range(2001)])


def batch_of(*users: str) -> PreparedBatch:
    return AMPLITUDE.build(TARGET, [flags(f"k{i}", user) for i, user in enumerate(users)])


def test_amplitude_classify__200__delivered() -> None:
    body = b'{"code":200,"events_ingested":2,"payload_size_bytes":50,"server_upload_time":1}'

    outcome = AMPLITUDE.classify(200, {}, body, batch_of("a", "b"))

    assert outcome.outcome is Outcome.DELIVERED
    assert outcome.by_key == {}


def test_amplitude_classify__400_listing_events__those_fail_the_rest_go_again_at_once() -> None:
    body = orjson.dumps(
        {
            "code": 400,
            "error": "Request had invalid events",
            "events_with_invalid_fields": {"time": [1]},
            "events_with_missing_fields": {"event_type": [3]},
            "silenced_events": [4],
        }
    )

    outcome = AMPLITUDE.classify(400, {}, body, batch_of("a", "b", "c", "d", "e"))

    assert outcome.outcome is Outcome.RETRY
    assert outcome.retry_after_seconds == 0
    assert set(outcome.by_key) == {"k1", "k3", "k4"}
    assert all(o.outcome is Outcome.FAILED for o in outcome.by_key.values())
    assert "invalid field `time`" in outcome.by_key["k1"].message
    assert "missing field `event_type`" in outcome.by_key["k3"].message
    assert "silenced" in outcome.by_key["k4"].message
    assert "3 of 5" in outcome.message


def test_amplitude_classify__400_listing_every_event__failed() -> None:
    body = b'{"code":400,"error":"bad","events_with_invalid_id_lengths":{"user_id":[0,1]}}'

    outcome = AMPLITUDE.classify(400, {}, body, batch_of("a", "b"))

    assert outcome.outcome is Outcome.FAILED
    assert set(outcome.by_key) == {"k0", "k1"}
    assert "id of invalid length `user_id`" in outcome.by_key["k0"].message


@pytest.mark.parametrize(
    ("body", "shown"),
    [
        (b'{"code":400,"error":"Invalid API key: nope"}', "Invalid API key: nope"),
        (
            b'{"code":400,"error":"Request missing required field","missing_field":"api_key"}',
            "missing field `api_key`",
        ),
        (b"Bad Request", "Bad Request"),
        # Indexes naming no event of the batch say nothing about the batch's events.
        (b'{"code":400,"error":"odd","events_with_invalid_fields":{"time":[7]}}', "odd"),
    ],
)
def test_amplitude_classify__400_naming_no_event__whole_batch_failed(
    body: bytes, shown: str
) -> None:
    outcome = AMPLITUDE.classify(400, {}, body, batch_of("a", "b"))

    assert outcome.outcome is Outcome.FAILED
    assert outcome.by_key == {}
    assert shown in outcome.message


def test_amplitude_classify__429_throttled_users__theirs_wait_30_s_the_rest_at_once() -> None:
    body = orjson.dumps(
        {
            "code": 429,
            "error": "Too many requests for some devices and users",
            "eps_threshold": 30,
            "throttled_users": {"b": 40},
            "throttled_events": [1, 3],
            "exceeded_daily_quota_users": {"c": 500000},
        }
    )

    outcome = AMPLITUDE.classify(429, {"Retry-After": "5"}, body, batch_of("a", "b", "c", "b"))

    assert outcome.outcome is Outcome.RETRY
    assert outcome.retry_after_seconds == 0
    assert set(outcome.by_key) == {"k1", "k2", "k3"}
    for key in ("k1", "k3"):
        assert outcome.by_key[key].outcome is Outcome.RETRY
        assert outcome.by_key[key].retry_after_seconds == THROTTLE_PAUSE_SECONDS == 30
    assert outcome.by_key["k2"].outcome is Outcome.FAILED
    assert "daily" in outcome.by_key["k2"].message


def test_amplitude_classify__429_naming_nobody__retry_after_header() -> None:
    outcome = AMPLITUDE.classify(
        429, {"Retry-After": "7"}, b'{"code":429,"error":"slow down"}', batch_of("a")
    )

    assert outcome.outcome is Outcome.RETRY
    assert outcome.retry_after_seconds == 7
    assert outcome.by_key == {}


def test_amplitude_classify__413__split_in_halves_one_event_fails() -> None:
    outcome = AMPLITUDE.classify(413, {}, b"too large", batch_of("a", "b", "c", "d", "e"))

    assert outcome.outcome is Outcome.RETRY
    # The first half goes again after the usual backoff, the second one after it.
    assert outcome.retry_after_seconds is None
    assert set(outcome.by_key) == {"k2", "k3", "k4"}
    assert {o.retry_after_seconds for o in outcome.by_key.values()} == {SPLIT_PAUSE_SECONDS}
    single = AMPLITUDE.classify(413, {}, b"too large", batch_of("a"))
    assert single.outcome is Outcome.FAILED


@pytest.mark.parametrize(
    ("status", "expected"),
    [(500, Outcome.RETRY), (503, Outcome.RETRY), (408, Outcome.RETRY), (401, Outcome.FAILED)],
)
def test_amplitude_classify__other_statuses__shared_rule(status: int, expected: Outcome) -> None:
    assert AMPLITUDE.classify(status, {}, b"", batch_of("a")).outcome is expected


def send(fake: FakeAmplitude, batch: PreparedBatch) -> httpx.Response:
    assert batch.request is not None
    request = batch.request

    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app=fake.app)
        async with httpx.AsyncClient(transport=transport) as client:
            return await client.request(
                request.method, request.url, headers=dict(request.headers), content=request.body
            )

    return asyncio.run(post())


def test_amplitude_build__short_identifiers__accepted_by_the_strict_fake() -> None:
    fake = FakeAmplitude({"amp-key"})
    batch = AMPLITUDE.build(
        Target("amp-key", "http://amplitude"), [flags("k1", "a"), exposure("k2", "bo"), event("k3")]
    )

    response = send(fake, batch)

    assert response.status_code == 200, response.text
    assert AMPLITUDE.classify(200, {}, response.content, batch).outcome is Outcome.DELIVERED
    assert fake.user("a", "amp-key") == {"checkout": "express"}
    assert [e["event_type"] for e in fake.events] == ["$identify", "$exposure", "purchase"]


def test_amplitude_classify__fake_refuses_a_user__only_that_event_fails() -> None:
    fake = FakeAmplitude({"amp-key"})
    fake.invalid_users["bad-user"] = "user_properties"
    batch = AMPLITUDE.build(
        Target("amp-key", "http://amplitude"), [flags("k1", "ok"), flags("k2", "bad-user")]
    )

    response = send(fake, batch)
    outcome = AMPLITUDE.classify(response.status_code, response.headers, response.content, batch)

    assert response.status_code == 400
    assert outcome.outcome is Outcome.RETRY
    assert set(outcome.by_key) == {"k2"}
    assert "invalid field `user_properties`" in outcome.by_key["k2"].message


def test_fake_amplitude__wrong_key__400_invalid_api_key() -> None:
    fake = FakeAmplitude({"amp-key"})
    batch = AMPLITUDE.build(Target("other", "http://amplitude"), [flags("k1")])

    response = send(fake, batch)

    assert response.status_code == 400
    assert response.json()["error"] == "Invalid API key: other"
    assert AMPLITUDE.classify(400, {}, response.content, batch).outcome is Outcome.FAILED
    assert fake.events == []


def test_fake_amplitude__short_id_without_options__refused_as_amplitude_does() -> None:
    fake = FakeAmplitude({"amp-key"})
    batch = AMPLITUDE.build(Target("amp-key", "http://amplitude"), [flags("k1", "jo")])
    assert batch.request is not None
    body = orjson.loads(batch.request.body)
    del body["options"]
    batch = PreparedBatch(
        dataclasses.replace(batch.request, body=orjson.dumps(body)),
        batch.sent,
        batch.rejected,
        identities=batch.identities,
    )

    response = send(fake, batch)

    assert response.status_code == 400
    assert response.json()["events_with_invalid_id_lengths"] == {"user_id": [0]}
    outcome = AMPLITUDE.classify(400, {}, response.content, batch)
    assert outcome.outcome is Outcome.FAILED
    assert "id of invalid length `user_id`" in outcome.by_key["k1"].message
