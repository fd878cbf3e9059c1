"""The cohort-sync page: keys shown once and usable by Mixpanel, revocation, the member mapping,
the synced cohorts and the sync log."""

from __future__ import annotations

import re
from typing import Any

import pytest

from ensign.services import cohorts
from ensign.services.admin.organisations import create_organisation
from ensign.services.importing import import_document
from ensign.web.dashboard import cohorts as cohorts_page
from ensign.web.deps import AppState
from tests.dashboard.conftest import Browser, Seeded
from tests.documents import standard_document

MIXPANEL = "/api/v1/cohort-sync/mixpanel/"
AMPLITUDE = "/api/v1/cohort-sync/amplitude/"


def _field_error(html: str, field: str) -> str:
    found = re.search(rf'id="{re.escape(field)}-error"[^>]*>([^<]*)<', html)
    assert found is not None, f"no error next to {field}"
    return found.group(1)


def _members_call(
    browser: Browser,
    key: str,
    ids: list[str],
    *,
    session: str = "s1",
    page: int = 1,
    total: int = 1,
) -> Any:
    body = {
        "action": "members",
        "parameters": {
            "mixpanel_project_id": "777",
            "mixpanel_cohort_id": "1001",
            "mixpanel_cohort_name": "Power users",
            "mixpanel_session_id": session,
            "page_info": {"total_pages": total, "page_count": page},
            "members": [{"mixpanel_distinct_id": i, "email": f"{i}@example.com"} for i in ids],
        },
    }
    return browser.client.post(MIXPANEL, json=body, auth=("mixpanel", key))


def _create_key(browser: Browser, env: int, name: str = "mixpanel") -> str:
    response = browser.post(f"/environments/{env}/cohorts/keys", {"key_name": name})
    assert response.status_code == 201, response.text
    secret: str = response.context["new_key"][1]
    return secret


def test_cohorts__signed_out__redirects_to_sign_in(anonymous: Browser, seeded: Seeded) -> None:
    env = seeded.environment_id
    for response in (
        anonymous.get(f"/environments/{env}/cohorts"),
        anonymous.post(f"/environments/{env}/cohorts/keys", {"key_name": "x"}),
        anonymous.post(f"/environments/{env}/cohorts/member-mapping", {"member_key": "email"}),
        anonymous.get(f"/environments/{env}/cohorts/keys/1/revoke"),
        anonymous.post(f"/environments/{env}/cohorts/keys/1/revoke"),
    ):
        assert response.status_code == 303
        assert response.headers["location"].startswith("/sign-in")


def test_cohorts__wrong_csrf__forbidden_and_nothing_changes(
    signed_in: Browser, seeded: Seeded
) -> None:
    env = seeded.environment_id
    key = _create_key(signed_in, env)
    [row] = signed_in.get(f"/environments/{env}/cohorts").context["keys"]
    token, signed_in.csrf = signed_in.csrf, "not-the-token"
    for path, data in (
        (f"/environments/{env}/cohorts/keys", {"key_name": "other"}),
        (f"/environments/{env}/cohorts/member-mapping", {"member_key": "email"}),
        (f"/environments/{env}/cohorts/keys/{row.id}/revoke", {}),
    ):
        response = signed_in.post(path, data)
        assert response.status_code == 403
        assert "security token" in response.text
    signed_in.csrf = token
    page = signed_in.get(f"/environments/{env}/cohorts")
    assert [(k.name, k.active) for k in page.context["keys"]] == [("mixpanel", True)]
    assert page.context["member_key"] == "mixpanel_distinct_id"
    assert _members_call(signed_in, key, ["a"]).status_code == 200


def test_cohorts__linked_from_integrations_and_environment_nav(
    signed_in: Browser, seeded: Seeded
) -> None:
    env = seeded.environment_id
    link = f'href="/environments/{env}/cohorts"'
    integrations = signed_in.get(f"/environments/{env}/integrations").text
    assert integrations.count(link) == 2  # the tab and the cohort-sync card
    page = signed_in.get(f"/environments/{env}/cohorts")
    assert page.status_code == 200
    assert page.template.name == "pages/cohorts.html"
    assert re.search(rf'{link}\s+aria-current="page"', page.text)


