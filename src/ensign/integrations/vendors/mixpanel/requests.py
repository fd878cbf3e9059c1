"""Mixpanel's profile updates (analytics-apis.md §2.2) and events (§2.3), built and read purely.

Each identity's flags become properties of its Mixpanel profile: `POST {base}/engage?verbose=1`
with a JSON array of `$set` updates. A `$set` is idempotent, so retries are safe; several
updates to one profile in a batch collapse to the latest, which is what Mixpanel would keep.

Experiment exposures are events: `$experiment_started`, with the string properties
"Experiment name" and "Variant name" that Mixpanel's Experiments report reads, through
`POST {base}/track?verbose=1` (the project token in each event), or through
`POST {base}/import?strict=1` with the project's API secret when one is configured (`/track`
refuses events older than five days, which a long vendor outage can make them). Each carries
`$insert_id`, the record's key, by which Mixpanel drops a retried copy. One request goes to
one endpoint: a batch holding both kinds sends the first row's kind and leaves the rest for
the next batch.

The SDKs' custom events (`POST /v1/events`) go the same way, under their own names, with
`time` the SDK's timestamp and `$insert_id` the event's dedupe key.
"""

from __future__ import annotations

import base64
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
    sent_values,
    truncate,
)
from ensign.integrations.vendors.mixpanel.schema import SCHEMA

MAX_UPDATES = 2000
EXPERIMENT_STARTED = SCHEMA.exposure_name
# Mixpanel truncates every string to 255 characters.
MAX_STRING_CHARS = 255


def profile_properties(evaluation: Evaluation) -> dict[str, Any]:
    """Feature name → value sent, by the shared value rule (unlike the reference, `0`, `""`
    and `false` are sent as themselves)."""
    return sent_values(evaluation)


def build_update(evaluation: Evaluation, token: str, *, ignore_time: bool) -> dict[str, Any]:
    """One profile-set update."""
    update: dict[str, Any] = {
        "$token": token,
        "$distinct_id": evaluation.identity,
        "$set": profile_properties(evaluation),
        "$ip": "0",
    }
    if ignore_time:
        update["$ignore_time"] = True
    return update


def encode_update(evaluation: Evaluation, token_json: bytes, *, ignore_time: bool) -> bytes:
    """`build_update`, serialised; the stored values are copied in without parsing them."""
    text = evaluation.values_json
    if text is None:
        token = orjson.loads(token_json)
        return orjson.dumps(build_update(evaluation, token, ignore_time=ignore_time))
    return b"".join(
        (
            b'{"$token":',
            token_json,
            b',"$distinct_id":',
            orjson.dumps(evaluation.identity),
            b',"$set":',
            text.encode(),
            b',"$ip":"0"',
            b',"$ignore_time":true}' if ignore_time else b"}",
        )
    )


def latest_per_identity(evaluations: Sequence[Evaluation]) -> list[Evaluation]:
    """The most recent evaluation of each identity, in order of first appearance."""
    latest: dict[str, Evaluation] = {}
    for evaluation in evaluations:
        current = latest.get(evaluation.identity)
        if current is None or evaluation.evaluated_at >= current.evaluated_at:
            latest[evaluation.identity] = evaluation
    return list(latest.values())


# Exposures and custom events are events (/track or /import); flag sets profile updates.
_EVENTS = (EVENT, EXPOSURE)


def _endpoint(kind: str) -> str:
    return "events" if kind in _EVENTS else "engage"


def build_custom_event(evaluation: Evaluation, token: str) -> dict[str, Any]:
    """One SDK custom event. Ensign's own properties are set last, so that an SDK's metadata
    can never replace the token, the user, the time or the dedupe key."""
    name, props = custom_event(evaluation)
    props.update(
        {
            "token": token,
            "distinct_id": evaluation.identity,
            "time": epoch_milliseconds(evaluation.evaluated_at),
            "$insert_id": evaluation.key,
        }
    )
    return {"event": name, "properties": props}


