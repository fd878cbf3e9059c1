"""Dashboard pages and forms through the app: templates, fragments, field errors, effects."""

from __future__ import annotations

import html
import re

from typer.testing import CliRunner

from ensign.cli import app as cli_app
from ensign.engine.operators import OPERATOR_NAMES
from ensign.services import accounts
from ensign.web.dashboard.segments import OPERATOR_LABELS
from ensign.web.deps import AppState
from tests.dashboard.conftest import Browser, Seeded
from tests.units import unit_session


def _field_error(html: str, field: str) -> str:
    found = re.search(rf'id="{re.escape(field)}-error"[^>]*>([^<]*)<', html)
    assert found is not None, f"no error next to {field}"
    return found.group(1)


def _flags(browser: Browser, key: str) -> dict[str, tuple[bool, object]]:
    response = browser.client.get("/api/v1/flags/", headers={"X-Environment-Key": key})
    return {f["feature"]["name"]: (f["enabled"], f["feature_state_value"]) for f in response.json()}


def test_projects__signed_in__renders_the_page(signed_in: Browser, seeded: Seeded) -> None:
    response = signed_in.get("/projects")
    assert response.status_code == 200
    assert response.template.name == "pages/projects.html"
    assert [p.id for p, _ in response.context["projects"]] == [seeded.project_id]


def test_home__signed_in__goes_to_projects(signed_in: Browser) -> None:
    assert signed_in.get("/").headers["location"] == "/projects"


def test_project__blank_name__message_next_to_the_field(signed_in: Browser) -> None:
    response = signed_in.post("/projects", {"name": "  "})
    assert response.status_code == 400
    assert _field_error(response.text, "name") == "A name is required."


def test_project__create_rename_delete__works(signed_in: Browser, state: AppState) -> None:
    created = signed_in.post("/projects", {"name": "Shop"})
    project_url = created.headers["location"]
    assert signed_in.post(f"{project_url}/rename", {"name": "Store"}).status_code == 303
    page = signed_in.get(project_url)
    assert "Store" in page.text
    assert page.context["environments"][0].name == "Development"
    assert "Delete project" in signed_in.get(f"{project_url}/delete").text
    assert signed_in.post(f"{project_url}/delete").headers["location"] == "/projects"
    assert signed_in.get(project_url).status_code == 404


def test_features__list__shows_every_feature(signed_in: Browser, seeded: Seeded) -> None:
    response = signed_in.get(f"/environments/{seeded.environment_id}/features")
    assert response.template.name == "pages/features.html"
    names = [row["feature"].name for row in response.context["rows"]]
    assert names == ["banner", "limit", "beta", "checkout", "zero"]


def test_features__htmx_search__answers_the_list_fragment(
    signed_in: Browser, seeded: Seeded
) -> None:
    response = signed_in.get(
        f"/environments/{seeded.environment_id}/features?q=ban", headers={"HX-Request": "true"}
    )
    assert response.template.name == "partials/feature_list.html"
    assert [row["feature"].name for row in response.context["rows"]] == ["banner"]
    assert "<html" not in response.text


def test_features__toggle__takes_effect_at_once(signed_in: Browser, seeded: Seeded) -> None:
    env = seeded.environment_id
    assert _flags(signed_in, seeded.client_key)["beta"][0] is False
    page = signed_in.get(f"/environments/{env}/features")
    beta = next(r for r in page.context["rows"] if r["feature"].name == "beta")
    response = signed_in.post(
        f"/environments/{env}/features/{beta['feature'].id}/toggle",
        {"enabled": "true"},
        headers={"HX-Request": "true"},
    )
    assert response.template.name == "partials/feature_row.html"
    assert 'aria-checked="true"' in response.text
    assert _flags(signed_in, seeded.client_key)["beta"][0] is True


