"""What a new user met in the dashboard (issue 22), in a real browser: traits keep their type
through an unchanged save, the integrations overview says when a destination is failing, a
rejected integration save shows where the user looks, help text shows code as code, the
feature page names the destinations that get exposures, and the site has an icon.

One server and one browser serve the whole module (`test_browser_forms`' fixtures)."""

from __future__ import annotations

import socket
from typing import Any

import httpx
import pytest

from tests.conftest import wait_for
from tests.dashboard.test_browser import pytestmark
from tests.dashboard.test_browser_forms import (
    Project,
    Site,
    browser,
    page,
    project,
    signed_in_state,
    site,
)

__all__ = ["browser", "page", "project", "pytestmark", "signed_in_state", "site"]

playwright_sync = pytest.importorskip("playwright.sync_api")
Page = playwright_sync.Page
expect = playwright_sync.expect


def _identify(site: Site, project: Project, identifier: str, traits: dict[str, Any]) -> Any:
    response = httpx.post(
        f"{site.server.api_url}identities/",
        json={
            "identifier": identifier,
            "traits": [{"trait_key": k, "trait_value": v} for k, v in traits.items()],
        },
        headers={"X-Environment-Key": project.environment_key},
    )
    response.raise_for_status()
    return response.json()


def _sdk_traits(site: Site, project: Project, identifier: str) -> dict[str, Any]:
    response = httpx.get(
        f"{site.server.api_url}identities/",
        params={"identifier": identifier},
        headers={"X-Environment-Key": project.environment_key},
    )
    response.raise_for_status()
    return {t["trait_key"]: t["trait_value"] for t in response.json()["traits"]}


TRAITS: dict[str, Any] = {
    "plan": "gold",
    "age": 36,
    "score": 2.5,
    "beta": True,
    "zip": "02139",
    "lucky": "42",
}


def test_traits__saved_unchanged__keep_their_type(page: Page, site: Site, project: Project) -> None:
    # Given an identity with a trait of every type, and strings that look like numbers
    _identify(site, project, "ada", TRAITS)
    page.goto(f"{project.url}/identities")
    page.get_by_role("link", name="ada").click()

    # Then each row shows the value as stored, and its type
    shown = {
        key: (
            page.get_by_label(f"Value of {key}").input_value(),
            page.get_by_label(f"Type of {key}").input_value(),
        )
        for key in TRAITS
    }
    assert shown == {
        "plan": ("gold", "str"),
        "age": ("36", "int"),
        "score": ("2.5", "float"),
        "beta": ("true", "bool"),
        "zip": ("02139", "str"),
        "lucky": ("42", "str"),
    }

    # When every trait is saved without a change
    for key in TRAITS:
        page.locator(f'tr[data-trait="{key}"]').get_by_role("button", name="Save").click()
        expect(page.get_by_text(f"Trait '{key}' saved.")).to_be_visible()

    # Then the SDK API serves every trait with its value and type unchanged
    traits = _sdk_traits(site, project, "ada")
    assert {k: (v, type(v)) for k, v in traits.items()} == {
        k: (v, type(v)) for k, v in TRAITS.items()
    }


def test_traits__type_chosen__the_value_is_stored_as_that_type(
    page: Page, site: Site, project: Project
) -> None:
    # Given an identity
    _identify(site, project, "grace", {})
    page.goto(f"{project.url}/identities")
    page.get_by_role("link", name="grace").click()

    # When "42" is set as a string, and a boolean's row is changed to false
    new_trait = page.locator("#new-trait")
    new_trait.get_by_label("Trait key").fill("lucky")
    new_trait.locator("select[name=trait_type]").select_option("string")
    new_trait.locator("input[name=trait_value]").fill("42")
    new_trait.get_by_role("button", name="Set trait").click()
    expect(page.get_by_text("Trait 'lucky' saved.")).to_be_visible()
    new_trait.get_by_label("Trait key").fill("beta")
    new_trait.locator("input[name=trait_value]").fill("true")
    new_trait.get_by_role("button", name="Set trait").click()
    expect(page.get_by_text("Trait 'beta' saved.")).to_be_visible()
    page.get_by_label("Value of beta").fill("false")
    page.locator('tr[data-trait="beta"]').get_by_role("button", name="Save").click()
    expect(page.get_by_text("Trait 'beta' saved.")).to_be_visible()

    # Then the SDK API serves a string and a boolean
    assert _sdk_traits(site, project, "grace") == {"lucky": "42", "beta": False}

    # And a boolean that is not true or false is refused, next to the field
    page.get_by_label("Value of beta").fill("maybe")
    page.locator('tr[data-trait="beta"]').get_by_role("button", name="Save").click()
    expect(page.locator("#trait_value-error")).to_have_text("A boolean trait is true or false.")
    assert _sdk_traits(site, project, "grace")["beta"] is False


