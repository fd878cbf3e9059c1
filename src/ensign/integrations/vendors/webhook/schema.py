"""A webhook's settings: any receiver's URL and the secret each request is signed with."""

from __future__ import annotations

from ensign.integrations.schema import Option, Schema

SCHEMA = Schema(
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
