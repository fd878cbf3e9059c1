"""An experiment in a real browser against a real `ensign serve`: variants added and an
experiment started from the feature's page, identities exposed through the SDK API, the
experiment page's chart and queue, stop and start, nothing refused by the page's policy. Takes the README's experiment screenshot."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import ServerProcess, wait_for
from tests.dashboard.test_browser import (
    SCREENSHOTS,
    browser,
    client_key,
    create_feature,
    create_project,
    page,
    pytestmark,
    served,
    sign_in,
)
from tests.fakes.fixtures import Served, vendors

__all__ = ["browser", "page", "pytestmark", "served", "vendors"]

playwright_sync = pytest.importorskip("playwright.sync_api")
Page = playwright_sync.Page
expect = playwright_sync.expect

USERS = 240


def add_variant(page: Page, value: str, key: str, weight: str) -> None:
    page.locator("textarea[name=option_value]").fill(value)
    page.locator("input[name=option_key]").fill(key)
    page.locator("input[name=option_weight]").fill(weight)
    page.get_by_role("button", name="Add variant").click()
    expect(page.get_by_text("Variant added.")).to_be_visible()


def test_experiment__started_and_exposed__page_shows_the_split(
    page: Page, served: ServerProcess, vendors: Served
) -> None:
    refused: list[str] = []
    page.on(
        "console",
        lambda message: refused.append(message.text)
        if "Content Security Policy" in message.text
        else None,
    )
    questions: list[str] = []

    def confirm(dialog: object) -> None:
        questions.append(dialog.message)  # type: ignore[attr-defined]
        dialog.accept()  # type: ignore[attr-defined]

    # Given a multivariate feature, switched on, and Mixpanel connected
    sign_in(page)
    environment_url = create_project(page, "Storefront")
    key = client_key(page, environment_url)
    create_feature(page, "checkout_flow", "string", "classic")
    page.locator('tr[data-feature="checkout_flow"]').get_by_role("switch").click()
    expect(
        page.locator('tr[data-feature="checkout_flow"]').get_by_role("switch")
    ).to_have_attribute("aria-checked", "true")
    page.get_by_role("link", name="Integrations").click()
    card = page.locator("#integration-mixpanel")
    card.locator("input[name=api_key]").fill("mixpanel-token")
    card.locator("select[name=region]").select_option("custom")
    card.locator("input[name=base_url]").fill(vendors.mixpanel_url)
    card.get_by_role("button", name="Add Mixpanel integration").click()
    expect(page.get_by_text("Mixpanel integration added.")).to_be_visible()
    page.get_by_role("link", name="Features").click()
    page.locator('tr[data-feature="checkout_flow"] a').first.click()
    add_variant(page, "one_page", "one_page", "25")
    add_variant(page, "express", "express", "25")

    # When an experiment is started from the feature's page
    experiments = page.locator("#experiments")
    experiments.get_by_label("Experiment name").fill("Checkout redesign")
    experiments.get_by_role("button", name="Start an experiment").click()
    expect(page.get_by_role("heading", name="Checkout redesign")).to_be_visible()
    experiment_url = page.url

    # And identities are evaluated through the SDK API (each twice)
    served_variants: dict[str, int] = {}
    with httpx.Client(base_url=served.api_url, headers={"X-Environment-Key": key}) as sdk:
        for i in range(USERS):
            for _ in range(2):
                answer = sdk.post("identities/", json={"identifier": f"shopper-{i}"}).json()
            flag = next(f for f in answer["flags"] if f["feature"]["name"] == "checkout_flow")
            served_variants[flag["variant"]] = served_variants.get(flag["variant"], 0) + 1

    # Then the page shows each variant's distinct identities, with the chart
    page.goto(experiment_url)
    for variant, count in served_variants.items():
        expect(page.locator(f'table.results tr[data-variant="{variant}"]')).to_contain_text(
            str(count)
        )
    expect(page.locator("svg.chart g.bar")).to_have_count(3)
    expect(page.locator("#srm")).to_contain_text("chi-square p =")

    # And the exposure events reach Mixpanel, so none stays queued
    wait_for(lambda: len(vendors.mixpanel.events) >= USERS)
    page.reload()
    expect(page.locator('[data-integration="mixpanel"] strong').first).to_have_text("0")
    page.screenshot(path=str(SCREENSHOTS / "experiment.png"), full_page=True)

    # And stopping (confirmed) and starting again works
    page.on("dialog", confirm)
    page.get_by_role("button", name="Stop experiment").click()
    expect(page.get_by_text("Experiment stopped.")).to_be_visible()
    page.get_by_role("button", name="Start experiment").click()
    expect(page.get_by_text("Experiment started.")).to_be_visible()
    assert [q.split("?")[0] for q in questions] == ["Stop the experiment"]

    # And the page runs under the dashboard's Content-Security-Policy with nothing refused
    assert refused == []