def test_features__bad_input__messages_next_to_the_fields(
    signed_in: Browser, seeded: Seeded
) -> None:
    response = signed_in.post(
        f"/environments/{seeded.environment_id}/features",
        {"name": "banner", "value_type": "integer", "value": "twelve"},
    )
    assert response.status_code == 400
    assert _field_error(response.text, "value") == "Enter a whole number, such as 42."
    duplicate = signed_in.post(
        f"/environments/{seeded.environment_id}/features",
        {"name": "banner", "value_type": "string", "value": "x"},
    )
    assert "already exists" in _field_error(duplicate.text, "name")


def test_features__create_with_json_value__shown_pretty(signed_in: Browser, seeded: Seeded) -> None:
    env = seeded.environment_id
    response = signed_in.post(
        f"/environments/{env}/features",
        {"name": "config", "value_type": "string", "value": '{"a":1,"b":[1,2]}', "enabled": "on"},
    )
    assert response.status_code == 303
    assert _flags(signed_in, seeded.client_key)["config"] == (True, '{"a":1,"b":[1,2]}')
    page = signed_in.get(f"/environments/{env}/features")
    assert "{\n  &#34;a&#34;: 1" in page.text


def test_feature__value_editor__types_the_value(signed_in: Browser, seeded: Seeded) -> None:
    env = seeded.environment_id
    page = signed_in.get(f"/environments/{env}/features?q=limit")
    feature_id = page.context["rows"][0]["feature"].id
    response = signed_in.post(
        f"/environments/{env}/features/{feature_id}/state",
        {"enabled": "on", "value_type": "integer", "value": "99"},
    )
    assert response.status_code == 303
    assert _flags(signed_in, seeded.client_key)["limit"] == (True, 99)
    bad = signed_in.post(
        f"/environments/{env}/features/{feature_id}/state",
        {"value_type": "boolean", "value": "maybe"},
    )
    assert _field_error(bad.text, "value") == "A boolean value is true or false."


def test_feature__weights_over_100__message_next_to_the_weights(
    signed_in: Browser, seeded: Seeded
) -> None:
    env = seeded.environment_id
    page = signed_in.get(f"/environments/{env}/features?q=checkout")
    feature = page.context["rows"][0]["feature"]
    detail = signed_in.get(f"/environments/{env}/features/{feature.id}")
    assert detail.template.name == "pages/feature.html"
    first, second = (o.id for o in feature.options)
    response = signed_in.post(
        f"/environments/{env}/features/{feature.id}/state",
        {
            "value_type": "string",
            "value": "control",
            f"weight_{first}": "60",
            f"weight_{second}": "50",
        },
    )
    assert response.status_code == 400
    assert "more than 100" in _field_error(response.text, "weights")
    new_option = signed_in.post(
        f"/environments/{env}/features/{feature.id}/options",
        {"option_value_type": "string", "option_value": "third", "option_weight": "50"},
    )
    assert new_option.status_code == 400
    assert "100" in _field_error(new_option.text, "option_weight")


def test_segment__bad_regex__message_next_to_the_condition(
    signed_in: Browser, seeded: Seeded
) -> None:
    response = signed_in.post(
        f"/environments/{seeded.environment_id}/segments",
        {
            "name": "broken",
            "groups": "1",
            "g0_type": "ALL",
            "g0_count": "1",
            "g0_c0_property": "email",
            "g0_c0_operator": "REGEX",
            "g0_c0_value": "([",
        },
    )
    assert response.status_code == 400
    assert "regular expression" in _field_error(response.text, "g0_c0_value")


def test_segment__regex_too_costly__message_next_to_the_condition(
    signed_in: Browser, seeded: Seeded
) -> None:
    response = signed_in.post(
        f"/environments/{seeded.environment_id}/segments",
        {
            "name": "costly",
            "groups": "1",
            "g0_type": "ALL",
            "g0_count": "1",
            "g0_c0_property": "email",
            "g0_c0_operator": "REGEX",
            "g0_c0_value": "((a{100}){100}){100}",
        },
    )
    assert response.status_code == 400
    assert "repeats too much" in _field_error(response.text, "g0_c0_value")


