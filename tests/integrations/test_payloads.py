"""Vendor payloads and response classification, purely."""

from __future__ import annotations

import datetime as dt
import random

import orjson
import pytest

from ensign.delivery.backoff import Backoff
from ensign.integrations.base import Evaluation, Outcome, Target, retry_after_seconds
from ensign.integrations.values import property_value
from ensign.integrations.vendors.heap.requests import DESTINATION as HEAP
from ensign.integrations.vendors.mixpanel.requests import DESTINATION as MIXPANEL

AT = dt.datetime(2026, 11, 22, 10, 0, 0, 123456, tzinfo=dt.UTC)


def evaluation(
    key: str, identity: str = "user-1", at: dt.datetime = AT, **flags: object
) -> Evaluation:
    return Evaluation(key, identity, {k: v for k, v in flags.items()}, at)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("enabled", "value", "sent"),
    [
        (True, "foo", "foo"),
        (True, 1, 1),
        (True, 0, 0),
        (True, "", ""),
        (True, False, False),
        (True, None, True),
        (False, "foo", False),
        (False, None, False),
        (False, 0, False),
    ],
)
def test_property_value__enabled_and_value__value_or_enabled(
    enabled: bool, value: object, sent: object
) -> None:
    result = property_value(enabled, value)
    assert result == sent
    assert type(result) is type(sent)


def test_heap_build__bulk_events__exact_body() -> None:
    # Given
    target = Target("env-123", "https://heapanalytics.com/")
    evaluations = [
        evaluation("k1", flag_a=(True, 0), flag_b=(False, "x")),
        evaluation("k2", identity="user-2", flag_a=(True, ""), flag_b=(True, None)),
    ]
    # When
    batch = HEAP.build(target, evaluations)
    # Then
    assert batch.request is not None
    assert batch.request.url == "https://heapanalytics.com/api/track"
    assert batch.request.headers["Content-Type"] == "application/json"
    assert orjson.loads(batch.request.body) == {
        "app_id": "env-123",
        "events": [
            {
                "identity": "user-1",
                "event": "Flagsmith Feature Flags",
                "properties": {"flag_a": 0, "flag_b": False},
                "timestamp": "2026-11-22T10:00:00.123456+00:00",
                "idempotency_key": "k1",
            },
            {
                "identity": "user-2",
                "event": "Flagsmith Feature Flags",
                "properties": {"flag_a": "", "flag_b": True},
                "timestamp": "2026-11-22T10:00:00.123456+00:00",
                "idempotency_key": "k2",
            },
        ],
    }
    assert batch.sent == ("k1", "k2")


def test_heap_build__custom_event_name_and_long_identity__renamed_and_rejected() -> None:
    target = Target("env", "https://c.eu.heap-api.com", {"event_name": "Flags seen"})
    batch = HEAP.build(target, [evaluation("ok", f=(True, 1)), evaluation("long", "x" * 256)])
    assert batch.request is not None
    body = orjson.loads(batch.request.body)
    assert [e["event"] for e in body["events"]] == ["Flags seen"]
    assert batch.sent == ("ok",)
    assert "255" in batch.rejected["long"]


def test_heap_build__long_strings__clipped_under_1024() -> None:
    batch = HEAP.build(Target("e", "https://h"), [evaluation("k", f=(True, "v" * 5000))])
    assert batch.request is not None
    assert len(orjson.loads(batch.request.body)["events"][0]["properties"]["f"]) == 1023


def test_heap_build__more_than_1000__refused() -> None:
    with pytest.raises(ValueError, match="1000"):
        HEAP.build(Target("e", "https://h"), [evaluation(str(i)) for i in range(1001)])


