"""The SDKs' event batches (`POST /v1/events`), parsed and checked at the edge.

The official SDKs (Python `flagsmith` 6.3 `EventProcessor`, the JS client) send
`{"events": [{"event", "feature_name", "identifier", "value", "traits", "metadata",
"timestamp"}]}` with `timestamp` in epoch milliseconds. Each event is accepted or refused on
its own: a refused one is named by its index, field and reason, and the others are stored.

Each event gets a dedupe key hashed from everything the SDK sends for it. When a POST fails
(a 5xx, a timeout) the SDKs put the same event objects back in their buffer and send them
again, perhaps in a different batch, so the key identifies the event, not the request.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from ensign.errors import InvalidInput
from ensign.services.event_json import marker_in
from ensign.services.text import is_storable

EXPOSURE_EVENT = "$flag_exposure"
MAX_EVENT_NAME_CHARS = 255
MAX_FEATURE_NAME_CHARS = 2000
MAX_STRING_CHARS = 1024
MAX_METADATA_KEYS = 100
MAX_METADATA_BYTES = 8192
MAX_TRAITS = 200
# Mixpanel's /track takes events from the last five days; older ones get the receive time.
MAX_EVENT_AGE = dt.timedelta(days=5)
# Clocks drift: a timestamp this far ahead of ours is still believed.
MAX_CLOCK_SKEW = dt.timedelta(seconds=60)

FUTURE = "future"
TOO_OLD = "too_old"

Scalar = str | int | float | bool


@dataclass(frozen=True)
class EventLimits:
    events_per_request: int = 1000
    identifier_length: int = 2000


@dataclass(frozen=True)
class SdkEvent:
    """One event, checked. `occurred_at` is the SDK's time, or the receive time when that
    was in the future or too old for the vendors (`adjusted` says which)."""

    key: str
    name: str
    feature_name: str | None
    identifier: str | None
    value: Scalar | None
    metadata: dict[str, Any]
    timestamp_ms: int
    occurred_at: dt.datetime
    adjusted: str | None
    # The traits the SDK evaluated with (its scalar ones), None when it sent none: an
    # exposure is checked against Ensign's evaluation with these, else the stored traits.
    traits: dict[str, Scalar] | None = None

    @property
    def is_exposure(self) -> bool:
        return self.name == EXPOSURE_EVENT

    def properties(self) -> dict[str, Scalar]:
        """What the vendors receive as properties: the scalar metadata, then `value`."""
        props: dict[str, Scalar] = {
            k: v for k, v in self.metadata.items() if isinstance(v, str | int | float | bool)
        }
        if self.value is not None:
            props["value"] = self.value
        if self.adjusted is not None:
            # The time sent is the receive time: keep what the SDK said beside it.
            props["sdk_timestamp"] = self.timestamp_ms
        return props


class _Bad(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Refused:
    """An event of a batch that was not accepted, and why (the 202 answer lists them)."""

    index: int
    field: str
    reason: str


def parse_batch(
    body: Any, environment_id: int, limits: EventLimits, now: dt.datetime
) -> tuple[list[SdkEvent], list[Refused]]:
    """The batch's good events, and the others refused one by one with their index, field and
    reason; InvalidInput only when the body is not a batch (an object with an `events` list).

    An SDK drops a batch answered 2xx or 4xx alike, and re-sends one answered 5xx forever: one
    odd event must neither cost it the others nor strand it."""
    if not isinstance(body, dict) or "events" not in body:
        raise InvalidInput('The body must be an object {"events": [...]}.')
    events = body["events"]
    if not isinstance(events, list):
        raise InvalidInput("events: must be a list.")
    parsed: list[SdkEvent] = []
    refused: list[Refused] = []
    for index, raw in enumerate(events):
        if index >= limits.events_per_request:
            refused.append(
                Refused(index, "", f"at most {limits.events_per_request} events per request.")
            )
            continue
        try:
            parsed.append(_parse_event(raw, environment_id, limits, now))
        except _Bad as bad:
            refused.append(Refused(index, bad.field, bad.message))
    return parsed, refused


def _optional_text(raw: dict[str, Any], field: str, limit: int) -> str | None:
    value = raw.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Bad(field, "must be a string or null.")
    if len(value) > limit:
        raise _Bad(field, f"at most {limit} characters.")
    if not is_storable(value):
        raise _Bad(field, "must not contain NUL characters or unpaired surrogates.")
    return value


def _parse_event(raw: Any, environment_id: int, limits: EventLimits, now: dt.datetime) -> SdkEvent:
    if not isinstance(raw, dict):
        raise _Bad("", "each event must be an object.")
    for field, item in raw.items():
        odd = marker_in(item)
        if odd is not None:
            raise _Bad(field, f"{odd}.")
    name = raw.get("event")
    if not isinstance(name, str) or not name:
        raise _Bad("event", "a non-empty string is required.")
    if len(name) > MAX_EVENT_NAME_CHARS:
        raise _Bad("event", f"at most {MAX_EVENT_NAME_CHARS} characters.")
    if name.startswith("$") and name != EXPOSURE_EVENT:
        raise _Bad("event", f'names beginning with "$" are reserved (only {EXPOSURE_EVENT}).')
    if not is_storable(name):
        raise _Bad("event", "must not contain NUL characters or unpaired surrogates.")
    feature_name = _optional_text(raw, "feature_name", MAX_FEATURE_NAME_CHARS)
    if name == EXPOSURE_EVENT and not feature_name:
        raise _Bad("feature_name", f"required for {EXPOSURE_EVENT}.")
    identifier = _optional_text(raw, "identifier", limits.identifier_length) or None
    value = raw.get("value")
    if isinstance(value, str):
        value = _optional_text(raw, "value", MAX_STRING_CHARS)
    elif value is not None and not isinstance(value, int | float | bool):
        raise _Bad("value", "must be a string, a number, a boolean or null.")
    traits = raw.get("traits")
    if traits is not None and not isinstance(traits, dict):
        raise _Bad("traits", "must be an object or null.")
    if traits and len(traits) > MAX_TRAITS:
        raise _Bad("traits", f"at most {MAX_TRAITS} traits.")
    metadata = _metadata(raw.get("metadata"))
    timestamp = raw.get("timestamp")
    if isinstance(timestamp, bool) or not isinstance(timestamp, int | float):
        raise _Bad("timestamp", "required: epoch milliseconds (a number).")
    if not -(2**53) <= timestamp <= 2**53:
        # Kept as a property beside the receive time (`sdk_timestamp`): it must stay a number
        # every JSON reader takes exactly.
        raise _Bad("timestamp", "out of range for epoch milliseconds.")
    try:
        occurred = dt.datetime.fromtimestamp(timestamp / 1000, dt.UTC)
    except (OverflowError, OSError, ValueError):
        occurred = None
    adjusted = None
    if occurred is None or occurred < now - MAX_EVENT_AGE:
        adjusted, occurred = TOO_OLD, now
    elif occurred > now + MAX_CLOCK_SKEW:
        adjusted, occurred = FUTURE, now
    key = event_key(environment_id, raw)
    return SdkEvent(
        key,
        name,
        feature_name,
        identifier,
        value,
        metadata,
        int(timestamp),
        occurred,
        adjusted,
        _scalar_traits(traits) if traits else None,
    )


def _scalar_traits(traits: dict[str, Any]) -> dict[str, Scalar]:
    # A trait the engine cannot compare (an object, a list, null) is left out, as the SDK's
    # own evaluation would find no value there.
    return {
        k: v
        for k, v in traits.items()
        if isinstance(v, str | int | float | bool) and (not isinstance(v, str) or is_storable(v))
    }


def _metadata(metadata: Any) -> dict[str, Any]:
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise _Bad("metadata", "must be an object or null.")
    if len(metadata) > MAX_METADATA_KEYS:
        raise _Bad("metadata", f"at most {MAX_METADATA_KEYS} properties.")
    for key, item in metadata.items():
        if len(key) > MAX_EVENT_NAME_CHARS:
            raise _Bad(f"metadata.{key[:40]}…", f"names at most {MAX_EVENT_NAME_CHARS} characters.")
        if not is_storable(key):
            raise _Bad("metadata", "names must not contain NUL characters or unpaired surrogates.")
        if isinstance(item, str):
            if len(item) > MAX_STRING_CHARS:
                raise _Bad(f"metadata.{key}", f"at most {MAX_STRING_CHARS} characters.")
            if not is_storable(item):
                raise _Bad(
                    f"metadata.{key}", "must not contain NUL characters or unpaired surrogates."
                )
    if _may_be_large(metadata) and len(orjson.dumps(metadata)) > MAX_METADATA_BYTES:
        raise _Bad("metadata", f"at most {MAX_METADATA_BYTES} bytes as JSON.")
    return metadata


def _may_be_large(metadata: dict[str, Any]) -> bool:
    """Whether metadata could pass the size limit; only then is it serialised to measure it
    (typical metadata is a few short scalars, and this runs for every event)."""
    size = 0
    for key, item in metadata.items():
        if isinstance(item, str):
            size += len(key) + len(item)
        elif isinstance(item, dict | list):
            return True
        else:
            size += len(key) + 24
    # Escapes can take up to six bytes per character.
    return size * 6 + 4 * len(metadata) > MAX_METADATA_BYTES


def event_key(environment_id: int, raw: dict[str, Any]) -> str:
    """32 hex characters identifying an event: the environment and every field the SDK sent,
    which it re-sends unchanged on a retry. It is also the vendors' dedupe key (Heap's
    `idempotency_key`, Mixpanel's `$insert_id`: at most 36 of `[A-Za-z0-9-]`)."""
    canonical = orjson.dumps([environment_id, raw], option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(canonical, digest_size=16).hexdigest()


def custom_payload(event: SdkEvent) -> str:
    """The outbox text of a custom event: its name and the properties sent."""
    return orjson.dumps({"event": event.name, "properties": event.properties()}).decode()


def distinct_keys(events: Sequence[SdkEvent]) -> list[str]:
    """The batch's keys, each once (an SDK may buffer the same event twice in a millisecond)."""
    return list(dict.fromkeys(e.key for e in events))