def build_exposure_event(evaluation: Evaluation, token: str) -> dict[str, Any]:
    """One `$experiment_started` event, as Mixpanel's Experiments report reads it."""
    experiment, variant = exposure(evaluation)
    return {
        "event": EXPERIMENT_STARTED,
        "properties": {
            "token": token,
            "distinct_id": evaluation.identity,
            "time": epoch_milliseconds(evaluation.evaluated_at),
            "$insert_id": evaluation.key,
            "Experiment name": experiment[:MAX_STRING_CHARS],
            "Variant name": variant[:MAX_STRING_CHARS],
        },
    }


class Mixpanel:
    kind = SCHEMA.kind
    max_batch = MAX_UPDATES

    def build(self, target: Target, evaluations: Sequence[Evaluation]) -> PreparedBatch:
        """An engage request for up to 2000 evaluations, one update per distinct id."""
        if len(evaluations) > MAX_UPDATES:
            raise ValueError(f"Mixpanel takes at most {MAX_UPDATES} updates a request")
        if not evaluations:
            return PreparedBatch(None, (), {})
        endpoint = _endpoint(evaluations[0].kind)
        same = [e for e in evaluations if _endpoint(e.kind) == endpoint]
        deferred = tuple(e.key for e in evaluations if _endpoint(e.kind) != endpoint)
        if endpoint == "events":
            return self._events(target, same, deferred)
        evaluations = same
        ignore_time = bool(target.options.get("ignore_time", SCHEMA.default("ignore_time")))
        token = orjson.dumps(target.api_key)
        updates = [
            encode_update(e, token, ignore_time=ignore_time)
            for e in latest_per_identity(evaluations)
        ]
        request = OutboundRequest(
            "POST",
            target.base_url.rstrip("/") + "/engage?verbose=1",
            {"Content-Type": "application/json", "Accept": "application/json"},
            b"[" + b",".join(updates) + b"]",
        )
        return PreparedBatch(request, tuple(e.key for e in evaluations), {}, deferred)

    def _events(
        self, target: Target, evaluations: Sequence[Evaluation], deferred: tuple[str, ...]
    ) -> PreparedBatch:
        events = [
            build_exposure_event(e, target.api_key)
            if e.kind == EXPOSURE
            else build_custom_event(e, target.api_key)
            for e in evaluations
        ]
        base = target.base_url.rstrip("/")
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        secret = target.options.get("api_secret")
        if secret:
            # The project's API secret as the Basic user, with an empty password.
            credentials = base64.b64encode(f"{secret}:".encode()).decode()
            url = base + "/import?strict=1"
            headers["Authorization"] = f"Basic {credentials}"
        else:
            url = base + "/track?verbose=1"
        request = OutboundRequest("POST", url, headers, orjson.dumps(events))
        return PreparedBatch(request, tuple(e.key for e in evaluations), {}, deferred)

    def classify(
        self,
        status_code: int,
        headers: Mapping[str, str],
        body: bytes,
        batch: PreparedBatch | None = None,
    ) -> DeliveryOutcome:
        """Mixpanel answers 200 even when it rejects the data: with `verbose=1` the body says
        `{"status": 1}` for success, or `{"status": 0, "error": …}`, which is not retried."""
        outcome = classify_http(status_code, headers, body)
        if outcome.outcome is not Outcome.DELIVERED:
            return outcome
        try:
            answer = orjson.loads(body)
        except orjson.JSONDecodeError:
            answer = body.decode("utf-8", "replace").strip()
        status = answer.get("status") if isinstance(answer, dict) else answer
        # `/engage` and `/track` say 1; `/import` says "OK".
        if status in (1, "1", "OK"):
            return DeliveryOutcome(Outcome.DELIVERED, status_code, body_text(body))
        error = answer.get("error") if isinstance(answer, dict) else None
        message = truncate(str(error)) if error else body_text(body) or "empty response"
        return DeliveryOutcome(
            Outcome.FAILED, status_code, f"Mixpanel refused the batch: {message}"
        )


DESTINATION = Mixpanel()
