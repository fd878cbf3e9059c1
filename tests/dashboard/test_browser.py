"""The dashboard in a real browser (Debian's Chromium, driven by Playwright) against a real
`ensign serve`: sign in, flags, segments and overrides, integrations with a fake vendor."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ensign.services import accounts
from ensign.services.admin.organisations import create_organisation
from ensign.storage.db import Database
from ensign.storage.unit_of_work import Units
from tests.conftest import REPO, ServerProcess, free_port, wait_for
from tests.dashboard.conftest import PASSWORD
from tests.fakes.fixtures import Served, vendors

__all__ = ["vendors"]

CHROMIUM = "/usr/bin/chromium"
# The README's screenshots are taken here. They are rewritten only when asked
# (ENSIGN_UPDATE_SCREENSHOTS=1), so that an ordinary test run leaves the work tree clean.
SCREENSHOTS = (
    REPO / "docs" / "screenshots"
    if os.environ.get("ENSIGN_UPDATE_SCREENSHOTS") == "1"
    else Path(tempfile.mkdtemp(prefix="ensign-screenshots-"))
)
EMAIL = "admin@example.com"
SERVER_ENV = {
    "ENSIGN_ALLOW_PRIVATE_DESTINATIONS": "true",
    "ENSIGN_DELIVERY_BACKOFF_BASE_SECONDS": "0.05",
    "ENSIGN_DELIVERY_BACKOFF_CAP_SECONDS": "0.3",
    "ENSIGN_DELIVERY_POLL_INTERVAL_SECONDS": "0.05",
    "ENSIGN_DELIVERY_TIMEOUT_SECONDS": "2",
}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which(CHROMIUM) is None,
        reason=f"browser tests need Debian's Chromium at {CHROMIUM} (apt-get install chromium)",
    ),
]

playwright_sync = pytest.importorskip("playwright.sync_api")
Page = playwright_sync.Page
expect = playwright_sync.expect


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with playwright_sync.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield launched
        launched.close()


@pytest.fixture
def served(database_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    db = Database(database_url)
    with Units(db).write() as unit:
        session = unit.session
        organisation = create_organisation(unit, name="Browser tests")
        accounts.create_user(
            session, email=EMAIL, password=PASSWORD, organisation_id=organisation.id
        )
    db.dispose()
    process = ServerProcess(database_url, free_port(), log_path=tmp_path / "server.log")
    process.start(extra_env=SERVER_ENV)
    yield process
    process.stop()


@pytest.fixture
def page(browser: object, served: ServerProcess) -> Iterator[Page]:
    context = browser.new_context(  # type: ignore[attr-defined]
        base_url=served.url, viewport={"width": 1280, "height": 860}
    )
    context.set_default_timeout(15_000)
    opened = context.new_page()
    yield opened
    context.close()


def sign_in(page: Page) -> None:
    page.goto("/")
    expect(page).to_have_url("/sign-in")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()


def create_project(page: Page, name: str) -> str:
    """Create a project from the projects page; answers its Development environment's URL."""
    page.get_by_label("Name").fill(name)
    page.get_by_role("button", name="Create project").click()
    expect(page.get_by_role("heading", name=name)).to_be_visible()
    page.get_by_role("link", name="Development").first.click()
    expect(page.get_by_role("heading", name="Features")).to_be_visible()
    return page.url.removesuffix("/features")


def client_key(page: Page, environment_url: str) -> str:
    page.goto(environment_url)
    key = page.locator("#client-key").inner_text().strip()
    page.go_back()
    return key


def create_feature(page: Page, name: str, value_type: str, value: str) -> None:
    page.locator("#new-feature summary").click()
    form = page.locator("#new-feature form")
    form.get_by_label("Name").fill(name)
    form.locator("select[name=value_type]").select_option(value_type)
    form.locator("textarea[name=value]").fill(value)
    form.get_by_role("button", name="Create feature").click()
    expect(page.locator(f'tr[data-feature="{name}"]')).to_be_visible()


def test_feature__created_and_toggled__the_sdk_sees_it(page: Page, served: ServerProcess) -> None:
    # Given a signed-in user with a project
    sign_in(page)
    environment_url = create_project(page, "Shop")
    key = client_key(page, environment_url)

    # When they create a feature and switch it on
    create_feature(page, "new_banner", "string", '{"title": "Hello", "colours": ["red", "blue"]}')
    row = page.locator('tr[data-feature="new_banner"]')
    switch = row.get_by_role("switch")
    expect(switch).to_have_attribute("aria-checked", "false")
    switch.click()
    expect(page.locator('tr[data-feature="new_banner"]').get_by_role("switch")).to_have_attribute(
        "aria-checked", "true"
    )

    # Then the SDK API serves it enabled, at once
    flags = httpx.get(f"{served.api_url}flags/", headers={"X-Environment-Key": key}).json()
    banner = next(f for f in flags if f["feature"]["name"] == "new_banner")
    assert banner["enabled"] is True
    assert banner["feature_state_value"] == '{"title": "Hello", "colours": ["red", "blue"]}'
    create_feature(page, "max_items", "integer", "25")
    create_feature(page, "dark_mode", "boolean", "false")
    page.screenshot(path=str(SCREENSHOTS / "features.png"), full_page=True)

    # And a typo in the value is reported next to the field
    page.locator("#new-feature summary").click()
    form = page.locator("#new-feature form")
    form.get_by_label("Name").fill("broken")
    form.locator("select[name=value_type]").select_option("integer")
    form.locator("textarea[name=value]").fill("twelve")
    form.get_by_role("button", name="Create feature").click()
    expect(page.locator("#value-error")).to_have_text("Enter a whole number, such as 42.")


