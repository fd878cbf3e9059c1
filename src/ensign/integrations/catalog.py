"""Every destination's settings schema: what it is called, where it sends, what it asks for.

This is the one list of destinations. The admin API, the dashboard form, the audit log and the
service that validates a configuration read it; each vendor's request building lives in its
own module beside this one, which the delivery layer looks up by the same `kind`. Nothing here
builds a request, so the request path may import it (the import contracts forbid the vendor
modules there).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

BOOL = "bool"
TEXT = "text"


@dataclass(frozen=True)
class Option:
    """A setting beyond the common ones, kept in the integration's `options` under `name`."""

    name: str
    label: str
    description: str
    type: str = TEXT
    default: bool | str | None = None
    # Write-only (a credential): never shown again; the API shows `<name>_set` instead, and the
    # audit log records only that it changed.
    secret: bool = False
    required: bool = False
    max_chars: int = 1024


@dataclass(frozen=True)
class Schema:
    kind: str
    label: str
    # The credential sent to the vendor (`api_key` in the API), as the vendor names it.
    key_label: str
    # Region → ingestion base URL; the first is the default. With none, `base_url` is required.
    regions: Mapping[str, str]
    options: tuple[Option, ...] = ()
    # What the vendor calls an exposure, for the dashboard's checkbox.
    exposure_name: str = "Experiment Viewed"
    # Other names the API accepts for a common field (e.g. a webhook's `url` for `base_url`).
    aliases: Mapping[str, str] = field(default_factory=dict)
    # Whether `api_key` is needed at all (a webhook signs with a secret option instead).
    key_required: bool = True
    # Whether its flags records carry the identity's traits, each flag's `enabled` and value,
    # and the segments it matched (`services.outbox`), rather than only the value sent per flag.
    record_context: bool = False

    @property
    def secret_names(self) -> frozenset[str]:
        return frozenset(o.name for o in self.options if o.secret)


HEAP = Schema(
    kind="heap",
    label="Heap",
    key_label="Heap environment ID",
    # analytics-apis.md §1.1: each data region's ingestion host.
    regions={"us": "https://heapanalytics.com", "eu": "https://c.eu.heap-api.com"},
    options=(
        Option(
            "event_name",
            "Event name",
            "The name of the event carrying the flags.",
            default="Flagsmith Feature Flags",
        ),
    ),
)

MIXPANEL = Schema(
    kind="mixpanel",
    label="Mixpanel",
    key_label="Project token",
    # analytics-apis.md §2.1.
    regions={
        "us": "https://api.mixpanel.com",
        "eu": "https://api-eu.mixpanel.com",
        "in": "https://api-in.mixpanel.com",
    },
    options=(
        Option(
            "ignore_time",
            "Send $ignore_time",
            "Send `$ignore_time`, so these updates leave the user's last-seen time as it is.",
            type=BOOL,
            default=True,
        ),
        Option(
            "api_secret",
            "API secret",
            "The project's API secret; exposures and events then go through `/import` "
            "instead of `/track`. Never shown again.",
            secret=True,
            max_chars=200,
        ),
    ),
    exposure_name="$experiment_started",
)

AMPLITUDE = Schema(
    kind="amplitude",
    label="Amplitude",
    key_label="API key",
    # analytics-apis.md §4.1: the HTTP V2 API's ingestion host per data residency.
    regions={"us": "https://api2.amplitude.com", "eu": "https://api.eu.amplitude.com"},
    exposure_name="$exposure",
)

WEBHOOK = Schema(
    kind="webhook",
    label="Webhook",
    key_label="Unused (requests are signed with the secret)",
    # Any receiver's URL, checked by the same destination rules as every custom URL.
    regions={},
    options=(
        Option(
            "secret",
            "Signing secret",
            "The shared secret each request is signed with (`X-Ensign-Signature`, HMAC-SHA256; "
            "see docs/destinations/webhook.md). Never shown again.",
            secret=True,
            required=True,
            max_chars=200,
        ),
    ),
    exposure_name="exposure",
    aliases={"url": "base_url"},
    key_required=False,
    record_context=True,
)

SEGMENT = Schema(
    kind="segment",
    label="Segment",
    key_label="Write key",
    # analytics-apis.md §4.2: the Oregon (default) and Dublin ingestion hosts; an EU
    # workspace's events sent to the US host are lost.
    regions={"us": "https://api.segment.io", "eu": "https://events.eu1.segmentapis.com"},
)

RUDDERSTACK = Schema(
    kind="rudderstack",
    label="RudderStack",
    key_label="Source write key",
    # analytics-apis.md §4.3: every workspace has its own data plane URL, so no regions.
    regions={},
)

SCHEMAS: dict[str, Schema] = {
    s.kind: s for s in (HEAP, MIXPANEL, AMPLITUDE, WEBHOOK, SEGMENT, RUDDERSTACK)
}