def _closed_port() -> int:
    """A local port nothing listens on: every delivery to it fails at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_integrations_overview__deliveries_failing__says_so(
    page: Page, site: Site, project: Project
) -> None:
    # Given Heap sending to an endpoint that refuses every connection
    page.goto(f"{project.url}/integrations")
    card = page.locator("#integration-heap")
    card.locator("input[name=api_key]").fill("123")
    card.locator("select[name=region]").select_option("custom")
    card.locator("input[name=base_url]").fill(f"http://127.0.0.1:{_closed_port()}")
    card.get_by_role("button", name="Add Heap integration").click()
    expect(page.get_by_text("Heap integration added.")).to_be_visible()

    # When identified users are evaluated, and the deliveries fail
    for n in range(3):
        _identify(site, project, f"failing_{n}", {})
    last_error = page.locator("#integration-heap p", has_text="Last error")

    def has_failed() -> bool:
        page.reload()
        return last_error.count() > 0

    wait_for(has_failed)

    # Then the overview says Heap is failing, with the card's counts
    row = page.locator('#destinations tr[data-kind="heap"]')
    expect(row.locator(".badge")).to_have_text("Failing")
    for count in ("delivered", "pending", "retrying", "failed"):
        expected = page.locator(f'#heap-stats [data-count="{count}"]').inner_text()
        expect(row.locator(f'[data-count="{count}"]')).to_have_text(expected)
    expect(page.locator("#destinations thead")).to_contain_text("Retrying")
    # And Mixpanel, not set up, is not
    expect(page.locator('#destinations tr[data-kind="mixpanel"]')).to_contain_text("Not set up")


def test_integration__rejected_save__the_error_shows_where_the_user_looks(
    page: Page, project: Project
) -> None:
    # Given the webhook card, far down the page, filled in with a bad URL
    page.goto(f"{project.url}/integrations")
    card = page.locator("#integration-webhook")
    card.locator("input[name=base_url]").fill("not a url")
    card.locator("input[name=secret]").fill("s3cret")

    # When it is saved
    card.get_by_role("button", name="Add Webhook integration").click()

    # Then the page opens at the card, with what went wrong on top of it and at the field
    card = page.locator("#integration-webhook")
    alert = card.get_by_role("alert").first
    expect(alert).to_contain_text("Not saved: Must start with https://")
    expect(alert).to_be_in_viewport()
    expect(card.locator("#base_url-error")).to_be_in_viewport()
    # And the top of the page says so too, linking to the card
    expect(page.locator("#save-failed")).to_contain_text("Webhook was not saved.")
    expect(page.locator("#save-failed a")).to_have_attribute("href", "#integration-webhook")


def test_integration_help__backticks__shown_as_code(page: Page, project: Project) -> None:
    page.goto(f"{project.url}/integrations")
    card = page.locator("#integration-mixpanel")

    # The schema's "Send `$ignore_time`, ..." reads as code, without its backticks
    expect(card.locator("code", has_text="$ignore_time")).to_be_visible()
    expect(card.locator("code", has_text="/import")).to_be_visible()
    assert "`" not in page.locator("main").inner_text()


def test_feature_page__exposures__names_the_destinations_that_get_them(
    page: Page, project: Project
) -> None:
    # Given a multivariate feature in an environment without integrations
    page.goto(f"{project.url}/features")
    page.locator('tr[data-feature="checkout"] a').first.click()
    feature_url = page.url
    expect(page.locator("#exposure-destinations")).to_contain_text(
        "no integration sends exposures yet"
    )

    # When Amplitude is set up, and Heap without exposures
    page.goto(f"{project.url}/integrations")
    card = page.locator("#integration-amplitude")
    card.locator("input[name=api_key]").fill("amplitude-key")
    card.get_by_role("button", name="Add Amplitude integration").click()
    expect(page.get_by_text("Amplitude integration added.")).to_be_visible()
    card = page.locator("#integration-heap")
    card.locator("input[name=api_key]").fill("123")
    card.get_by_label("Send experiment exposures").uncheck()
    card.get_by_role("button", name="Add Heap integration").click()
    expect(page.get_by_text("Heap integration added.")).to_be_visible()

    # Then the feature page names Amplitude only
    page.goto(feature_url)
    expect(page.locator("#exposure-destinations")).to_contain_text(
        "their exposures go to Amplitude."
    )


# Where the "%" after a weight field is drawn, against the field itself.
_UNIT_BESIDE_FIELD = """(input) => {
  const label = input.closest("label");
  const walker = document.createTreeWalker(label, NodeFilter.SHOW_TEXT);
  let node;
  while ((node = walker.nextNode()) && !node.textContent.includes("%")) {}
  const range = document.createRange();
  range.selectNodeContents(node);
  const unit = range.getBoundingClientRect();
  const field = input.getBoundingClientRect();
  const middle = (unit.top + unit.bottom) / 2;
  return middle > field.top && middle < field.bottom && unit.left >= field.right;
}"""


@pytest.mark.parametrize("width", [1280, 390])
def test_feature_page__variant_weights__the_percent_sign_stays_beside_its_field(
    page: Page, project: Project, width: int
) -> None:
    page.set_viewport_size({"width": width, "height": 860})
    page.goto(f"{project.url}/features")
    page.locator('tr[data-feature="checkout"] a').first.click()

    weights = page.locator("#feature-value input[name^=weight_]")
    expect(weights).to_have_count(2)
    for n in range(2):
        assert weights.nth(n).evaluate(_UNIT_BESIDE_FIELD), f"weight {n}: '%' wrapped"


def test_favicon__served_and_linked(page: Page, site: Site, project: Project) -> None:
    page.goto(f"{project.url}/features")

    # The page links an icon that is served, and /favicon.ico, which browsers ask for, is too
    href = page.locator("link[rel=icon]").get_attribute("href")
    assert href is not None
    for path in (href, "/favicon.ico"):
        answer = page.request.get(path)
        assert (answer.status, answer.headers["content-type"]) == (200, "image/svg+xml"), path
        assert answer.text().startswith("<svg")