def test_segment__two_groups__saved_and_tested(signed_in: Browser, seeded: Seeded) -> None:
    env = seeded.environment_id
    response = signed_in.post(
        f"/environments/{env}/segments",
        {
            "name": "adult_beta",
            "groups": "2",
            "g0_type": "ALL",
            "g0_count": "2",
            "g0_c0_property": "plan",
            "g0_c0_operator": "EQUAL",
            "g0_c0_value": "beta",
            "g0_c1_property": "age",
            "g0_c1_operator": "GREATER_THAN_INCLUSIVE",
            "g0_c1_value": "18",
            "g1_type": "NONE",
            "g1_count": "1",
            "g1_c0_property": "banned",
            "g1_c0_operator": "IS_SET",
            "g1_c0_value": "",
        },
    )
    assert response.status_code == 303
    url = response.headers["location"]
    editor = signed_in.get(url)
    assert [g.type for g in editor.context["groups"]] == ["ALL", "NONE"]
    inside = signed_in.post(f"{url}/test", {"identifier": "u1", "traits": "plan=beta\nage=30"})
    assert inside.template.name == "partials/segment_test.html"
    assert inside.context["matched"] is True
    outside = signed_in.post(
        f"{url}/test", {"identifier": "u1", "traits": '{"plan": "beta", "age": 30, "banned": true}'}
    )
    assert outside.context["matched"] is False
    bad = signed_in.post(f"{url}/test", {"identifier": "", "traits": "nonsense"})
    assert bad.context["errors"].get("identifier") == "Enter an identifier."


def test_segment__editor__offers_every_engine_operator_with_a_label(
    signed_in: Browser, seeded: Seeded
) -> None:
    assert set(OPERATOR_LABELS) == set(OPERATOR_NAMES)
    response = signed_in.get(f"/environments/{seeded.environment_id}/segments/new")
    offered = re.findall(r'<option value="([A-Z_]+)"[^>]*>([^<]*)<', response.text)
    assert [name for name, _ in offered if name in OPERATOR_NAMES] == list(OPERATOR_NAMES)
    assert ("GREATER_THAN", "&gt;") in offered


def test_segment__add_condition__re_renders_without_saving(
    signed_in: Browser, seeded: Seeded
) -> None:
    response = signed_in.post(
        f"/environments/{seeded.environment_id}/segments",
        {
            "name": "x",
            "groups": "1",
            "g0_count": "1",
            "g0_c0_property": "a",
            "g0_c0_value": "1",
            "action": "add_group",
        },
    )
    assert response.status_code == 200
    assert len(response.context["groups"]) == 2


def test_identity__flags__say_why(signed_in: Browser, seeded: Seeded, state: AppState) -> None:
    env = seeded.environment_id
    signed_in.client.post(
        "/api/v1/identities/",
        headers={"X-Environment-Key": seeded.client_key},
        json={"identifier": "gold_user", "traits": [{"trait_key": "plan", "trait_value": "gold"}]},
    )
    listing = signed_in.get(f"/environments/{env}/identities?q=gold")
    identity = listing.context["identities"][0]
    page = signed_in.get(f"/environments/{env}/identities/{identity.id}")
    assert page.template.name == "pages/identity.html"
    flags = {f.name: f for f in page.context["flags"]}
    assert (flags["banner"].source, flags["banner"].detail, flags["banner"].value) == (
        "segment",
        "gold_users",
        "hello gold",
    )
    assert flags["limit"].source == "default"
    limit_id = next(f.id for f in page.context["free_features"] if f.name == "limit")
    added = signed_in.post(
        f"/environments/{env}/identities/{identity.id}/overrides",
        {"feature": str(limit_id), "enabled": "on", "value_type": "integer", "value": "7"},
    )
    assert added.status_code == 303
    page = signed_in.get(f"/environments/{env}/identities/{identity.id}")
    flags = {f.name: f for f in page.context["flags"]}
    assert (flags["limit"].source, flags["limit"].value) == ("identity override", 7)
    trait = signed_in.post(
        f"/environments/{env}/identities/{identity.id}/traits",
        {"trait_key": "plan", "trait_value": "free"},
    )
    assert trait.status_code == 303
    page = signed_in.get(f"/environments/{env}/identities/{identity.id}")
    assert {f.name: f for f in page.context["flags"]}["banner"].source == "default"
    blank = signed_in.post(
        f"/environments/{env}/identities/{identity.id}/traits",
        {"trait_key": "", "trait_value": "x"},
    )
    assert _field_error(blank.text, "trait_key") == "Enter a trait key."


