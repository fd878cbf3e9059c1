"""The dashboard under its Content-Security-Policy, in a real browser: nothing the pages need is
refused, and what used to be inline script (confirmations, the environment switch, tag colours,
"Go back") works from the dashboard's own script."""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import ServerProcess
from tests.dashboard.test_browser import (
    CHROMIUM,
    Page,
    browser,
    create_feature,
    create_project,
    expect,
    page,
    served,
    sign_in,
)

__all__ = ["browser", "page", "served"]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which(CHROMIUM) is None,
        reason=f"browser tests need Debian's Chromium at {CHROMIUM} (apt-get install chromium)",
    ),
]


def test_dashboard__under_its_policy__works_and_nothing_is_refused(
    page: Page, served: ServerProcess
) -> None:
    refused: list[str] = []
    page.on(
        "console",
        lambda message: refused.append(message.text)
        if "Content Security Policy" in message.text
        else None,
    )
    questions: list[str] = []
    answers = iter([False, True])

    def answer(dialog: object) -> None:
        questions.append(dialog.message)  # type: ignore[attr-defined]
        if next(answers):
            dialog.accept()  # type: ignore[attr-defined]
        else:
            dialog.dismiss()  # type: ignore[attr-defined]

    page.on("dialog", answer)

    # Given a project with a coloured tag and a second environment
    sign_in(page)
    environment_url = create_project(page, "Shop")
    page.get_by_role("link", name="Shop").first.click()
    page.get_by_label("New tag").fill("beta")
    page.locator("input[name=color]").fill("#ff0000")
    page.get_by_role("button", name="Add tag").click()
    tag = page.locator(".tag", has_text="beta")
    expect(tag).to_have_css("color", "rgb(255, 0, 0)")
    page.get_by_label("New environment").fill("Production")
    page.get_by_role("button", name="Create environment").click()
    expect(page.get_by_text("Environment 'Production' created.")).to_be_visible()
    production_url = page.url.removesuffix("/features")

    # When a server key is revoked: refused once, then confirmed
    page.goto(environment_url)
    page.get_by_label("New key name").fill("backend")
    page.get_by_role("button", name="Create server key").click()
    revoke = page.get_by_role("row", name="backend").get_by_role("button", name="Revoke")
    revoke.click()
    expect(page.get_by_role("row", name="backend")).to_be_visible()
    revoke.click()
    expect(page.get_by_role("row", name="backend")).to_have_count(0)
    assert questions == ["Revoke backend? SDKs using it stop working."] * 2

    # And the environment switch opens the same tab of the other environment
    page.goto(f"{environment_url}/features")
    create_feature(page, "banner", "string", "hello")
    page.locator("#env-switch").select_option(label="Production")
    expect(page).to_have_url(f"{production_url}/features")
    expect(page.locator('tr[data-feature="banner"]')).to_be_visible()

    # And an error page's "Go back" returns to the page before
    page.goto("/environments/999999/features")
    page.get_by_role("link", name="Go back").click()
    expect(page).to_have_url(f"{production_url}/features")
    expect(page.get_by_role("heading", name="Features")).to_be_visible()

    # Then the browser refused nothing
    assert refused == []
