"""Segment's and RudderStack's batches, built purely: exact messages, the size and count limits,
the write key of each integration, and how each answer is read."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from ensign.integrations.base import Evaluation, Outcome, PreparedBatch, Target
from ensign.integrations.vendors.rudderstack.requests import DESTINATION as RUDDERSTACK
from ensign.integrations.vendors.rudderstack.requests import RUDDERSTACK_LIMITS
from ensign.integrations.vendors.segment.requests import DESTINATION as SEGMENT
from ensign.integrations.vendors.segment.requests import (
    SEGMENT_LIMITS,
    classify_segment,
    rate_limit_reset_seconds,
)
from tests.fakes.segment import RUDDERSTACK as RUDDERSTACK_VENDOR
from tests.fakes.segment import FakeSegment

AT = dt.datetime(2026, 11, 26, 19, 0, 0, 123000, tzinfo=dt.UTC)
US = Target("wk-1", "https://api.segment.io")


def flags(key: str, identity: str = "user-42", values: dict[str, Any] | None = None) -> Evaluation:
    text = orjson.dumps(values if values is not None else {"checkout": "express", "beta": False})
    return Evaluation(key, identity, {}, AT, values_json=text.decode())


def exposure(key: str, payload: dict[str, Any]) -> Evaluation:
    return Evaluation(
        key, "user-42", {}, AT, values_json=orjson.dumps(payload).decode(), kind="exposure"
    )


def body(batch: PreparedBatch) -> Any:
    assert batch.request is not None
    return orjson.loads(batch.request.body)


def test_segment_build__flags__identify_with_traits_basic_auth_and_message_id() -> None:
    batch = SEGMENT.build(US, [flags("k1")])

    assert batch.request is not None
    assert batch.request.method == "POST"
    assert batch.request.url == "https://api.segment.io/v1/batch"
    assert batch.request.headers == {
        "Content-Type": "application/json",
        # base64("wk-1:"): the write key as the user, an empty password
        "Authorization": "Basic d2stMTo=",
    }
    assert body(batch) == {
        "batch": [
            {
                "type": "identify",
                "userId": "user-42",
                "traits": {"checkout": "express", "beta": False},
                "timestamp": "2026-11-26T19:00:00.123000+00:00",
                "messageId": "k1",
            }
        ]
    }
    assert (batch.sent, batch.identities, batch.rejected, batch.deferred) == (
        ("k1",),
        ("user-42",),
        {},
        (),
    )


def test_segment_build__flags_given_as_pairs__same_traits_by_the_value_rule() -> None:
    evaluation = Evaluation("k1", "u", {"a": (True, None), "b": (False, "x"), "c": (True, 0)}, AT)

    assert body(SEGMENT.build(US, [evaluation]))["batch"][0]["traits"] == {
        "a": True,
        "b": False,
        "c": 0,
    }


def test_segment_build__exposure__experiment_viewed_with_the_ab_testing_properties() -> None:
    payload = {"experiment": "Checkout test", "variant": "two", "experiment_id": 7}

    (message,) = body(SEGMENT.build(US, [exposure("e1", payload)]))["batch"]

    assert message == {
        "type": "track",
        "event": "Experiment Viewed",
        "userId": "user-42",
        "properties": {
            "experiment_id": "7",
            "experiment_name": "Checkout test",
            "variation_id": "two",
            "variation_name": "two",
        },
        "timestamp": "2026-11-26T19:00:00.123000+00:00",
        "messageId": "e1",
    }


def test_segment_build__exposure_without_id__experiment_named_as_its_id() -> None:
    (message,) = body(SEGMENT.build(US, [exposure("e1", {"experiment": "X", "variant": "a"})]))[
        "batch"
    ]

    assert message["properties"]["experiment_id"] == "X"


def test_segment_build__custom_event__track_under_its_name() -> None:
    payload = {"event": "purchase", "properties": {"value": "9.99", "plan": "gold"}}
    event = Evaluation(
        "c1", "buyer", {}, AT, values_json=orjson.dumps(payload).decode(), kind="event"
    )

    (message,) = body(SEGMENT.build(US, [event]))["batch"]

    assert message == {
        "type": "track",
        "event": "purchase",
        "userId": "buyer",
        "properties": {"value": "9.99", "plan": "gold"},
        "timestamp": "2026-11-26T19:00:00.123000+00:00",
        "messageId": "c1",
    }


def test_build__two_integrations__each_request_carries_its_own_write_key() -> None:
    a = SEGMENT.build(Target("key-a", "https://api.segment.io"), [flags("k1")])
    b = RUDDERSTACK.build(Target("key-b", "https://dp.example"), [flags("k2")])
    c = SEGMENT.build(Target("key-c", "https://events.eu1.segmentapis.com/"), [flags("k3")])

    assert a.request is not None and b.request is not None and c.request is not None
    assert a.request.headers["Authorization"] == "Basic a2V5LWE6"
    assert b.request.headers["Authorization"] == "Basic a2V5LWI6"
    assert c.request.headers["Authorization"] == "Basic a2V5LWM6"
    assert b.request.url == "https://dp.example/v1/batch"
    assert c.request.url == "https://events.eu1.segmentapis.com/v1/batch"


def test_segment_build__big_values__batches_stop_before_500_kb_and_the_rest_follows() -> None:
    # Given 200 identities whose flags take about 10 KB each: 2 MB in all
    evaluations = [flags(f"k{i}", f"user-{i}", {"blob": f"{i}" + "x" * 10_000}) for i in range(200)]
    # When batches are built as the worker does: the deferred rows come back first next time
    pending, sent, sizes = list(evaluations), [], []
    while pending:
        batch = SEGMENT.build(US, pending)
        assert batch.request is not None and not batch.rejected
        sizes.append(len(batch.request.body))
        sent += batch.sent
        assert len(batch.sent) + len(batch.deferred) == len(pending)
        pending = [e for e in pending if e.key in set(batch.deferred)]
    # Then every evaluation was sent once, in order, in batches under 500 KB but nearly full
    assert sent == [e.key for e in evaluations]
    assert all(size <= 500 * 1024 for size in sizes)
    assert all(size > 500 * 1024 - 10_100 for size in sizes[:-1])
    assert len(sizes) == 4


def test_segment_build__message_over_32_kb__rejected_with_reason_rest_sent() -> None:
    huge = flags("big", values={"blob": "x" * 33_000})

    batch = SEGMENT.build(US, [flags("k1"), huge, flags("k2")])

    assert batch.sent == ("k1", "k2")
    assert "over 32768 bytes" in batch.rejected["big"]
    assert "Segment refuses" in batch.rejected["big"]


def test_segment_build__message_just_under_32_kb__sent() -> None:
    base = len(orjson.dumps(body(SEGMENT.build(US, [flags("k", values={"b": ""})]))["batch"][0]))
    fits = flags("k", values={"b": "x" * (32 * 1024 - base)})

    batch = SEGMENT.build(US, [fits])

    assert batch.sent == ("k",)
    assert len(orjson.dumps(body(batch)["batch"][0])) == 32 * 1024


def test_segment_build__more_than_2500__the_rest_deferred() -> None:
    evaluations = [flags(f"k{i}", f"u{i}", {"a": 1}) for i in range(2600)]

    batch = SEGMENT.build(US, evaluations)

    assert len(batch.sent) == 2500
    assert batch.deferred == tuple(f"k{i}" for i in range(2500, 2600))
    assert SEGMENT.max_batch == SEGMENT_LIMITS.messages == 2500


def test_rudderstack_build__40_kb_message__sent_where_segment_rejects_it() -> None:
    large = flags("big", values={"blob": "x" * 40_000})
    target = Target("rs-key", "https://acme.dataplane.rudderstack.com")

    assert RUDDERSTACK.build(target, [large]).sent == ("big",)
    assert "big" in SEGMENT.build(US, [large]).rejected
    assert RUDDERSTACK_LIMITS.batch_bytes == 4000 * 1024


def test_build__no_user_id__rejected() -> None:
    batch = SEGMENT.build(US, [flags("k1", identity="")])

    assert batch.request is None
    assert "userId" in batch.rejected["k1"]


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, Outcome.DELIVERED),
        (400, Outcome.FAILED),
        (401, Outcome.FAILED),
        (404, Outcome.FAILED),
        (413, Outcome.FAILED),
        (408, Outcome.RETRY),
        (410, Outcome.RETRY),
        (429, Outcome.RETRY),
        (460, Outcome.RETRY),
        (500, Outcome.RETRY),
        (501, Outcome.FAILED),
        (502, Outcome.RETRY),
        (503, Outcome.RETRY),
        (505, Outcome.FAILED),
        (599, Outcome.RETRY),
    ],
)
def test_segment_classify__status__as_segments_own_library(status: int, outcome: Outcome) -> None:
    assert SEGMENT.classify(status, {}, b"").outcome is outcome


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, Outcome.DELIVERED),
        (400, Outcome.FAILED),
        (401, Outcome.FAILED),
        (413, Outcome.FAILED),
        (408, Outcome.RETRY),
        (429, Outcome.RETRY),
        (500, Outcome.RETRY),
        (503, Outcome.RETRY),
    ],
)
def test_rudderstack_classify__status__429_and_5xx_retried(status: int, outcome: Outcome) -> None:
    assert RUDDERSTACK.classify(status, {}, b"OK").outcome is outcome


def test_classify__400__failed_with_the_vendors_reason() -> None:
    segment = SEGMENT.classify(400, {}, b"Bad request: batch too large")
    rudder = RUDDERSTACK.classify(401, {}, b"Invalid write key")

    assert segment.message == "Segment refused the batch: Bad request: batch too large"
    assert rudder.message == "RudderStack refused the batch: Invalid write key"


def test_segment_classify__429__waits_for_retry_after_then_rate_limit_reset() -> None:
    now = dt.datetime(2026, 11, 26, 19, 0, tzinfo=dt.UTC)
    reset = str(int(now.timestamp()) + 30)

    after = classify_segment(429, {"Retry-After": "12", "X-RateLimit-Reset": reset}, b"", now=now)
    reset_only = classify_segment(429, {"X-RateLimit-Reset": reset}, b"", now=now)

    assert (after.outcome, after.retry_after_seconds) == (Outcome.RETRY, 12.0)
    assert reset_only.retry_after_seconds == 30.0
    assert RUDDERSTACK.classify(429, {"Retry-After": "3"}, b"").retry_after_seconds == 3.0


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("5", 5.0), ("1795719630", 30.0), ("1795719630000", 30.0), ("1795719500", 0.0), ("x", None)],
)
def test_rate_limit_reset_seconds__each_form__seconds_from_now(
    value: str, seconds: float | None
) -> None:
    now = dt.datetime(2026, 11, 26, 19, 0, tzinfo=dt.UTC)  # 1795719600

    assert rate_limit_reset_seconds({"x-ratelimit-reset": value}, now=now) == seconds


def _post(fake: FakeSegment, batch: PreparedBatch) -> httpx.Response:
    """The batch's request, to the fake in process."""
    request = batch.request
    assert request is not None

    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app=fake.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://fake") as client:
            return await client.post(
                "/v1/batch", headers=dict(request.headers), content=request.body
            )

    return asyncio.run(post())


