"""RudderStack's settings: the workspace's own data plane URL and the source write key."""

from __future__ import annotations

from ensign.integrations.schema import Schema

SCHEMA = Schema(
    kind="rudderstack",
    label="RudderStack",
    key_label="Source write key",
    # analytics-apis.md §4.3: every workspace has its own data plane URL, so no regions.
    regions={},
)
