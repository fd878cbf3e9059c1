"""The dashboard's forms in a real browser (issue 14): a rejected save keeps what was typed,
the integration's tag and `ignore_time`, the rule editor at any depth, the tabs on a phone.

One server and one browser serve the whole module; each test brings its own project."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from ensign.services import accounts
from ensign.services.admin.organisations import create_organisation
from ensign.services.importing import import_document
from ensign.services.keys import create_admin_key
from ensign.storage.db import Database
from ensign.storage.unit_of_work import Units
from tests.conftest import ServerProcess, free_port, fresh_database
from tests.dashboard.conftest import PASSWORD
from tests.dashboard.test_browser import EMAIL, SERVER_ENV, browser, pytestmark, sign_in
from tests.documents import standard_document

__all__ = ["browser", "pytestmark"]

playwright_sync = pytest.importorskip("playwright.sync_api")
Page = playwright_sync.Page
expect = playwright_sync.expect


@dataclass(frozen=True)
class Site:
    server: ServerProcess
    database_url: str
    organisation_id: int
    admin_key: str

    def api(self, method: str, path: str, body: Any = None) -> Any:
        response = httpx.request(
            method,
            f"{self.server.api_url}{path}",
            json=body,
            headers={"Authorization": f"Api-Key {self.admin_key}"},
        )
        response.raise_for_status()
        return response.json()


@dataclass(frozen=True)
class Project:
    id: int
    environment_id: int
    environment_key: str

    @property
    def url(self) -> str:
        return f"/environments/{self.environment_id}"


@pytest.fixture(scope="module")
def site(_migrated_template: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    directory = tmp_path_factory.mktemp("browser-forms")
    url = fresh_database(_migrated_template, directory)
    db = Database(url)
    with Units(db).write() as unit:
        session = unit.session
        organisation = create_organisation(unit, name="Browser forms")
        accounts.create_user(
            session, email=EMAIL, password=PASSWORD, organisation_id=organisation.id
        )
        key = create_admin_key(unit, organisation.id, "browser tests")
        organisation_id = organisation.id
    db.dispose()
    server = ServerProcess(url, free_port(), log_path=directory / "server.log")
    server.start(extra_env=SERVER_ENV)
    yield Site(server, url, organisation_id, key)
    server.stop()


@pytest.fixture(scope="module")
def signed_in_state(browser: Any, site: Site) -> dict[str, Any]:
    """The session cookie of one sign-in, reused by every test (Argon2 is slow on purpose)."""
    context = browser.new_context(base_url=site.server.url)
    page = context.new_page()
    sign_in(page)
    state: dict[str, Any] = context.storage_state()
    context.close()
    return state


@pytest.fixture
def page(browser: Any, site: Site, signed_in_state: dict[str, Any]) -> Iterator[Page]:
    context = browser.new_context(
        base_url=site.server.url,
        viewport={"width": 1280, "height": 860},
        storage_state=signed_in_state,
    )
    context.set_default_timeout(15_000)
    opened = context.new_page()
    yield opened
    context.close()


@pytest.fixture
def project(site: Site) -> Project:
    """Five features (banner, limit, beta, checkout, zero) and two segments."""
    db = Database(site.database_url)
    with db.session() as session:
        result = import_document(session, site.organisation_id, standard_document())
    db.dispose()
    return Project(result.project_id, result.environment_id, result.environment_key)


def test_feature_value__rejected_save__keeps_the_typed_type_and_value(
    page: Page, project: Project
) -> None:
    # Given the page of the feature "banner", whose value is the string "hello"
    page.goto(f"{project.url}/features")
    page.locator('tr[data-feature="banner"] a').first.click()
    form = page.locator("#feature-value")

    # When an integer that is not a number is saved, with the feature switched off
    form.get_by_label("Enabled").uncheck()
    form.locator("select[name=value_type]").select_option("integer")
    form.locator("textarea[name=value]").fill("twelve")
    form.get_by_role("button", name="Save value").click()

    # Then the error shows, and the form still holds what was typed
    expect(page.locator("#value-error")).to_have_text("Enter a whole number, such as 42.")
    form = page.locator("#feature-value")
    expect(form.locator("select[name=value_type]")).to_have_value("integer")
    expect(form.locator("textarea[name=value]")).to_have_value("twelve")
    expect(form.get_by_label("Enabled")).not_to_be_checked()


def test_integration__rejected_save__keeps_the_flag_selection(page: Page, project: Project) -> None:
    # Given the Mixpanel card, filled in with two flags chosen and a bad URL
    page.goto(f"{project.url}/integrations")
    card = page.locator("#integration-mixpanel")
    card.locator("input[name=api_key]").fill("mixpanel-token")
    card.locator("select[name=region]").select_option("custom")
    card.locator("input[name=base_url]").fill("not a url")
    card.locator("select[name=feature_names]").select_option(["banner", "zero"])
    card.get_by_label("Enabled").uncheck()

    # When it is saved
    card.get_by_role("button", name="Add Mixpanel integration").click()

    # Then the error shows, and the choices are still there
    expect(page.locator("#integration-mixpanel #base_url-error")).to_be_visible()
    card = page.locator("#integration-mixpanel")
    selected = card.locator("select[name=feature_names] option:checked")
    expect(selected).to_have_text(["banner", "zero"])
    expect(card.locator("input[name=api_key]")).to_have_value("mixpanel-token")
    expect(card.get_by_label("Enabled")).not_to_be_checked()


def test_integration__tag_and_ignore_time__saved(page: Page, project: Project, site: Site) -> None:
    # Given a project with a tag "analytics"
    site.api("POST", f"projects/{project.id}/tags/", {"label": "analytics"})

    # When a Mixpanel integration is added for that tag, without $ignore_time
    page.goto(f"{project.url}/integrations")
    card = page.locator("#integration-mixpanel")
    card.locator("input[name=api_key]").fill("mixpanel-token")
    card.locator("select[name=tag]").select_option("analytics")
    card.get_by_label("Send $ignore_time").uncheck()
    card.get_by_role("button", name="Add Mixpanel integration").click()
    expect(page.get_by_text("Mixpanel integration added.")).to_be_visible()

    # Then the admin API shows both
    path = f"environments/{project.environment_key}/integrations/mixpanel/"
    (saved,) = site.api("GET", path)
    assert (saved["tag"], saved["ignore_time"], saved["feature_names"]) == (
        "analytics",
        False,
        None,
    )

    # And the form shows them again
    card = page.locator("#integration-mixpanel")
    expect(card.locator("select[name=tag]")).to_have_value("analytics")
    expect(card.get_by_label("Send $ignore_time")).not_to_be_checked()


def _segment_rules(site: Site, project: Project, segment_id: int) -> list[Any]:
    rules: list[Any] = site.api("GET", f"projects/{project.id}/segments/{segment_id}/")["rules"]
    return rules


def test_segment__saved__no_empty_row_and_its_only_condition_removed(
    page: Page, project: Project, site: Site
) -> None:
    # Given a segment saved from the editor with one condition
    page.goto(f"{project.url}/segments/new")
    form = page.locator("#segment-form")
    form.get_by_label("Name", exact=True).fill("beta_plan")
    form.locator("[name=g0_c0_property]").fill("plan")
    form.locator("[name=g0_c0_value]").fill("beta")
    form.get_by_role("button", name="Save segment").click()
    expect(page.get_by_text("Segment 'beta_plan' saved.")).to_be_visible()

    # Then the editor shows exactly that condition, and no empty row
    conditions = page.locator("#segment-form .condition")
    expect(conditions).to_have_count(1)
    expect(conditions.locator("input[name$=_property]")).to_have_value("plan")

    # When the condition is removed and another one added in its place
    page.get_by_role("button", name="Remove condition 1").click()
    expect(page.locator("#segment-form .condition")).to_have_count(0)
    page.get_by_role("button", name="+ Condition").click()
    page.locator("[name=g0_c0_property]").fill("country")
    page.locator("[name=g0_c0_value]").fill("nz")
    page.get_by_role("button", name="Save segment").click()
    expect(page.get_by_text("Segment 'beta_plan' saved.")).to_be_visible()

    # Then the segment holds only the new condition
    segment_id = int(page.url.rsplit("/", 1)[1])
    assert _segment_rules(site, project, segment_id) == [
        {
            "type": "ALL",
            "conditions": [],
            "rules": [
                {
                    "type": "ALL",
                    "rules": [],
                    "conditions": [{"operator": "EQUAL", "property": "country", "value": "nz"}],
                }
            ],
        }
    ]


def _condition(prop: str | None, value: str | None, operator: str = "EQUAL") -> dict[str, Any]:
    return {"operator": operator, "property": prop, "value": value}


def _rule(kind: str, conditions: list[Any], rules: list[Any] | None = None) -> dict[str, Any]:
    return {"type": kind, "conditions": conditions, "rules": rules or []}


def test_segment__three_levels_deep__edited_in_the_browser_and_saved_exactly(
    page: Page, project: Project, site: Site
) -> None:
    # Given a segment nested three levels below its top rule, made with the admin API
    def stored(deepest_value: str, extra: list[Any]) -> list[Any]:
        return [
            _rule(
                "ALL",
                [],
                [
                    _rule(
                        "ANY",
                        [_condition("plan", "gold"), _condition("plan", "silver")],
                        [
                            _rule(
                                "NONE",
                                [_condition("banned", None, "IS_SET"), *extra],
                                [_rule("ALL", [_condition("age", deepest_value, "LESS_THAN")])],
                            )
                        ],
                    ),
                    _rule("ALL", [_condition(None, "25", "PERCENTAGE_SPLIT")]),
                ],
            )
        ]

    created = site.api(
        "POST",
        f"projects/{project.id}/segments/",
        {"name": "nested", "rules": stored("18", [])},
    )

    # When the deepest value is changed and a condition added two levels down, in the browser
    page.goto(f"{project.url}/segments/{created['id']}")
    deepest = page.locator("#group-g0_g0_g0")
    expect(deepest.locator("input[name=g0_g0_g0_c0_value]")).to_have_value("18")
    deepest.locator("input[name=g0_g0_g0_c0_value]").fill("21")
    page.locator("#group-g0_g0").get_by_role("button", name="+ Condition").last.click()
    middle = page.locator("#group-g0_g0")
    middle.locator("input[name=g0_g0_c1_property]").fill("country")
    middle.locator("input[name=g0_g0_c1_value]").fill("xx")
    expect(page.locator("input[name=g0_g0_g0_c0_value]")).to_have_value("21")
    page.get_by_role("button", name="Save segment").click()
    expect(page.get_by_text("Segment 'nested' saved.")).to_be_visible()

    # Then the admin API returns the same nesting with just those changes
    assert _segment_rules(site, project, created["id"]) == stored(
        "21", [_condition("country", "xx")]
    )


def test_phone__tabs__every_tab_is_whole_on_screen(page: Page, project: Project) -> None:
    # Given a phone-sized screen
    page.set_viewport_size({"width": 375, "height": 740})
    page.goto(f"{project.url}/features")
    tabs = page.locator("nav.tabs a")
    expect(tabs).to_have_count(6)

    # Then every tab is on screen whole, with nothing to scroll (a scrolled bar showed "Inte"
    # at the edge and no hint of the tabs after it), and a tap on it reaches it
    for index in range(6):
        tab = tabs.nth(index)
        box = tab.bounding_box()
        assert box is not None
        assert box["x"] >= 0 and box["x"] + box["width"] <= 375, tab.inner_text()
        centre = [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2]
        hit = page.evaluate(
            "([x, y]) => document.elementFromPoint(x, y)?.closest('nav.tabs a')?.textContent",
            centre,
        )
        assert hit == tab.inner_text()
    tabs.last.click()
    expect(page.get_by_role("heading", name="keys & settings")).to_be_visible()