def test_fake_segment__built_batch_accepted_and_resend_deduplicated() -> None:
    fake = FakeSegment(write_keys={"wk-1"})
    payload = {"experiment": "X", "variant": "a", "experiment_id": 1}
    batch = SEGMENT.build(US, [flags("k1"), exposure("e1", payload)])

    first, again = _post(fake, batch), _post(fake, batch)

    assert (first.status_code, again.status_code) == (200, 200)
    assert fake.identifies() == {"user-42": {"checkout": "express", "beta": False}}
    assert [m["messageId"] for m in fake.tracks("Experiment Viewed")] == ["e1"]
    assert fake.duplicates == 2


def test_fake_segment__wrong_key_and_oversize__refused_as_the_vendor_does() -> None:
    segment = FakeSegment(write_keys={"right"})
    rudder = FakeSegment(RUDDERSTACK_VENDOR, write_keys={"right"})
    wrong = SEGMENT.build(Target("wrong", "http://fake"), [flags("k1")])
    assert (_post(segment, wrong)).status_code == 401
    # A batch built for RudderStack's limits is too large for Segment, which answers 400
    big = [flags(f"k{i}", f"u{i}", {"b": "x" * 30_000}) for i in range(40)]
    batch = RUDDERSTACK.build(Target("right", "http://fake"), big)
    assert len(batch.sent) == 40
    refused = _post(segment, batch)
    assert refused.status_code == 400
    assert SEGMENT.classify(refused.status_code, {}, refused.content).outcome is Outcome.FAILED
    accepted = _post(rudder, batch)
    assert (accepted.status_code, accepted.text) == (200, "OK")
    assert len(rudder.identifies("right")) == 40


