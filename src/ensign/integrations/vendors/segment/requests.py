"""Segment's HTTP Tracking API (analytics-apis.md §4.2), built and read purely.

Every record goes to `POST {base}/v1/batch` as one message of a batch, the write key as the
HTTP Basic user with an empty password:

- an identity's flags: an `identify` whose traits are the flag values sent;
- an experiment exposure: a `track` named `Experiment Viewed` with the properties of
  Segment's A/B testing spec (`experiment_id`, `experiment_name`, `variation_id`,
  `variation_name`);
- an SDK's custom event: a `track` under its own name, with its properties.

Each message's `messageId` is the record's key, fixed when it was recorded, so a retried batch
is deduplicated by Segment rather than counted twice. Segment answers 400 to the whole batch
when one message is over 32 KB or the batch over 500 KB, and silently drops the messages past
2500: the builder sets aside a message too large to ever send (with the reason) and stops
before a limit, leaving the rest for the next batch.

RudderStack speaks the same protocol with its own limits and answers (`rudderstack.py`), so
the messages and the batching live here once, for both.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from ensign.integrations.base import (
    EVENT,
    EXPOSURE,
    DeliveryOutcome,
    Evaluation,
    OutboundRequest,
    Outcome,
    PreparedBatch,
    Target,
    body_text,
    custom_event,
    exposure,
    exposure_experiment_id,
    iso_timestamp,
    retry_after_seconds,
    sent_values,
)
from ensign.integrations.schema import Schema
from ensign.integrations.vendors.segment.schema import SCHEMA

EXPERIMENT_VIEWED = "Experiment Viewed"


@dataclass(frozen=True)
class Limits:
    """What one vendor's batch endpoint takes, in bytes of JSON and in messages."""

    message_bytes: int
    batch_bytes: int
    messages: int


# "32KB per event, 500KB per batch" (Segment's HTTP API docs), read as Segment's own libraries
# read them (32 768 and 512 000 bytes); past 2500 messages Segment answers 200 and drops the rest.
SEGMENT_LIMITS = Limits(message_bytes=32 * 1024, batch_bytes=500 * 1024, messages=2500)

_PREFIX = b'{"batch":['
_SUFFIX = b"]}"


def identify_message(evaluation: Evaluation) -> dict[str, Any]:
    """An identity's flags as an `identify`: feature name → value sent, as traits."""
    return {
        "type": "identify",
        "userId": evaluation.identity,
        "traits": sent_values(evaluation),
        "timestamp": iso_timestamp(evaluation.evaluated_at),
        "messageId": evaluation.key,
    }


def exposure_message(evaluation: Evaluation) -> dict[str, Any]:
    """An exposure as Segment's `Experiment Viewed`. Ensign's variants have a key and no other
    name, so the key is both the variation's id and its name; the experiment's id is Ensign's
    id when the record carries it (older records name the experiment only)."""
    experiment, variant = exposure(evaluation)
    experiment_id = exposure_experiment_id(evaluation)
    return {
        "type": "track",
        "event": EXPERIMENT_VIEWED,
        "userId": evaluation.identity,
        "properties": {
            "experiment_id": experiment if experiment_id is None else experiment_id,
            "experiment_name": experiment,
            "variation_id": variant,
            "variation_name": variant,
        },
        "timestamp": iso_timestamp(evaluation.evaluated_at),
        "messageId": evaluation.key,
    }


def custom_event_message(evaluation: Evaluation) -> dict[str, Any]:
    """An SDK's custom event as a `track` under its own name."""
    name, properties = custom_event(evaluation)
    return {
        "type": "track",
        "event": name,
        "userId": evaluation.identity,
        "properties": properties,
        "timestamp": iso_timestamp(evaluation.evaluated_at),
        "messageId": evaluation.key,
    }


def message(evaluation: Evaluation) -> dict[str, Any]:
    """The message one record becomes."""
    if evaluation.kind == EXPOSURE:
        return exposure_message(evaluation)
    if evaluation.kind == EVENT:
        return custom_event_message(evaluation)
    return identify_message(evaluation)


def encode_message(evaluation: Evaluation) -> bytes:
    """`message`, serialised; an identity's stored flag values are copied in as the traits
    without parsing them (they are the JSON object the outbox holds)."""
    if evaluation.kind in (EXPOSURE, EVENT) or evaluation.values_json is None:
        return orjson.dumps(message(evaluation))
    return b"".join(
        (
            b'{"type":"identify","userId":',
            orjson.dumps(evaluation.identity),
            b',"traits":',
            evaluation.values_json.encode(),
            b',"timestamp":"',
            iso_timestamp(evaluation.evaluated_at).encode(),
            b'","messageId":',
            orjson.dumps(evaluation.key),
            b"}",
        )
    )


def basic_auth(write_key: str) -> str:
    """The write key as the Basic user with an empty password: `Basic base64("<key>:")`."""
    return "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()


