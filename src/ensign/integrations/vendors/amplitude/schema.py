"""Amplitude's settings: the HTTP V2 API's host per data residency."""

from __future__ import annotations

from ensign.integrations.schema import Schema

SCHEMA = Schema(
    kind="amplitude",
    label="Amplitude",
    key_label="API key",
    # analytics-apis.md §4.1: the HTTP V2 API's ingestion host per data residency.
    regions={"us": "https://api2.amplitude.com", "eu": "https://api.eu.amplitude.com"},
    exposure_name="$exposure",
)