def test_mixpanel_build__collapses_per_distinct_id_to_latest() -> None:
    # Given two evaluations of user-1, the later first in the batch
    later = AT + dt.timedelta(seconds=5)
    evaluations = [
        evaluation("k1", at=later, f=(True, "new")),
        evaluation("k2", identity="user-2", f=(False, None)),
        evaluation("k3", at=AT, f=(True, "old")),
    ]
    # When
    batch = MIXPANEL.build(Target("tok", "https://api-eu.mixpanel.com"), evaluations)
    # Then
    assert batch.request is not None
    assert batch.request.url == "https://api-eu.mixpanel.com/engage?verbose=1"
    assert "X-Mixpanel-Integration-ID" not in batch.request.headers
    assert orjson.loads(batch.request.body) == [
        {
            "$token": "tok",
            "$distinct_id": "user-1",
            "$set": {"f": "new"},
            "$ip": "0",
            "$ignore_time": True,
        },
        {
            "$token": "tok",
            "$distinct_id": "user-2",
            "$set": {"f": False},
            "$ip": "0",
            "$ignore_time": True,
        },
    ]
    assert set(batch.sent) == {"k1", "k2", "k3"}


def test_mixpanel_build__ignore_time_off__field_absent() -> None:
    batch = MIXPANEL.build(
        Target("tok", "https://api.mixpanel.com", {"ignore_time": False}),
        [evaluation("k", f=(True, 0))],
    )
    assert batch.request is not None
    (update,) = orjson.loads(batch.request.body)
    assert "$ignore_time" not in update
    assert update["$set"] == {"f": 0}


@pytest.mark.parametrize(
    ("status", "headers", "body", "outcome", "retry_after"),
    [
        (200, {}, b"", Outcome.DELIVERED, None),
        (204, {}, b"", Outcome.DELIVERED, None),
        (400, {}, b"Bad request", Outcome.FAILED, None),
        (401, {}, b"", Outcome.FAILED, None),
        (408, {}, b"", Outcome.RETRY, None),
        (429, {"Retry-After": "7"}, b"", Outcome.RETRY, 7.0),
        (500, {}, b"oops", Outcome.RETRY, None),
        (503, {"retry-after": "2"}, b"", Outcome.RETRY, 2.0),
    ],
)
def test_heap_classify__status__outcome(
    status: int, headers: dict[str, str], body: bytes, outcome: Outcome, retry_after: float | None
) -> None:
    result = HEAP.classify(status, headers, body)
    assert result.outcome is outcome
    assert result.retry_after_seconds == retry_after
    assert result.status_code == status


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        (200, b'{"status": 1, "error": null}', Outcome.DELIVERED),
        (200, b"1", Outcome.DELIVERED),
        (200, b'{"status": 0, "error": "token missing"}', Outcome.FAILED),
        (200, b"0", Outcome.FAILED),
        (401, b'{"error": "bad", "status": "error"}', Outcome.FAILED),
        (429, b"", Outcome.RETRY),
        (502, b"", Outcome.RETRY),
    ],
)
def test_mixpanel_classify__body_status__outcome(
    status: int, body: bytes, outcome: Outcome
) -> None:
    assert MIXPANEL.classify(status, {}, body).outcome is outcome


def test_mixpanel_classify__status_0__vendor_message_kept() -> None:
    result = MIXPANEL.classify(200, {}, b'{"status": 0, "error": "token missing"}')
    assert "token missing" in result.message


def test_retry_after__http_date__seconds_from_now() -> None:
    now = dt.datetime(2026, 1, 1, 0, 0, 0, tzinfo=dt.UTC)
    headers = {"Retry-After": "Thu, 01 Jan 2026 00:00:30 GMT"}
    assert retry_after_seconds(headers, now=now) == 30.0
    assert retry_after_seconds({"Retry-After": "soon"}) is None


def test_backoff__failures__doubles_capped_with_jitter_and_retry_after_floor() -> None:
    backoff = Backoff(base_seconds=2, cap_seconds=60, jitter=0.25)
    rng = random.Random(1)
    delays = [backoff.delay(n, rng=rng) for n in range(1, 9)]
    for n, delay in enumerate(delays, start=1):
        expected = min(60, 2 * 2 ** (n - 1))
        assert expected <= delay <= expected * 1.25
    assert backoff.delay(1, retry_after=30, rng=rng) >= 30
    assert backoff.delay(1, retry_after=10**9, rng=rng) == 3600
    assert backoff.delay(10**6, rng=rng) <= 75