def test_integrations__bad_url__message_next_to_the_field(
    signed_in: Browser, seeded: Seeded
) -> None:
    env = seeded.environment_id
    response = signed_in.post(
        f"/environments/{env}/integrations/mixpanel",
        {"api_key": "token", "region": "custom", "base_url": "ftp://example.com"},
    )
    assert response.status_code == 400
    assert _field_error(response.text, "base_url") == "Must use https."
    missing = signed_in.post(
        f"/environments/{env}/integrations/heap", {"api_key": "", "region": "eu"}
    )
    assert "required" in _field_error(missing.text, "api_key")


def test_integrations__region__configured_and_removed(signed_in: Browser, seeded: Seeded) -> None:
    env = seeded.environment_id
    created = signed_in.post(
        f"/environments/{env}/integrations/heap",
        {"api_key": "123", "region": "eu", "enabled": "on"},
    )
    assert created.status_code == 303
    page = signed_in.get(f"/environments/{env}/integrations")
    heap = page.context["cards"][0]
    assert (heap["config"].region, heap["config"].base_url) == ("eu", "https://c.eu.heap-api.com")
    assert heap["status"].delivered == 0
    removed = signed_in.post(f"/environments/{env}/integrations/heap/{heap['config'].id}/delete")
    assert removed.status_code == 303
    assert signed_in.get(f"/environments/{env}/integrations").context["cards"][0]["config"] is None


def test_integrations__delivery_mode__edited_and_validated(
    signed_in: Browser, seeded: Seeded
) -> None:
    env = seeded.environment_id
    bad = signed_in.post(
        f"/environments/{env}/integrations/heap",
        {"api_key": "123", "region": "eu", "deliver": "changes", "resend_after_hours": "often"},
    )
    assert bad.status_code == 400
    assert "whole number of hours" in _field_error(bad.text, "resend_after_hours")
    created = signed_in.post(
        f"/environments/{env}/integrations/heap",
        {
            "api_key": "123",
            "region": "eu",
            "deliver": "every_evaluation",
            "resend_after_hours": "0",
        },
    )
    assert created.status_code == 303
    page = signed_in.get(f"/environments/{env}/integrations")
    heap = page.context["cards"][0]
    assert (heap["config"].deliver, heap["config"].resend_after_hours) == ("every_evaluation", 0)
    assert heap["status"].suppressed == 0
    assert 'data-count="suppressed"' in page.text
    assert '<option value="every_evaluation" selected>' in page.text


def test_integrations__events_box_and_counters__shown(signed_in: Browser, seeded: Seeded) -> None:
    env = seeded.environment_id
    created = signed_in.post(
        f"/environments/{env}/integrations/mixpanel",
        {"api_key": "tok", "region": "us", "enabled": "on", "events": "on"},
    )
    assert created.status_code == 303
    page = signed_in.get(f"/environments/{env}/integrations")
    mixpanel = page.context["cards"][1]
    assert mixpanel["config"].options["events"] is True
    assert mixpanel["events"] is True
    assert page.context["event_counts"].received == 0
    assert 'id="events-stats"' in page.text


def test_audit__changes__name_the_user(signed_in: Browser, seeded: Seeded) -> None:
    signed_in.post("/projects", {"name": "Audited"})
    response = signed_in.get("/audit")
    assert response.template.name == "pages/audit.html"
    entry = response.context["entries"][0]["entry"]
    assert entry.actor == "user:admin@example.com"
    assert entry.log.startswith("Environment created") or entry.log.startswith("Project created")


