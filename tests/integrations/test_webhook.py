"""The webhook destination, purely: its exact body, its signature (checked by the snippet the
docs give receivers), its limits and how it reads answers."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

import orjson
import pytest
from starlette.testclient import TestClient

from ensign.integrations.base import Evaluation, Outcome, Target
from ensign.integrations.vendors.webhook.requests import DESTINATION as WEBHOOK
from ensign.integrations.vendors.webhook.requests import MAX_BODY_BYTES, MAX_ITEMS, event_id
from tests.fakes.webhook import FakeWebhook, documented_verify

AT = dt.datetime(2026, 11, 26, 12, 0, 0, 250000, tzinfo=dt.UTC)
NOW = dt.datetime(2026, 11, 26, 12, 0, 5, tzinfo=dt.UTC)
SECRET = "whsec-test-0123456789"
TARGET = Target("", "https://hooks.example.com/ensign", {"secret": SECRET}, now=NOW)


def flags_record(key: str, identity: str = "user-1", **more: object) -> Evaluation:
    recorded = {
        "traits": {"age": 30, "plan": "gold"},
        "flags": [
            {"feature": "banner", "enabled": True, "value": "hello gold"},
            {"feature": "beta", "enabled": False, "value": None},
        ],
        "segments": ["gold users"],
        **more,
    }
    return Evaluation(key, identity, {}, AT, values_json=orjson.dumps(recorded).decode())


def exposure_record(key: str) -> Evaluation:
    payload = {"experiment": "checkout test", "variant": "b", "feature": "checkout"}
    return Evaluation(
        key, "user-1", {}, AT, values_json=orjson.dumps(payload).decode(), kind="exposure"
    )


def event_record(key: str) -> Evaluation:
    payload = {"event": "purchase", "properties": {"amount": 12}}
    return Evaluation(
        key, "user-1", {}, AT, values_json=orjson.dumps(payload).decode(), kind="event"
    )


def test_webhook_build__every_kind__exact_body_and_headers() -> None:
    # When
    batch = WEBHOOK.build(TARGET, [flags_record("k1"), exposure_record("k2"), event_record("k3")])
    # Then
    request = batch.request
    assert request is not None
    assert (request.method, request.url) == ("POST", "https://hooks.example.com/ensign")
    assert request.body == (
        b'{"items":['
        b'{"type":"flags","id":"k1","identity":"user-1","evaluated_at":"2026-11-26T12:00:00.250000+00:00",'
        b'"traits":{"age":30,"plan":"gold"},'
        b'"flags":[{"feature":"banner","enabled":true,"value":"hello gold"},'
        b'{"feature":"beta","enabled":false,"value":null}],"segments":["gold users"]},'
        b'{"type":"exposure","id":"k2","identity":"user-1","evaluated_at":"2026-11-26T12:00:00.250000+00:00",'
        b'"experiment":"checkout test","variant":"b","feature":"checkout"},'
        b'{"type":"event","id":"k3","identity":"user-1","evaluated_at":"2026-11-26T12:00:00.250000+00:00",'
        b'"event":"purchase","properties":{"amount":12}}]}'
    )
    assert request.headers["Content-Type"] == "application/json"
    # Signed as documented, computed here independently of Ensign's code.
    t = int(NOW.timestamp())
    mac = hmac.new(SECRET.encode(), f"{t}.".encode() + request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-Ensign-Signature"] == f"t={t},v1={mac}"
    assert batch.sent == ("k1", "k2", "k3")
    assert batch.rejected == {} and batch.deferred == ()


def test_webhook_build__same_items_later__same_body_and_event_id_fresh_timestamp() -> None:
    records = [flags_record("k1"), event_record("k2")]
    first = WEBHOOK.build(TARGET, records).request
    later = Target(TARGET.api_key, TARGET.base_url, TARGET.options, now=NOW + dt.timedelta(hours=1))
    retried = WEBHOOK.build(later, records).request
    other = WEBHOOK.build(TARGET, records[:1]).request
    assert first is not None and retried is not None and other is not None
    assert retried.body == first.body
    assert retried.headers["X-Ensign-Event-Id"] == first.headers["X-Ensign-Event-Id"]
    assert other.headers["X-Ensign-Event-Id"] != first.headers["X-Ensign-Event-Id"]
    assert retried.headers["X-Ensign-Signature"] != first.headers["X-Ensign-Signature"]


def test_documented_snippet__request_received__verifies_only_the_real_body_and_secret() -> None:
    # Given a request built by Ensign and received by a receiver
    fake = FakeWebhook()
    fake.secrets["hook"] = SECRET
    batch = WEBHOOK.build(
        Target("", "http://testserver/hook", {"secret": SECRET}, now=dt.datetime.now(dt.UTC)),
        [flags_record("k1")],
    )
    assert batch.request is not None
    with TestClient(fake.app) as client:
        answer = client.post(
            batch.request.url, content=batch.request.body, headers=dict(batch.request.headers)
        )
    assert answer.status_code == 204, answer.text
    received = fake.requests[0]
    body, header = received["body"], received["headers"]["x-ensign-signature"]
    # When the docs' snippet checks it
    verify = documented_verify()
    # Then it holds for the real body and secret only
    assert verify(SECRET, body, header) is True
    assert verify(SECRET, body.replace(b"hello gold", b"hello gild"), header) is False
    assert verify("another secret", body, header) is False
    # and not once the tolerance has passed (a replay)
    assert verify(SECRET, body, header, now=received["at"] + 301) is False
    assert verify(SECRET, body, "v1=deadbeef") is False


def test_webhook_build__more_than_a_megabyte__the_rest_deferred_a_giant_refused() -> None:
    # Given items of about 300 kB each, and one alone over 1 MB
    big = "x" * 300_000
    records = [flags_record(f"k{i}", traits={"note": big}) for i in range(5)]
    giant = flags_record("giant", traits={"note": "y" * MAX_BODY_BYTES})
    # When
    batch = WEBHOOK.build(TARGET, [records[0], giant, *records[1:]])
    # Then three fit, the giant is refused and the rest wait for the next request
    assert batch.request is not None
    assert len(batch.request.body) <= MAX_BODY_BYTES
    assert batch.sent == ("k0", "k1", "k2")
    assert set(batch.rejected) == {"giant"}
    assert batch.deferred == ("k3", "k4")
    assert len(orjson.loads(batch.request.body)["items"]) == 3


def test_webhook_build__too_many_items__refused() -> None:
    assert WEBHOOK.max_batch == MAX_ITEMS == 500
    with pytest.raises(ValueError, match="500"):
        WEBHOOK.build(TARGET, [event_record(f"k{i}") for i in range(501)])


def test_webhook_build__record_without_context_or_no_secret__rejected() -> None:
    plain = Evaluation("plain", "user-1", {}, AT, values_json='{"banner":"hello"}')
    batch = WEBHOOK.build(TARGET, [plain, event_record("k2")])
    assert batch.sent == ("k2",)
    assert "context" in batch.rejected["plain"]
    unsigned = WEBHOOK.build(Target("", TARGET.base_url, {}), [event_record("k3")])
    assert unsigned.request is None and "secret" in unsigned.rejected["k3"]


def test_event_id__keys__32_hex_stable() -> None:
    assert event_id(["a", "b"]) == event_id(["a", "b"]) != event_id(["a"])
    assert len(event_id(["a"])) == 32


@pytest.mark.parametrize(
    ("status", "headers", "outcome", "retry_after"),
    [
        (200, {}, Outcome.DELIVERED, None),
        (204, {}, Outcome.DELIVERED, None),
        (408, {}, Outcome.RETRY, None),
        (429, {"Retry-After": "7"}, Outcome.RETRY, 7.0),
        (503, {"Retry-After": "2"}, Outcome.RETRY, 2.0),
        (500, {}, Outcome.RETRY, None),
        (410, {}, Outcome.FAILED, None),
        (400, {}, Outcome.FAILED, None),
        (401, {}, Outcome.FAILED, None),
        (302, {}, Outcome.FAILED, None),
    ],
)
def test_webhook_classify__status__outcome(
    status: int, headers: dict[str, str], outcome: Outcome, retry_after: float | None
) -> None:
    result = WEBHOOK.classify(status, headers, b"")
    assert result.outcome is outcome
    assert result.retry_after_seconds == retry_after
