"""What every vendor module shares: the evaluation sent, the request built, the outcome read."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import orjson

from ensign.integrations.values import properties

# Vendor answers are kept for people to read; a few hundred characters say what went wrong.
MAX_MESSAGE_CHARS = 500


@dataclass(frozen=True)
class Evaluation:
    """One identity's flags, exactly as returned to the SDK, at the time they were evaluated.

    `flags` maps each feature name to `(enabled, value)` (a tuple, or the list stored as JSON);
    `key` is unique to the evaluation
    and becomes the vendor's idempotency key, so a retried request never counts twice.
    """

    key: str
    identity: str
    flags: Mapping[str, tuple[bool, Any]]
    evaluated_at: dt.datetime
    # Feature name → value sent, when already resolved from the flags by
    # `values.property_value`; `flags` is then unused.
    values: dict[str, Any] | None = None
    # The same as JSON text, as the outbox stores it: builders copy it into the request as it
    # is, without parsing it (`values` and `flags` are then unused).
    values_json: str | None = None
    # `flags` (the above), `exposure`: an identity's first sight of an experiment's variant,
    # `values_json` then holding {"experiment": name, "variant": key, "feature": name}, or
    # `event`: an SDK's custom event, `values_json` holding {"event": name, "properties": {…}}.
    kind: str = "flags"


@dataclass(frozen=True)
class Target:
    """Where one integration sends, and its vendor options."""

    api_key: str
    base_url: str
    options: Mapping[str, Any] = field(default_factory=dict)
    # When the request is built (the dispatcher's clock), for vendors that sign it with a
    # timestamp; None in a build that does not say.
    now: dt.datetime | None = None


@dataclass(frozen=True)
class OutboundRequest:
    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class PreparedBatch:
    """A request carrying `sent` evaluation keys; `rejected` ones cannot be sent (key → why);
    `deferred` ones need another request (another endpoint) and are left for the next batch.

    `identities` holds each sent evaluation's identity, in the order of `sent`, for vendors
    whose answers name users rather than events (Amplitude's `throttled_users`)."""

    request: OutboundRequest | None
    sent: tuple[str, ...]
    rejected: Mapping[str, str]
    deferred: tuple[str, ...] = ()
    identities: tuple[str, ...] = ()


class Outcome(enum.Enum):
    DELIVERED = "delivered"
    RETRY = "retry"
    FAILED = "failed"


@dataclass(frozen=True)
class DeliveryOutcome:
    """What became of a request. `by_key` holds the evaluations whose fate differs from the
    rest (evaluation key → their own outcome): a vendor that refuses some events of a batch
    (Amplitude's 400 listing invalid events, its 429 naming throttled users) fails or delays
    only those, and the rest are sent again after `retry_after_seconds`, not a backoff."""

    outcome: Outcome
    status_code: int | None
    message: str
    retry_after_seconds: float | None = None
    by_key: Mapping[str, DeliveryOutcome] = field(default_factory=dict)


class Destination(Protocol):
    """A vendor: how many evaluations fit in one request, how to build it, how to read the answer.

    Each vendor's `vendors/<kind>/requests.py` exports one as `DESTINATION`, with the `kind`
    of its settings schema (`vendors/<kind>/schema.py`, listed in `catalog`); the outbox,
    dispatcher, attempt log, counters, admin API and dashboard take it from there. `build`
    receives evaluations of every record kind (flags, exposure, event) and may defer the ones
    another endpoint takes."""

    @property
    def kind(self) -> str: ...

    @property
    def max_batch(self) -> int: ...

    def build(self, target: Target, evaluations: Sequence[Evaluation]) -> PreparedBatch: ...

    def classify(
        self,
        status_code: int,
        headers: Mapping[str, str],
        body: bytes,
        batch: PreparedBatch | None = None,
    ) -> DeliveryOutcome:
        """The answer to `batch`'s request (the dispatcher always passes the batch)."""
        ...


def sent_values(evaluation: Evaluation) -> dict[str, Any]:
    """The evaluation's values sent: as given, or resolved from its flags."""
    if evaluation.values is not None:
        return evaluation.values
    if evaluation.values_json is not None:
        values: dict[str, Any] = orjson.loads(evaluation.values_json)
        return values
    return properties(evaluation.flags)


EXPOSURE = "exposure"


def exposure(evaluation: Evaluation) -> tuple[str, str]:
    """An exposure's experiment name and variant key, as recorded."""
    payload = orjson.loads(evaluation.values_json or "{}")
    return str(payload.get("experiment", "")), str(payload.get("variant", ""))


def exposure_feature(evaluation: Evaluation) -> str | None:
    """The name of the feature an exposure's experiment splits, as recorded; None for
    exposures recorded before the record carried it."""
    feature = orjson.loads(evaluation.values_json or "{}").get("feature")
    return None if feature is None else str(feature)


EVENT = "event"


def custom_event(evaluation: Evaluation) -> tuple[str, dict[str, Any]]:
    """An SDK custom event's name and properties, as recorded."""
    payload = orjson.loads(evaluation.values_json or "{}")
    return str(payload.get("event", "")), dict(payload.get("properties") or {})


def exposure_experiment_id(evaluation: Evaluation) -> str | None:
    """An exposure's experiment id, as recorded; None for records that name the experiment
    only."""
    found = orjson.loads(evaluation.values_json or "{}").get("experiment_id")
    return None if found is None else str(found)


def epoch_milliseconds(moment: dt.datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp() * 1000)


def truncate(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def body_text(body: bytes) -> str:
    return truncate(body.decode("utf-8", "replace").strip())


def retry_after_seconds(
    headers: Mapping[str, str], *, now: dt.datetime | None = None
) -> float | None:
    """The `Retry-After` header in seconds (it may be a number or an HTTP date), if usable."""
    raw = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if raw is None:
        return None
    raw = raw.strip()
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - (now or dt.datetime.now(dt.UTC))).total_seconds())


def classify_http(status_code: int, headers: Mapping[str, str], body: bytes) -> DeliveryOutcome:
    """The rule both vendors share: 2xx delivered; 408, 429 and 5xx retry; other 4xx fail."""
    message = body_text(body)
    if 200 <= status_code < 300:
        return DeliveryOutcome(Outcome.DELIVERED, status_code, message)
    if status_code in (408, 429) or status_code >= 500:
        return DeliveryOutcome(Outcome.RETRY, status_code, message, retry_after_seconds(headers))
    return DeliveryOutcome(Outcome.FAILED, status_code, message or f"HTTP {status_code}")


def network_failure(error: str) -> DeliveryOutcome:
    """A request that got no answer (refused, reset, timed out): always worth retrying."""
    return DeliveryOutcome(Outcome.RETRY, None, truncate(error))


def iso_timestamp(moment: dt.datetime) -> str:
    """ISO 8601 in UTC with an explicit offset, e.g. `2017-03-10T22:21:56.123456+00:00`."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).isoformat()