def test_segment_docs__example_payload__what_the_builder_sends() -> None:
    # Given the records behind docs/destinations/segment.md's example
    at = dt.datetime(2026, 9, 14, 9, 30, 12, 345678, tzinfo=dt.UTC)
    flag_values = {"new_checkout": True, "banner_text": "Autumn sale", "max_items": 0}
    records = [
        ("4f1c2a9e0b7d4c3e8a5f6b7c8d9e0f1a", "flags", {**flag_values, "beta_search": False}),
        (
            "9b8a7c6d5e4f40312a1b2c3d4e5f6a7b",
            "exposure",
            {"experiment": "Checkout test", "variant": "express", "experiment_id": 3},
        ),
        (
            "0a1b2c3d4e5f46778899aabbccddeeff",
            "event",
            {"event": "purchase", "properties": {"value": "42.5", "plan": "gold"}},
        ),
    ]
    evaluations = [
        Evaluation(key, "user-42", {}, at, values_json=orjson.dumps(v).decode(), kind=kind)
        for key, kind, v in records
    ]
    # When built
    batch = SEGMENT.build(Target("Wk3yS3cr3t", "https://api.segment.io"), evaluations)
    # Then the page shows exactly that body and that header
    page = (Path(__file__).parents[2] / "docs" / "destinations" / "segment.md").read_text()
    example = page.split("```json\n")[1].split("```")[0]
    assert orjson.loads(example) == body(batch)
    assert batch.request is not None
    assert f"Authorization: {batch.request.headers['Authorization']}" in page
