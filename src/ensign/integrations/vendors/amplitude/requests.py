"""Amplitude's HTTP V2 API (analytics-apis.md §4.1), built and read purely.

Every record becomes one event of one JSON request, `POST {base}/2/httpapi` with
`{"api_key", "events": [...], "options": {"min_id_length": 1}}`: Amplitude refuses ids shorter
than five characters unless told otherwise, and Flagsmith identifiers can be as short as one.

- An identity's flags are an `$identify` event setting one user property per feature
  (`user_properties: {"$set": {feature: value}}`), as Amplitude's own SDKs send them.
- An experiment exposure is a `$exposure` event with `flag_key` (the feature), `variant` and
  `experiment_key`, the event Amplitude Experiment's analysis reads.
- An SDK's custom event keeps its name, its properties becoming `event_properties`.

Each carries `insert_id`, the record's key, by which Amplitude drops a copy it has seen in the
last seven days, so a retried request never counts twice. A request holds at most 2000 events
and stays under 1 MB; what does not fit is left for the next batch.

Amplitude answers for events one by one: a 400 lists the events it refused (by index) and
ingests none, a 429 names the users it throttles. Only those events are dropped or delayed;
the rest are sent again at once (`DeliveryOutcome.by_key`).
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
    Outcome,
    PreparedBatch,
    Target,
    body_text,
    classify_http,
    custom_event,
    epoch_milliseconds,
    exposure,
    exposure_feature,
    sent_values,
    truncate,
)
from ensign.integrations.vendors.amplitude.schema import SCHEMA

PATH = "/2/httpapi"
IDENTIFY = "$identify"
EXPOSURE_EVENT = SCHEMA.exposure_name
# The HTTP V2 API takes at most 2000 events, and requests "under 1 MB", a request; past
# either it answers 413.
MAX_EVENTS = 2000
MAX_BODY_BYTES = 1_000_000
# Amplitude cuts strings at 1024 characters (its Python SDK's MAX_STRING_LENGTH); a user id
# cut short would merge distinct users, so a longer one is refused instead.
MAX_ID_CHARS = 1024
# How long Amplitude asks a throttled user's events to wait (its 429 guidance).
THROTTLE_PAUSE_SECONDS = 30.0
# After a 413, the second half of the batch waits this long, so that the next request
# carries the first half alone (see `Amplitude.classify`).
SPLIT_PAUSE_SECONDS = 10.0

_HEADERS = {"Content-Type": "application/json", "Accept": "*/*"}
_TAIL = b'],"options":{"min_id_length":1}}'

# The 400 answer's lists of refused events (index lists, or field → index lists), and how an
# event's failure message names them.
_REFUSALS = {
    "events_with_invalid_fields": "invalid field",
    "events_with_missing_fields": "missing field",
    "events_with_invalid_id_lengths": "id of invalid length",
    "silenced_events": "silenced (its user or device is blocked in Amplitude)",
}


def build_identify(evaluation: Evaluation) -> dict[str, Any]:
    """An `$identify` event setting the identity's flags as user properties."""
    return {
        "event_type": IDENTIFY,
        "user_id": evaluation.identity,
        "user_properties": {"$set": sent_values(evaluation)},
        "time": epoch_milliseconds(evaluation.evaluated_at),
        "insert_id": evaluation.key,
    }


def build_exposure(evaluation: Evaluation) -> dict[str, Any]:
    """A `$exposure` event: the identity's first sight of an experiment's variant."""
    experiment, variant = exposure(evaluation)
    properties = {"variant": variant, "experiment_key": experiment}
    feature = exposure_feature(evaluation)
    if feature is not None:
        properties = {"flag_key": feature, **properties}
    return {
        "event_type": EXPOSURE_EVENT,
        "user_id": evaluation.identity,
        "event_properties": properties,
        "time": epoch_milliseconds(evaluation.evaluated_at),
        "insert_id": evaluation.key,
    }


def build_custom_event(evaluation: Evaluation) -> dict[str, Any]:
    """An SDK's custom event under its own name, for the identity it names."""
    name, properties = custom_event(evaluation)
    return {
        "event_type": name,
        "user_id": evaluation.identity,
        "event_properties": properties,
        "time": epoch_milliseconds(evaluation.evaluated_at),
        "insert_id": evaluation.key,
    }