def test_segment__two_rules_and_an_override__the_identity_gets_it(
    page: Page, served: ServerProcess
) -> None:
    # Given a project with a feature that is off
    sign_in(page)
    environment_url = create_project(page, "Beta programme")
    key = client_key(page, environment_url)
    create_feature(page, "new_dashboard", "string", "classic")

    # When a segment with two rules is built in the editor
    page.get_by_role("link", name="Segments").click()
    page.get_by_role("link", name="New segment").click()
    form = page.locator("#segment-form")
    form.get_by_label("Name").fill("adult_beta")
    form.locator("[name=g0_c0_property]").fill("plan")
    form.locator("[name=g0_c0_operator]").select_option("EQUAL")
    form.locator("[name=g0_c0_value]").fill("beta")
    form.get_by_role("button", name="+ Condition").click()
    form.locator("[name=g0_c1_property]").fill("age")
    form.locator("[name=g0_c1_operator]").select_option("GREATER_THAN_INCLUSIVE")
    form.locator("[name=g0_c1_value]").fill("18")
    form.get_by_role("button", name="Save segment").click()
    expect(page.get_by_text("Segment 'adult_beta' saved.")).to_be_visible()

    # And tested with the box
    test_box = page.locator("#segment-test")
    test_box.get_by_label("Identifier").fill("ada")
    test_box.locator("textarea[name=traits]").fill("plan=beta\nage=36")
    test_box.get_by_role("button", name="Test").click()
    expect(page.locator("#segment-test-outcome")).to_contain_text("is in")
    page.screenshot(path=str(SCREENSHOTS / "segment-editor.png"), full_page=True)

    # And it overrides the feature in this environment
    page.get_by_role("link", name="Features").click()
    page.locator('tr[data-feature="new_dashboard"] a').first.click()
    override = page.locator("#add-override")
    override.locator("select[name=segment]").select_option(label="adult_beta")
    override.locator("textarea[name=override_value]").fill("redesigned")
    override.get_by_role("button", name="Add override").click()
    expect(page.get_by_text("Segment override added.")).to_be_visible()

    # Then an identity in the segment gets the override from the SDK API
    body = {
        "identifier": "ada",
        "traits": [
            {"trait_key": "plan", "trait_value": "beta"},
            {"trait_key": "age", "trait_value": 36},
        ],
    }
    answer = httpx.post(
        f"{served.api_url}identities/", json=body, headers={"X-Environment-Key": key}
    ).json()
    flag = next(f for f in answer["flags"] if f["feature"]["name"] == "new_dashboard")
    assert (flag["enabled"], flag["feature_state_value"]) == (True, "redesigned")

    # And the identity page says why
    page.get_by_role("link", name="Identities").click()
    page.get_by_role("link", name="ada").click()
    row = page.locator('#identity-flags tr[data-feature="new_dashboard"]')
    expect(row).to_contain_text("redesigned")
    expect(row).to_contain_text("segment")
    expect(row).to_contain_text("adult_beta")


def test_mixpanel__bad_then_good_url__a_delivery_is_counted(
    page: Page, served: ServerProcess, vendors: Served
) -> None:
    # Given a project with a feature
    sign_in(page)
    environment_url = create_project(page, "Analytics")
    key = client_key(page, environment_url)
    create_feature(page, "checkout_v2", "boolean", "true")
    page.get_by_role("link", name="Integrations").click()
    card = page.locator("#integration-mixpanel")

    # When a Mixpanel integration is added with a bad URL, the error shows next to the field
    card.locator("input[name=api_key]").fill("mixpanel-token")
    card.locator("select[name=region]").select_option("custom")
    card.locator("input[name=base_url]").fill("not a url")
    card.get_by_role("button", name="Add Mixpanel integration").click()
    expect(page.locator("#integration-mixpanel #base_url-error")).to_have_text(
        "Must start with https:// (no scheme was given)."
    )

    # And then with the local fake vendor's URL
    card = page.locator("#integration-mixpanel")
    card.locator("input[name=base_url]").fill(vendors.mixpanel_url)
    card.get_by_role("button", name="Add Mixpanel integration").click()
    expect(page.get_by_text("Mixpanel integration added.")).to_be_visible()

    # And an identified user is evaluated
    httpx.post(
        f"{served.api_url}identities/",
        json={"identifier": "buyer_1", "traits": []},
        headers={"X-Environment-Key": key},
    ).raise_for_status()

    # Then the delivery is counted on the page
    delivered = page.locator('#mixpanel-stats [data-count="delivered"]')

    def is_counted() -> bool:
        page.reload()
        return delivered.inner_text().strip() not in ("", "0")

    wait_for(is_counted)
    assert vendors.mixpanel.updates
    expect(page.locator("#integration-mixpanel table.attempts")).to_contain_text("delivered")

    # And the test event button reports the vendor's answer
    page.locator("#integration-mixpanel").get_by_role("button", name="Send test event").click()
    expect(page.locator("#mixpanel-test-result")).to_contain_text("Test event delivered")
    page.screenshot(path=str(SCREENSHOTS / "integrations.png"), full_page=True)


def test_phone__features_page__fits_the_screen(page: Page) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page)
    create_project(page, "Mobile")
    create_feature(page, "compact", "string", "yes")
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1
    page.locator('tr[data-feature="compact"]').get_by_role("switch").click()
    expect(page.locator('tr[data-feature="compact"]').get_by_role("switch")).to_have_attribute(
        "aria-checked", "true"
    )
