"""Experiment exposures as each vendor receives them, built purely."""

from __future__ import annotations

import datetime as dt

import orjson

from ensign.integrations.base import Evaluation, Outcome, Target
from ensign.integrations.vendors.heap.requests import DESTINATION as HEAP
from ensign.integrations.vendors.mixpanel.requests import DESTINATION as MIXPANEL

AT = dt.datetime(2026, 11, 26, 19, 0, 0, 123000, tzinfo=dt.UTC)


def exposure(key: str, identity: str = "user-42", variant: str = "two") -> Evaluation:
    payload = {"experiment": "Checkout test", "variant": variant, "experiment_id": 1}
    return Evaluation(
        key, identity, {}, AT, values_json=orjson.dumps(payload).decode(), kind="exposure"
    )


def flags(key: str, identity: str = "user-42") -> Evaluation:
    return Evaluation(key, identity, {}, AT, values_json='{"checkout":"express"}')


def test_mixpanel_build__exposure__experiment_started_through_track() -> None:
    batch = MIXPANEL.build(Target("tok", "https://api.mixpanel.com"), [exposure("k1")])

    assert batch.request is not None
    assert batch.request.url == "https://api.mixpanel.com/track?verbose=1"
    assert "Authorization" not in batch.request.headers
    assert orjson.loads(batch.request.body) == [
        {
            "event": "$experiment_started",
            "properties": {
                "token": "tok",
                "distinct_id": "user-42",
                "time": 1795719600123,
                "$insert_id": "k1",
                "Experiment name": "Checkout test",
                "Variant name": "two",
            },
        }
    ]
    assert batch.sent == ("k1",)


def test_mixpanel_build__api_secret__import_with_basic_auth() -> None:
    target = Target("tok", "https://api-eu.mixpanel.com/", {"api_secret": "s3cret"})

    batch = MIXPANEL.build(target, [exposure("k1")])

    assert batch.request is not None
    assert batch.request.url == "https://api-eu.mixpanel.com/import?strict=1"
    assert batch.request.headers["Authorization"] == "Basic czNjcmV0Og=="


def test_mixpanel_build__mixed_kinds__first_kind_sent_rest_deferred() -> None:
    batch = MIXPANEL.build(
        Target("tok", "https://api.mixpanel.com"), [flags("f1"), exposure("e1"), flags("f2")]
    )

    assert batch.request is not None
    assert batch.request.url.endswith("/engage?verbose=1")
    assert batch.sent == ("f1", "f2")
    assert batch.deferred == ("e1",)


def test_mixpanel_classify__import_ok__delivered() -> None:
    body = b'{"code":200,"num_records_imported":1,"status":"OK"}'

    assert MIXPANEL.classify(200, {}, body).outcome is Outcome.DELIVERED


def test_heap_build__exposure_beside_flags__experiment_viewed_in_the_same_request() -> None:
    batch = HEAP.build(Target("app", "https://heapanalytics.com"), [flags("f1"), exposure("e1")])

    assert batch.request is not None
    events = orjson.loads(batch.request.body)["events"]
    assert events[1] == {
        "identity": "user-42",
        "event": "Experiment Viewed",
        "properties": {"Experiment name": "Checkout test", "Variant name": "two"},
        "timestamp": "2026-11-26T19:00:00.123000+00:00",
        "idempotency_key": "e1",
    }
    assert events[0]["event"] == "Flagsmith Feature Flags"
    assert batch.sent == ("f1", "e1")