def encode_event(evaluation: Evaluation) -> bytes:
    """One event, serialised; a flag set's stored values are copied in without parsing them."""
    if evaluation.kind == EXPOSURE:
        return orjson.dumps(build_exposure(evaluation))
    if evaluation.kind == EVENT:
        return orjson.dumps(build_custom_event(evaluation))
    if evaluation.values_json is None:
        return orjson.dumps(build_identify(evaluation))
    return b"".join(
        (
            b'{"event_type":"$identify","user_id":',
            orjson.dumps(evaluation.identity),
            b',"user_properties":{"$set":',
            evaluation.values_json.encode(),
            b'},"time":',
            str(epoch_milliseconds(evaluation.evaluated_at)).encode(),
            b',"insert_id":',
            orjson.dumps(evaluation.key),
            b"}",
        )
    )


def refusal(evaluation: Evaluation) -> str | None:
    """Why Amplitude cannot take this identity as a user id, if it cannot."""
    if not evaluation.identity:
        return "empty identifier; Amplitude needs a user_id"
    if len(evaluation.identity) > MAX_ID_CHARS:
        return f"identifier longer than {MAX_ID_CHARS} characters; Amplitude would cut it"
    return None


class Amplitude:
    kind = SCHEMA.kind
    max_batch = MAX_EVENTS

    def build(self, target: Target, evaluations: Sequence[Evaluation]) -> PreparedBatch:
        """One request for up to 2000 evaluations, under 1 MB: once the next event would not
        fit, it and the ones after it are deferred to the next batch."""
        if len(evaluations) > MAX_EVENTS:
            raise ValueError(f"Amplitude takes at most {MAX_EVENTS} events a request")
        head = b'{"api_key":' + orjson.dumps(target.api_key) + b',"events":['
        size = len(head) + len(_TAIL)
        events: list[bytes] = []
        sent: list[str] = []
        identities: list[str] = []
        rejected: dict[str, str] = {}
        deferred: tuple[str, ...] = ()
        for position, evaluation in enumerate(evaluations):
            reason = refusal(evaluation)
            if reason is not None:
                rejected[evaluation.key] = reason
                continue
            event = encode_event(evaluation)
            if len(head) + len(_TAIL) + len(event) >= MAX_BODY_BYTES:
                rejected[evaluation.key] = "larger than Amplitude's 1 MB request limit on its own"
                continue
            added = len(event) + (1 if events else 0)
            if size + added >= MAX_BODY_BYTES:
                deferred = tuple(e.key for e in evaluations[position:])
                break
            size += added
            events.append(event)
            sent.append(evaluation.key)
            identities.append(evaluation.identity)
        if not events:
            return PreparedBatch(None, (), rejected, deferred)
        request = OutboundRequest(
            "POST",
            target.base_url.rstrip("/") + PATH,
            _HEADERS,
            head + b",".join(events) + _TAIL,
        )
        return PreparedBatch(request, tuple(sent), rejected, deferred, tuple(identities))

    def classify(
        self,
        status_code: int,
        headers: Mapping[str, str],
        body: bytes,
        batch: PreparedBatch | None = None,
    ) -> DeliveryOutcome:
        """200 is success. A 400 listing events fails those and resends the rest at once; a
        400 listing none fails the batch. A 429 naming users delays theirs by 30 s, fails
        those over their daily quota, and resends the rest at once; a bare 429 retries after
        `Retry-After`. A 413 splits the batch in two. 408 and 5xx retry; other 4xx fail."""
        if status_code == 400:
            return _refused(_answer(body), body, batch)
        if status_code == 413:
            return _too_large(body, batch)
        if status_code == 429:
            outcome = _throttled(_answer(body), body, batch)
            if outcome is not None:
                return outcome
        return classify_http(status_code, headers, body)


def _answer(body: bytes) -> dict[str, Any]:
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    return answer if isinstance(answer, dict) else {}


def _indexes(value: Any) -> list[tuple[int, str | None]]:
    """(event index, field) pairs from an index list or a field → index list map."""
    if isinstance(value, list):
        return [(i, None) for i in value if isinstance(i, int)]
    if isinstance(value, dict):
        return [
            (i, str(field))
            for field, found in value.items()
            if isinstance(found, list)
            for i in found
            if isinstance(i, int)
        ]
    return []


