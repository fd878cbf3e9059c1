"""Heap's settings: its regions' ingestion hosts and the name of the event carrying the flags."""

from __future__ import annotations

from ensign.integrations.schema import Option, Schema

SCHEMA = Schema(
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
