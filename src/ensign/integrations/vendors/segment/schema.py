"""Segment's settings: its regions' ingestion hosts and the write key."""

from __future__ import annotations

from ensign.integrations.schema import Schema

SCHEMA = Schema(
    kind="segment",
    label="Segment",
    key_label="Write key",
    # analytics-apis.md §4.2: the Oregon (default) and Dublin ingestion hosts; an EU
    # workspace's events sent to the US host are lost.
    regions={"us": "https://api.segment.io", "eu": "https://events.eu1.segmentapis.com"},
)