def _refused(answer: dict[str, Any], body: bytes, batch: PreparedBatch | None) -> DeliveryOutcome:
    error = truncate(str(answer.get("error") or "")) or body_text(body) or "HTTP 400"
    reasons: dict[int, list[str]] = {}
    count = len(batch.sent) if batch is not None else 0
    for name, label in _REFUSALS.items():
        for index, field in _indexes(answer.get(name)):
            if 0 <= index < count:
                reasons.setdefault(index, []).append(f"{label} `{field}`" if field else label)
    if batch is None or not reasons:
        missing = answer.get("missing_field")
        if missing:
            error = f"{error} (missing field `{missing}`)"
        return DeliveryOutcome(Outcome.FAILED, 400, f"Amplitude refused the batch: {error}")
    outcomes: dict[str, DeliveryOutcome] = {}
    by_key: dict[str, DeliveryOutcome] = {}
    for index, found in reasons.items():
        message = f"Amplitude refused the event: {', '.join(found)}"
        by_key[batch.sent[index]] = outcomes.setdefault(
            message, DeliveryOutcome(Outcome.FAILED, 400, message)
        )
    summary = f"Amplitude refused {len(by_key)} of {count} events: {error}"
    if len(by_key) == count:
        return DeliveryOutcome(Outcome.FAILED, 400, summary, by_key=by_key)
    # Amplitude ingests nothing from a 400: the valid events go again, at once.
    return DeliveryOutcome(Outcome.RETRY, 400, summary, retry_after_seconds=0.0, by_key=by_key)


def _too_large(body: bytes, batch: PreparedBatch | None) -> DeliveryOutcome:
    """`build` keeps every request within the documented limits, so a 413 means this project's
    limit is lower: the batch is halved, the second half waiting so that the next request
    carries the first half alone; a single event refused as too large fails."""
    message = body_text(body) or "request too large"
    if batch is None or len(batch.sent) <= 1:
        return DeliveryOutcome(Outcome.FAILED, 413, f"Amplitude refused it as too large: {message}")
    later = DeliveryOutcome(
        Outcome.RETRY,
        413,
        f"split after a 413, sent after the first half: {message}",
        retry_after_seconds=SPLIT_PAUSE_SECONDS,
    )
    by_key = {key: later for key in batch.sent[len(batch.sent) // 2 :]}
    # The first half goes again after the usual backoff (not at once: if every request is
    # refused, that keeps the retries paced).
    return DeliveryOutcome(Outcome.RETRY, 413, f"split after a 413: {message}", by_key=by_key)


def _names(value: Any) -> set[str]:
    """User or device ids from a 429's map (id → events per second) or list."""
    if isinstance(value, dict):
        return {str(k) for k in value}
    if isinstance(value, list):
        return {str(v) for v in value}
    return set()


def _throttled(
    answer: dict[str, Any], body: bytes, batch: PreparedBatch | None
) -> DeliveryOutcome | None:
    """A 429 naming users, devices or events: None when it names none of this batch's."""
    if batch is None or len(batch.identities) != len(batch.sent):
        return None
    over_quota = _names(answer.get("exceeded_daily_quota_users")) | _names(
        answer.get("exceeded_daily_quota_devices")
    )
    throttled = _names(answer.get("throttled_users")) | _names(answer.get("throttled_devices"))
    throttled_events = {i for i, _ in _indexes(answer.get("throttled_events"))}
    error = truncate(str(answer.get("error") or "")) or body_text(body) or "HTTP 429"
    failed = DeliveryOutcome(
        Outcome.FAILED, 429, f"over the user's daily event quota in Amplitude: {error}"
    )
    paused = DeliveryOutcome(
        Outcome.RETRY,
        429,
        f"user throttled by Amplitude: {error}",
        retry_after_seconds=THROTTLE_PAUSE_SECONDS,
    )
    by_key: dict[str, DeliveryOutcome] = {}
    for index, (key, identity) in enumerate(zip(batch.sent, batch.identities, strict=True)):
        if identity in over_quota:
            by_key[key] = failed
        elif identity in throttled or index in throttled_events:
            by_key[key] = paused
    if not by_key:
        return None
    message = f"Amplitude throttled {len(by_key)} of {len(batch.sent)} events: {error}"
    return DeliveryOutcome(Outcome.RETRY, 429, message, retry_after_seconds=0.0, by_key=by_key)


DESTINATION = Amplitude()