def test_key__created__shown_once_and_authenticates_mixpanel(
    signed_in: Browser, seeded: Seeded
) -> None:
    env = seeded.environment_id
    # When
    created = signed_in.post(f"/environments/{env}/cohorts/keys", {"key_name": "Mixpanel prod"})
    # Then: the key, with what to paste into Mixpanel, this once
    assert created.status_code == 201
    secret = created.context["new_key"][1]
    assert secret.startswith("csk_")
    assert f'id="new-key-secret">{secret}<' in created.text
    assert "http://testserver/api/v1/cohort-sync/mixpanel/" in created.text
    assert "Password" in created.text
    page = signed_in.get(f"/environments/{env}/cohorts")
    assert secret not in page.text
    assert secret not in (signed_in.client.cookies.get("ensign_session") or "")
    [key] = page.context["keys"]
    assert (key.name, key.active, key.last_used_at) == ("Mixpanel prod", True, None)
    assert secret[:10] in page.text
    # When: Mixpanel syncs with it (HTTP Basic, the key as password)
    response = _members_call(signed_in, secret, ["alice", "bob"])
    # Then: the sync shows in the cohort list and the log
    assert response.status_code == 200, response.text
    assert response.json() == {"action": "members", "status": "success"}
    page = signed_in.get(f"/environments/{env}/cohorts")
    [info] = page.context["cohorts"]
    assert (info.cohort.name, info.cohort.external_id, info.members) == ("Power users", "1001", 2)
    assert info.segment_id is not None
    assert f'href="/environments/{env}/segments/{info.segment_id}"' in page.text
    [entry] = page.context["log"]
    assert (entry.cohort_name, entry.action, entry.session_id, entry.page) == (
        "Power users",
        "members",
        "s1",
        1,
    )
    assert (entry.added, entry.removed, entry.skipped, entry.outcome) == (2, 0, 0, "success")
    assert "Session s1 complete: 1 pages." in page.text
    assert page.context["keys"][0].last_used_at is not None
    segment = signed_in.get(f"/environments/{env}/segments/{info.segment_id}")
    assert segment.status_code == 200
    assert "Mixpanel cohort: Power users" in segment.text


def test_amplitude__key_page_says_what_to_configure_and_syncs_show_as_amplitude(
    signed_in: Browser, seeded: Seeded
) -> None:
    env = seeded.environment_id
    # When: a key is created
    created = signed_in.post(f"/environments/{env}/cohorts/keys", {"key_name": "Amplitude"})
    # Then: the page says where Amplitude posts and which header carries the key
    assert created.status_code == 201
    secret = created.context["new_key"][1]
    assert 'id="amplitude-url">http://testserver/api/v1/cohort-sync/amplitude/<' in created.text
    assert "<code>X-Ensign-Cohort-Key</code>: the key above" in created.text
    # When: Amplitude syncs a batch with it, then Mixpanel another cohort
    body = {
        "cohort_name": "Trial users",
        "cohort_id": "7khm89cz",
        "in_cohort": True,
        "computed_time": "1692206763",
        "message_id": "m-1::enter::0",
        "users": [{"user_id": "alice"}],
    }
    response = signed_in.client.post(AMPLITUDE, json=body, headers={"X-Ensign-Cohort-Key": secret})
    assert response.status_code == 200, response.text
    assert _members_call(signed_in, secret, ["bob"]).status_code == 200
    # Then: each cohort and log entry is labelled with its source
    page = signed_in.get(f"/environments/{env}/cohorts")
    rows = re.findall(
        r"<tr><td>([^<]*)(?:<small[^>]*>[^<]*</small>)?</td>\s*<td>(\w+)</td>", page.text
    )
    assert ("Trial users ", "Amplitude") in rows and ("Power users ", "Mixpanel") in rows
    assert "amplitude_cohort_7khm89cz" in page.text
    assert "<code>m-1::enter::0</code>" in page.text


def test_key__blank_name__message_next_to_the_field(signed_in: Browser, seeded: Seeded) -> None:
    env = seeded.environment_id
    response = signed_in.post(f"/environments/{env}/cohorts/keys", {"key_name": "  "})
    assert response.status_code == 400
    assert _field_error(response.text, "key_name") == "A name is required."
    assert response.context["new_key"] is None
    too_long = signed_in.post(f"/environments/{env}/cohorts/keys", {"key_name": "k" * 201})
    assert _field_error(too_long.text, "key_name") == "At most 200 characters."
    assert signed_in.get(f"/environments/{env}/cohorts").context["keys"] == []


def test_key__revoked_after_confirmation__mixpanel_gets_401(
    signed_in: Browser, seeded: Seeded
) -> None:
    env = seeded.environment_id
    secret = _create_key(signed_in, env)
    assert _members_call(signed_in, secret, ["alice"]).status_code == 200
    [key] = signed_in.get(f"/environments/{env}/cohorts").context["keys"]
    # The revoke button asks first.
    confirm = signed_in.get(f"/environments/{env}/cohorts/keys/{key.id}/revoke")
    assert confirm.status_code == 200
    assert confirm.template.name == "pages/confirm.html"
    assert "Yes, revoke" in confirm.text
    assert f'action="/environments/{env}/cohorts/keys/{key.id}/revoke"' in confirm.text
    # When
    revoked = signed_in.post(f"/environments/{env}/cohorts/keys/{key.id}/revoke")
    # Then
    assert revoked.status_code == 303
    page = signed_in.get(f"/environments/{env}/cohorts")
    assert "revoked" in page.context["flash"]
    [key] = page.context["keys"]
    assert not key.active
    assert key.revoked_at is not None
    assert f"/cohorts/keys/{key.id}/revoke" not in page.text
    response = _members_call(signed_in, secret, ["bob"])
    assert response.status_code == 401
    [info] = signed_in.get(f"/environments/{env}/cohorts").context["cohorts"]
    assert info.members == 1
    # A revoked key has nothing left to confirm.
    again = signed_in.get(f"/environments/{env}/cohorts/keys/{key.id}/revoke")
    assert again.status_code == 303