def build_batch(
    target: Target, evaluations: Sequence[Evaluation], limits: Limits, vendor: str
) -> PreparedBatch:
    """One `/v1/batch` request holding as many of `evaluations`, in order, as fit `limits`.

    A message over the per-message limit can never be sent and is rejected with the reason
    (its traits are not trimmed: a profile missing some flags would look complete); a message
    that would take the batch past a limit is deferred with everything after it."""
    messages: list[bytes] = []
    sent: list[str] = []
    identities: list[str] = []
    rejected: dict[str, str] = {}
    size = len(_PREFIX) + len(_SUFFIX)
    for index, evaluation in enumerate(evaluations):
        if not evaluation.identity:
            rejected[evaluation.key] = f"no user id; {vendor} needs a userId or anonymousId"
            continue
        encoded = encode_message(evaluation)
        if len(encoded) > limits.message_bytes:
            rejected[evaluation.key] = (
                f"message of {len(encoded)} bytes; {vendor} refuses messages over "
                f"{limits.message_bytes} bytes"
            )
            continue
        added = len(encoded) + (1 if messages else 0)  # the comma between messages
        if len(messages) == limits.messages or size + added > limits.batch_bytes:
            deferred = tuple(e.key for e in evaluations[index:])
            return _prepared(target, messages, sent, identities, rejected, deferred)
        messages.append(encoded)
        sent.append(evaluation.key)
        identities.append(evaluation.identity)
        size += added
    return _prepared(target, messages, sent, identities, rejected, ())


def _prepared(
    target: Target,
    messages: list[bytes],
    sent: list[str],
    identities: list[str],
    rejected: dict[str, str],
    deferred: tuple[str, ...],
) -> PreparedBatch:
    if not messages:
        return PreparedBatch(None, (), rejected, deferred)
    request = OutboundRequest(
        "POST",
        target.base_url.rstrip("/") + "/v1/batch",
        {"Content-Type": "application/json", "Authorization": basic_auth(target.api_key)},
        _PREFIX + b",".join(messages) + _SUFFIX,
    )
    return PreparedBatch(request, tuple(sent), rejected, deferred, tuple(identities))


def rate_limit_reset_seconds(
    headers: Mapping[str, str], *, now: dt.datetime | None = None
) -> float | None:
    """`X-RateLimit-Reset` in seconds from now, if usable. Segment does not say which form it
    takes, so each common one is read: Unix time in milliseconds or seconds, or a delay."""
    raw = next((v for k, v in headers.items() if k.lower() == "x-ratelimit-reset"), None)
    try:
        value = float(raw) if raw is not None else None
    except ValueError:
        return None
    if value is None:
        return None
    if value > 1e9:  # a moment, not a delay: Unix seconds, or milliseconds past 1e12
        moment = value / 1000 if value > 1e12 else value
        value = moment - (now or dt.datetime.now(dt.UTC)).timestamp()
    return max(0.0, value)


# Retried as Segment's own library retries them; 501 and 505 will not change on a retry.
_RETRY = frozenset({408, 410, 429, 460})
_NEVER_RETRY = frozenset({501, 505})


def classify_segment(
    status_code: int, headers: Mapping[str, str], body: bytes, *, now: dt.datetime | None = None
) -> DeliveryOutcome:
    """2xx delivered; 408, 410, 429, 460 and 5xx but 501/505 retried (after `Retry-After`, or
    `X-RateLimit-Reset`); anything else (400: a message or batch too large, bad JSON) failed."""
    message = body_text(body)
    if 200 <= status_code < 300:
        return DeliveryOutcome(Outcome.DELIVERED, status_code, message)
    if status_code in _RETRY or (status_code >= 500 and status_code not in _NEVER_RETRY):
        after = retry_after_seconds(headers, now=now)
        if after is None:
            after = rate_limit_reset_seconds(headers, now=now)
        return DeliveryOutcome(Outcome.RETRY, status_code, message, after)
    return DeliveryOutcome(
        Outcome.FAILED,
        status_code,
        f"Segment refused the batch: {message or f'HTTP {status_code}'}",
    )


Classifier = Callable[[int, Mapping[str, str], bytes], DeliveryOutcome]


class SegmentCompatible:
    """A vendor taking Segment's `/v1/batch`: its settings schema (for its kind and name),
    limits and reading of answers; everything else is this module's."""

    def __init__(self, schema: Schema, limits: Limits, classify: Classifier) -> None:
        self.kind = schema.kind
        self.name = schema.label
        self.limits = limits
        self.max_batch = limits.messages
        self._classify = classify

    def build(self, target: Target, evaluations: Sequence[Evaluation]) -> PreparedBatch:
        """A `/v1/batch` request within the vendor's limits; the rest waits for the next one."""
        return build_batch(target, evaluations, self.limits, self.name)

    def classify(
        self,
        status_code: int,
        headers: Mapping[str, str],
        body: bytes,
        batch: PreparedBatch | None = None,
    ) -> DeliveryOutcome:
        return self._classify(status_code, headers, body)


# Segment answers 200 to anything it can parse; see `classify_segment`.
DESTINATION = SegmentCompatible(SCHEMA, SEGMENT_LIMITS, classify_segment)