def test_environment__server_keys__created_and_revoked(signed_in: Browser, seeded: Seeded) -> None:
    env = seeded.environment_id
    assert (
        signed_in.post(f"/environments/{env}/server-keys", {"key_name": "backend"}).status_code
        == 303
    )
    page = signed_in.get(f"/environments/{env}")
    key = next(k for k in page.context["server_keys"] if k.name == "backend")
    assert signed_in.post(f"/environments/{env}/server-keys/{key.id}/revoke").status_code == 303
    page = signed_in.get(f"/environments/{env}")
    assert all(k.name != "backend" for k in page.context["server_keys"])


def test_other_organisation__pages__not_found(signed_in: Browser, state: AppState) -> None:
    from ensign.services.admin.organisations import create_organisation
    from ensign.services.importing import import_document
    from tests.documents import standard_document

    with state.units.write() as unit:
        session = unit.session
        other = create_organisation(unit, name="Other")
        result = import_document(session, other.id, standard_document())
    assert signed_in.get(f"/environments/{result.environment_id}/features").status_code == 404
    assert signed_in.get(f"/projects/{result.project_id}").status_code == 404


def test_session_secret__unset__generated_once_and_kept(state: AppState) -> None:
    with state.units.write() as unit, unit_session(unit) as session:
        first = accounts.session_secret(session, "")
    with state.units.write() as unit, unit_session(unit) as session:
        assert accounts.session_secret(session, "") == first
        assert accounts.session_secret(session, "configured") == "configured"
    assert len(first) >= 40


def test_user_cli__create__then_duplicate_fails(database_url: str, monkeypatch: object) -> None:
    runner = CliRunner()
    env = {"ENSIGN_DATABASE_URL": database_url}
    created = runner.invoke(
        cli_app,
        ["user", "create", "--email", "New@Example.com", "--password", "long enough"],
        env=env,
    )
    assert created.exit_code == 0, created.output
    assert "new@example.com" in created.output
    again = runner.invoke(
        cli_app,
        ["user", "create", "--email", "new@example.com", "--password", "long enough"],
        env=env,
    )
    assert again.exit_code == 1
    short = runner.invoke(
        cli_app, ["user", "create", "--email", "x@example.com", "--password", "short"], env=env
    )
    assert short.exit_code == 1


def test_integrations__exposures_checkbox__saved(signed_in: Browser, seeded: Seeded) -> None:
    env = seeded.environment_id
    signed_in.post(
        f"/environments/{env}/integrations/heap",
        {"api_key": "123", "region": "eu", "enabled": "on", "exposures": "on"},
    )
    signed_in.post(
        f"/environments/{env}/integrations/mixpanel",
        {"api_key": "tok", "region": "us", "enabled": "on"},
    )
    page = signed_in.get(f"/environments/{env}/integrations")
    cards = {c["kind"]: c for c in page.context["cards"]}
    assert (cards["heap"]["exposures"], cards["mixpanel"]["exposures"]) == (True, False)
    assert "Send experiment exposures" in page.text


def test_feature__weights_changed_while_an_experiment_runs__refused_next_to_the_weights(
    signed_in: Browser, seeded: Seeded
) -> None:
    env = seeded.environment_id
    feature = signed_in.get(f"/environments/{env}/features?q=checkout").context["rows"][0][
        "feature"
    ]
    started = signed_in.post(
        f"/environments/{env}/features/{feature.id}/experiments",
        {"experiment_name": "Checkout test"},
    )
    assert started.status_code == 303, started.text
    first, second = (o.id for o in feature.options)

    response = signed_in.post(
        f"/environments/{env}/features/{feature.id}/state",
        {
            "value_type": "string",
            "value": "control",
            f"weight_{first}": "50",
            f"weight_{second}": "10",
        },
    )

    assert response.status_code == 400
    message = html.unescape(_field_error(response.text, "weights"))
    assert "while the experiment 'Checkout test' runs" in message
