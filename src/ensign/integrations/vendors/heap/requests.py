"""Heap's server-side bulk track API (analytics-apis.md §1.3), built and read purely.

One event per evaluation, all in one bulk request: `POST {base}/api/track` with
`{"app_id", "events": [...]}`. Each event carries the evaluation time and an idempotency key,
so that a retried request is deduplicated by Heap rather than counted twice. An experiment
exposure is an `Experiment Viewed` event with the properties "Experiment name" and
"Variant name", in the same requests.
"""

from __future__ import annotations

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
    exposure,
    iso_timestamp,
    sent_values,
)
from ensign.integrations.vendors.heap.schema import SCHEMA

DEFAULT_EVENT_NAME = str(SCHEMA.default("event_name"))
EXPERIMENT_VIEWED = SCHEMA.exposure_name
MAX_EVENTS = 1000
MAX_IDENTITY_CHARS = 255
# Heap wants property names and string values under 1024 characters.
MAX_PROPERTY_CHARS = 1023


def _clip(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_PROPERTY_CHARS:
        return value[:MAX_PROPERTY_CHARS]
    return value


def event_properties(evaluation: Evaluation) -> dict[str, Any]:
    """Feature name → value sent, by the shared value rule, clipped to Heap's limits."""
    sent = sent_values(evaluation)
    # Names and values past Heap's limit are rare: look for one before rebuilding the map.
    for name, value in sent.items():
        if len(name) > MAX_PROPERTY_CHARS or (
            type(value) is str and len(value) > MAX_PROPERTY_CHARS
        ):
            return {_clip(n): _clip(v) for n, v in sent.items()}
    return sent


def build_event(evaluation: Evaluation, event_name: str) -> dict[str, Any]:
    """One bulk-track event for one evaluation."""
    return {
        "identity": evaluation.identity,
        "event": event_name,
        "properties": event_properties(evaluation),
        "timestamp": iso_timestamp(evaluation.evaluated_at),
        "idempotency_key": evaluation.key,
    }


def build_exposure_event(evaluation: Evaluation) -> dict[str, Any]:
    """One `Experiment Viewed` event: the identity's first sight of an experiment's variant."""
    experiment, variant = exposure(evaluation)
    return {
        "identity": evaluation.identity,
        "event": EXPERIMENT_VIEWED,
        "properties": {"Experiment name": _clip(experiment), "Variant name": _clip(variant)},
        "timestamp": iso_timestamp(evaluation.evaluated_at),
        "idempotency_key": evaluation.key,
    }


def build_custom_event(evaluation: Evaluation) -> dict[str, Any]:
    """An SDK's custom event under its own name, for the identity it names."""
    name, props = custom_event(evaluation)
    return {
        "identity": evaluation.identity,
        "event": _clip(name),
        "properties": {_clip(k): _clip(v) for k, v in props.items()},
        "timestamp": iso_timestamp(evaluation.evaluated_at),
        "idempotency_key": evaluation.key,
    }


def _fits(values_json: str) -> bool:
    """Whether no name or string value in the JSON text can be past Heap's limit: with no
    escapes, every string is a run between two quotes, and a run that short is short enough."""
    if len(values_json) <= MAX_PROPERTY_CHARS:
        return True
    return "\\" not in values_json and max(map(len, values_json.split('"'))) <= MAX_PROPERTY_CHARS


def encode_event(evaluation: Evaluation, event_name_json: bytes) -> bytes:
    """`build_event`, serialised; the stored values are copied in without parsing them when
    nothing in them needs clipping."""
    if evaluation.kind == EXPOSURE:
        return orjson.dumps(build_exposure_event(evaluation))
    if evaluation.kind == EVENT:
        return orjson.dumps(build_custom_event(evaluation))
    text = evaluation.values_json
    if text is None or not _fits(text):
        return orjson.dumps(build_event(evaluation, orjson.loads(event_name_json)))
    return b"".join(
        (
            b'{"identity":',
            orjson.dumps(evaluation.identity),
            b',"event":',
            event_name_json,
            b',"properties":',
            text.encode(),
            b',"timestamp":"',
            iso_timestamp(evaluation.evaluated_at).encode(),
            b'","idempotency_key":',
            orjson.dumps(evaluation.key),
            b"}",
        )
    )


class Heap:
    kind = SCHEMA.kind
    max_batch = MAX_EVENTS

    def build(self, target: Target, evaluations: Sequence[Evaluation]) -> PreparedBatch:
        """A bulk-track request for up to 1000 evaluations; identities Heap refuses are set aside."""
        if len(evaluations) > MAX_EVENTS:
            raise ValueError(f"Heap takes at most {MAX_EVENTS} events a request")
        event_name = orjson.dumps(str(target.options.get("event_name") or DEFAULT_EVENT_NAME))
        events: list[bytes] = []
        sent: list[str] = []
        rejected: dict[str, str] = {}
        for evaluation in evaluations:
            if len(evaluation.identity) > MAX_IDENTITY_CHARS:
                rejected[evaluation.key] = (
                    f"identity longer than {MAX_IDENTITY_CHARS} characters; Heap refuses it"
                )
                continue
            events.append(encode_event(evaluation, event_name))
            sent.append(evaluation.key)
        if not events:
            return PreparedBatch(None, (), rejected)
        body = b"".join(
            (b'{"app_id":', orjson.dumps(target.api_key), b',"events":[', b",".join(events), b"]}")
        )
        request = OutboundRequest(
            "POST",
            target.base_url.rstrip("/") + "/api/track",
            {"Content-Type": "application/json"},
            body,
        )
        return PreparedBatch(request, tuple(sent), rejected)

    def classify(
        self,
        status_code: int,
        headers: Mapping[str, str],
        body: bytes,
        batch: PreparedBatch | None = None,
    ) -> DeliveryOutcome:
        """2xx (an empty text body) is success; 408, 429 and 5xx retry; any other 4xx fails."""
        return classify_http(status_code, headers, body)


DESTINATION = Heap()
