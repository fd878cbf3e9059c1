"""The webhook's card on the integrations page: the generic form, driven by its schema."""

from __future__ import annotations

import re

from ensign.web.deps import AppState
from tests.dashboard.conftest import Browser, Seeded

# A public address, so that the default destination rules accept it without a DNS lookup.
URL = "https://93.184.216.34/ensign-hook"


def card(html: str) -> str:
    found = re.search(
        r'<section class="card integration" id="integration-webhook">.*?</section>', html, re.DOTALL
    )
    assert found is not None, "no webhook card"
    return found.group(0)


def test_webhook_card__form__url_and_password_secret_no_api_key(
    signed_in: Browser, seeded: Seeded
) -> None:
    page = signed_in.get(f"/environments/{seeded.environment_id}/integrations")
    html = card(page.text)
    assert "<h2>Webhook" in html
    assert 'name="base_url"' in html
    assert re.search(r'<input name="secret" type="password"', html)
    assert 'name="api_key"' not in html
    assert '<select name="region"' not in html  # no regions: the URL only


def test_webhook_card__created_through_the_form__secret_kept_never_shown(
    signed_in: Browser, seeded: Seeded, state: AppState
) -> None:
    env = seeded.environment_id
    path = f"/environments/{env}/integrations/webhook"
    # A private address is refused next to the URL field; no secret, next to the secret
    private = signed_in.post(path, {"base_url": "https://10.1.2.3/hook", "secret": "s3cret"})
    assert private.status_code == 400
    assert "public addresses" in card(private.text)
    missing = signed_in.post(path, {"base_url": URL, "enabled": "on"})
    assert missing.status_code == 400
    assert re.search(r'id="secret-error"[^>]*>[^<]*required', card(missing.text))
    # When it is created with both
    created = signed_in.post(path, {"base_url": URL, "secret": "s3cret-value", "enabled": "on"})
    assert created.status_code == 303, created.text
    # Then it is configured, with the secret stored but never rendered
    page = signed_in.get(path.rsplit("/", 1)[0])
    webhook = next(c for c in page.context["cards"] if c["kind"] == "webhook")
    assert webhook["config"].base_url == URL
    assert webhook["config"].options["secret"] == "s3cret-value"
    assert "s3cret-value" not in page.text
    assert "(set; leave blank to keep)" in card(page.text)
    # And saving again with the secret left blank keeps it
    saved = signed_in.post(
        f"{path}/{webhook['config'].id}", {"base_url": URL, "secret": "", "enabled": "on"}
    )
    assert saved.status_code == 303, saved.text
    again = signed_in.get(path.rsplit("/", 1)[0])
    kept = next(c for c in again.context["cards"] if c["kind"] == "webhook")
    assert kept["config"].options["secret"] == "s3cret-value"


def test_webhook_card__url_with_a_line_break__form_error_next_to_the_url(
    signed_in: Browser, seeded: Seeded, state: AppState
) -> None:
    env = seeded.environment_id
    path = f"/environments/{env}/integrations/webhook"
    page = signed_in.post(path, {"base_url": URL + "\r\nX-Injected: 1", "secret": "s3cret"})
    assert page.status_code == 400
    assert re.search(r'id="base_url-error"[^>]*>[^<]*control characters', card(page.text))
    listed = signed_in.get(f"/environments/{env}/integrations")
    webhook = next(c for c in listed.context["cards"] if c["kind"] == "webhook")
    assert webhook["config"] is None


def test_webhook_card__test_event_without_a_dispatcher__says_it_stays_queued(
    signed_in: Browser, seeded: Seeded, state: AppState
) -> None:
    # Given a webhook, no dispatcher running, and a short wait for the vendor's answer
    state.settings = state.settings.model_copy(update={"test_event_wait_seconds": 0.2})
    env = seeded.environment_id
    path = f"/environments/{env}/integrations/webhook"
    created = signed_in.post(path, {"base_url": URL, "secret": "s3cret-value", "enabled": "on"})
    assert created.status_code == 303, created.text
    page = signed_in.get(f"/environments/{env}/integrations")
    (webhook,) = [c for c in page.context["cards"] if c["kind"] == "webhook"]
    # When "Send test event" is pressed
    sent = signed_in.post(f"{path}/{webhook['config'].id}/test", headers={"HX-Request": "true"})
    # Then the answer says no dispatcher answered in time
    assert sent.status_code == 200
    assert "no dispatcher answered in time" in sent.text
    # And a test event for an integration of another kind's path is not found
    other = signed_in.post(f"/environments/{env}/integrations/heap/{webhook['config'].id}/test")
    assert other.status_code == 404