def test_key__unknown__not_found(signed_in: Browser, seeded: Seeded) -> None:
    env = seeded.environment_id
    assert signed_in.post(f"/environments/{env}/cohorts/keys/999999/revoke").status_code == 404


def test_member_mapping__bad_input__message_next_to_the_field(
    signed_in: Browser, seeded: Seeded
) -> None:
    env = seeded.environment_id
    path = f"/environments/{env}/cohorts/member-mapping"
    blank = signed_in.post(path, {"member_key": "other", "member_key_other": "  "})
    assert blank.status_code == 400
    assert "Enter the member property" in _field_error(blank.text, "member_key_other")
    too_long = signed_in.post(path, {"member_key": "other", "member_key_other": "p" * 201})
    assert too_long.status_code == 400
    assert _field_error(too_long.text, "member_key_other") == "At most 200 characters."
    assert 'value="' + "p" * 201 + '"' in too_long.text  # what was typed stays
    nul = signed_in.post(path, {"member_key": "other", "member_key_other": "a\x00b"})
    assert nul.status_code == 400
    # Refused for every form before any page handles it, so shown as the page's error.
    assert "member_key_other: must not contain NUL characters" in nul.text
    unknown = signed_in.post(path, {"member_key": "nonsense"})
    assert unknown.status_code == 400
    assert _field_error(unknown.text, "member_key") == "Choose how members map to identities."
    page = signed_in.get(f"/environments/{env}/cohorts")
    assert page.context["member_key"] == "mixpanel_distinct_id"


def test_member_mapping__saved__syncs_map_members_by_it(
    signed_in: Browser, seeded: Seeded, state: AppState
) -> None:
    env = seeded.environment_id
    path = f"/environments/{env}/cohorts/member-mapping"
    assert signed_in.post(path, {"member_key": "email"}).status_code == 303
    page = signed_in.get(f"/environments/{env}/cohorts")
    assert page.context["member_key"] == "email"
    assert page.context["mapping_choice"] == "email"
    secret = _create_key(signed_in, env)
    assert _members_call(signed_in, secret, ["carol"]).status_code == 200
    identities = signed_in.get(f"/environments/{env}/identities?q=carol")
    assert "carol@example.com" in identities.text
    # Another property, kept as typed (trimmed).
    assert (
        signed_in.post(path, {"member_key": "other", "member_key_other": " user_id "}).status_code
        == 303
    )
    page = signed_in.get(f"/environments/{env}/cohorts")
    assert page.context["member_key"] == "user_id"
    assert (page.context["mapping_choice"], page.context["mapping_other"]) == ("other", "user_id")
    assert 'value="user_id"' in page.text


def test_sync_log__paged__newest_first(
    signed_in: Browser, seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cohorts_page, "LOG_PAGE_SIZE", 2)
    env = seeded.environment_id
    secret = _create_key(signed_in, env)
    for number in (1, 2, 3):
        response = _members_call(signed_in, secret, ["a"], session="s", page=number, total=3)
        assert response.status_code == 200
    first = signed_in.get(f"/environments/{env}/cohorts")
    assert [e.page for e in first.context["log"]] == [3, 2]
    assert first.context["log_count"] == 3
    assert f"/environments/{env}/cohorts?page=2" in first.text
    second = signed_in.get(f"/environments/{env}/cohorts?page=2")
    assert [e.page for e in second.context["log"]] == [1]
    assert not second.context["has_next"]
    assert f"/environments/{env}/cohorts?page=1" in second.text


def test_sync_log__failed_call__logged_as_failure(signed_in: Browser, seeded: Seeded) -> None:
    env = seeded.environment_id
    secret = _create_key(signed_in, env)
    bad = signed_in.client.post(
        MIXPANEL,
        json={"action": "members", "parameters": {"mixpanel_cohort_id": "1001"}},
        auth=("mixpanel", secret),
    )
    assert bad.status_code == 400
    page = signed_in.get(f"/environments/{env}/cohorts")
    [entry] = page.context["log"]
    assert entry.outcome == "failure"
    assert 'class="badge off">failure' in page.text


def test_cohorts__other_organisation__not_found(signed_in: Browser, state: AppState) -> None:
    with state.units.write() as unit:
        session = unit.session
        other = create_organisation(unit, name="Other")
        result = import_document(session, other.id, standard_document())
    env = result.environment_id
    assert signed_in.get(f"/environments/{env}/cohorts").status_code == 404
    response = signed_in.post(f"/environments/{env}/cohorts/keys", {"key_name": "stolen"})
    assert response.status_code == 404
    with state.units.read() as unit:
        assert list(cohorts.list_keys(unit, None, result.environment_key)) == []
