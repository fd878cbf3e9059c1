"""A signed webhook: any HTTPS receiver gets the evaluations as JSON, built and read purely.

One `POST` to the configured URL per batch, `Content-Type: application/json`, with the body
`{"items": [...]}`: up to 500 items and at most 1 MB (an item that would pass either limit
waits for the next request; one item alone larger than 1 MB is refused). Each item has a
`type`:

* `flags`: an identity's evaluation, with the traits it was evaluated with, each flag's
  `enabled` and value, and the segments it matched (the outbox records that context for this
  destination, `Schema.record_context`);
* `exposure`: an identity's first sight of an experiment's variant (and the feature it splits);
* `event`: an SDK's custom event.

Every item carries `id`, the record's key, unchanged when a request is retried: receivers
dedupe by it. The request is signed Stripe-style, so that a receiver can tell it came from
Ensign, unchanged, and recently: `X-Ensign-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
"<t>.<raw body>" under the secret>`. `X-Ensign-Event-Id` names the batch: the same items give
the same id. docs/destinations/webhook.md documents the format and how to verify it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from ensign.integrations.base import (
    EVENT,
    EXPOSURE,
    DeliveryOutcome,
    Evaluation,
    OutboundRequest,
    PreparedBatch,
    Target,
    classify_http,
    custom_event,
    epoch_milliseconds,
    exposure,
    exposure_feature,
    iso_timestamp,
)
from ensign.integrations.vendors.webhook.schema import SCHEMA

MAX_ITEMS = 500
# The body's size limit, in bytes: small enough for any receiver's default request limit.
MAX_BODY_BYTES = 1_000_000
SIGNATURE_HEADER = "X-Ensign-Signature"
EVENT_ID_HEADER = "X-Ensign-Event-Id"
_OPEN, _CLOSE = b'{"items":[', b"]}"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The `X-Ensign-Signature` value: the timestamp, and the HMAC-SHA256 of
    `"<timestamp>.<body>"` under the secret, in hex. The timestamp is signed with the body, so
    a receiver that checks its age rejects a replayed request."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def event_id(keys: Sequence[str]) -> str:
    """The batch's id: a hash of its item ids, so that a request carrying the same items
    again (a retry) has the same id."""
    return hashlib.sha256("\n".join(keys).encode()).hexdigest()[:32]


def build_item(evaluation: Evaluation) -> dict[str, Any] | None:
    """One item of the body; None for a flags record stored without its context, which this
    destination cannot describe."""
    item: dict[str, Any] = {
        "type": evaluation.kind,
        "id": evaluation.key,
        "identity": evaluation.identity,
        "evaluated_at": iso_timestamp(evaluation.evaluated_at),
    }
    if evaluation.kind == EXPOSURE:
        item["experiment"], item["variant"] = exposure(evaluation)
        item["feature"] = exposure_feature(evaluation)
        return item
    if evaluation.kind == EVENT:
        item["event"], item["properties"] = custom_event(evaluation)
        return item
    recorded = orjson.loads(evaluation.values_json or "null")
    if not (
        isinstance(recorded, dict)
        and isinstance(recorded.get("traits"), dict)
        and isinstance(recorded.get("flags"), list)
        and isinstance(recorded.get("segments"), list)
    ):
        return None
    item["traits"] = recorded["traits"]
    item["flags"] = recorded["flags"]
    item["segments"] = recorded["segments"]
    return item


class Webhook:
    kind = SCHEMA.kind
    max_batch = MAX_ITEMS

    def build(self, target: Target, evaluations: Sequence[Evaluation]) -> PreparedBatch:
        """One signed request with the items that fit in 1 MB; the rest wait for the next."""
        if len(evaluations) > MAX_ITEMS:
            raise ValueError(f"a webhook request takes at most {MAX_ITEMS} items")
        secret = str(target.options.get("secret") or "")
        if not secret:
            reason = "no signing secret is configured"
            return PreparedBatch(None, (), {e.key: reason for e in evaluations})
        items: list[bytes] = []
        sent: list[str] = []
        rejected: dict[str, str] = {}
        deferred: list[str] = []
        size = len(_OPEN) + len(_CLOSE)
        for evaluation in evaluations:
            if deferred:
                deferred.append(evaluation.key)
                continue
            item = build_item(evaluation)
            if item is None:
                rejected[evaluation.key] = "recorded without the context a webhook sends"
                continue
            encoded = orjson.dumps(item)
            if len(_OPEN) + len(encoded) + len(_CLOSE) > MAX_BODY_BYTES:
                rejected[evaluation.key] = f"larger than the {MAX_BODY_BYTES} bytes a request takes"
                continue
            added = len(encoded) + (1 if items else 0)
            if size + added > MAX_BODY_BYTES:
                deferred.append(evaluation.key)
                continue
            size += added
            items.append(encoded)
            sent.append(evaluation.key)
        if not items:
            return PreparedBatch(None, (), rejected, tuple(deferred))
        body = b"".join((_OPEN, b",".join(items), _CLOSE))
        # The send time (the dispatcher's clock); a build that does not give one signs with
        # the latest evaluation's time.
        if target.now is not None:
            timestamp = epoch_milliseconds(target.now) // 1000
        else:
            timestamp = max(epoch_milliseconds(e.evaluated_at) for e in evaluations) // 1000
        request = OutboundRequest(
            "POST",
            target.base_url,
            {
                "Content-Type": "application/json",
                SIGNATURE_HEADER: signature(secret, timestamp, body),
                EVENT_ID_HEADER: event_id(sent),
            },
            body,
        )
        return PreparedBatch(request, tuple(sent), rejected, tuple(deferred))

    def classify(
        self,
        status_code: int,
        headers: Mapping[str, str],
        body: bytes,
        batch: PreparedBatch | None = None,
    ) -> DeliveryOutcome:
        """2xx delivered; 408, 429 and 5xx retry (after `Retry-After` when given); any other
        4xx fails, 410 Gone included (the receiver says it is not coming back)."""
        return classify_http(status_code, headers, body)


DESTINATION = Webhook()
