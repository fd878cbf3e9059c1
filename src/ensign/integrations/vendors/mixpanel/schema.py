"""Mixpanel's settings: its regions' ingestion hosts, `$ignore_time` and the API secret."""

from __future__ import annotations

from ensign.integrations.schema import BOOL, Option, Schema

SCHEMA = Schema(
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
