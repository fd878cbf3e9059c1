"""The integrations page's Segment and RudderStack cards, drawn from the catalog: Segment with
its two regions, RudderStack with only the data plane URL."""

from __future__ import annotations

import re

from tests.dashboard.conftest import Browser, Seeded

# A data plane at a public address: a host name would need DNS, which tests cannot rely on.
DATA_PLANE = "https://93.184.216.34"


def _card(html: str, kind: str) -> str:
    found = re.search(
        rf'<section class="card integration" id="integration-{kind}">.*?</section>', html, re.S
    )
    assert found is not None, f"no {kind} card"
    return found.group(0)


def test_integrations__segment_card__write_key_and_both_regions(
    signed_in: Browser, seeded: Seeded
) -> None:
    page = signed_in.get(f"/environments/{seeded.environment_id}/integrations")

    assert page.status_code == 200
    card = _card(page.text, "segment")
    assert "<h2>Segment" in card
    assert "<span>Write key</span>" in card
    assert '<select name="region">' in card
    assert '<option value="us" selected>US</option>' in card
    assert re.search(r'<option value="eu"\s*>EU</option>', card)
    assert "Experiment Viewed" in card


def test_integrations__rudderstack_card__endpoint_url_only(
    signed_in: Browser, seeded: Seeded
) -> None:
    page = signed_in.get(f"/environments/{seeded.environment_id}/integrations")

    card = _card(page.text, "rudderstack")
    assert "<h2>RudderStack" in card
    assert "<span>Source write key</span>" in card
    assert "<span>Endpoint URL</span>" in card
    assert '<select name="region">' not in card
    assert "Experiment Viewed" in card


def test_integrations__rudderstack__saved_with_the_data_plane_url_or_refused_without(
    signed_in: Browser, seeded: Seeded
) -> None:
    env = seeded.environment_id
    missing = signed_in.post(
        f"/environments/{env}/integrations/rudderstack", {"api_key": "rs", "enabled": "on"}
    )
    assert missing.status_code == 400
    assert "Enter the endpoint URL" in missing.text
    created = signed_in.post(
        f"/environments/{env}/integrations/rudderstack",
        {
            "api_key": "rs",
            "region": "custom",
            "base_url": DATA_PLANE,
            "enabled": "on",
        },
    )
    assert created.status_code == 303
    page = signed_in.get(f"/environments/{env}/integrations")
    (rudder,) = [c for c in page.context["cards"] if c["kind"] == "rudderstack"]
    config = rudder["config"]
    assert (config.region, config.base_url) == (None, DATA_PLANE)
