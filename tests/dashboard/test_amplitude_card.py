"""The integrations page's Amplitude card: drawn from the catalog like every destination's."""

from __future__ import annotations

import re

from tests.dashboard.conftest import Browser, Seeded


def _card(html: str) -> str:
    found = re.search(
        r'<section class="card integration" id="integration-amplitude">.*?</section>', html, re.S
    )
    assert found is not None, "no Amplitude card"
    return found.group(0)


def test_integrations__amplitude_card__key_regions_and_exposure_name(
    signed_in: Browser, seeded: Seeded
) -> None:
    page = signed_in.get(f"/environments/{seeded.environment_id}/integrations")

    assert page.status_code == 200
    card = _card(page.text)
    assert "<h2>Amplitude" in card
    assert "<span>API key</span>" in card
    options = re.findall(r'<option value="(\w+)"\s*(?:selected)?>(\w[\w ]*)</option>', card)
    assert ("us", "US") in options
    assert ("eu", "EU") in options
    assert '<option value="us" selected>' in card
    assert "($exposure, once per user and variant)" in card
    assert "Add Amplitude integration" in card


def test_integrations__amplitude_eu__configured_with_the_eu_host(
    signed_in: Browser, seeded: Seeded
) -> None:
    env = seeded.environment_id
    created = signed_in.post(
        f"/environments/{env}/integrations/amplitude",
        {"api_key": "amp-key", "region": "eu", "enabled": "on", "exposures": "on"},
    )
    assert created.status_code == 303
    page = signed_in.get(f"/environments/{env}/integrations")
    (amplitude,) = [c for c in page.context["cards"] if c["kind"] == "amplitude"]
    config = amplitude["config"]
    assert (config.region, config.base_url) == ("eu", "https://api.eu.amplitude.com")
    assert '<option value="eu" selected>' in _card(page.text)
    assert "Save Amplitude" in _card(page.text)
