"""Bad credentials, malformed bodies and our own faults, each with the exact reply."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from sqlalchemy import text

from tests.cohorts.conftest import Sync, basic, bearer, envelope, members
from tests.units import unit_session

MISSING = (
    "Authentication credentials were not provided: send the cohort-sync key as the HTTP Basic "
    "password or in the X-Ensign-Cohort-Key header."
)
MALFORMED = "Malformed Authorization header: send HTTP Basic credentials or a Bearer token."
INVALID = "Invalid cohort-sync key."


def failure(action: str | None, code: int, message: str) -> dict[str, Any]:
    return {"action": action, "status": "failure", "error": {"message": message, "code": code}}


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        pytest.param({}, MISSING, id="missing"),
        pytest.param({"Authorization": ""}, MISSING, id="empty"),
        pytest.param({"Authorization": "Basic !!!not-base64"}, MALFORMED, id="not-base64"),
        pytest.param(
            {"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()},
            MALFORMED,
            id="no-colon",
        ),
        pytest.param(
            {"Authorization": "Basic " + base64.b64encode("u:clé".encode()).decode()},
            MALFORMED,
            id="non-ascii",
        ),
        pytest.param(
            {"Authorization": "Basic " + base64.b64encode(b"u:a\x00b").decode()},
            MALFORMED,
            id="nul",
        ),
        pytest.param({"Authorization": "Token abc"}, MALFORMED, id="other-scheme"),
        pytest.param(basic(""), MISSING, id="empty-password"),
        pytest.param(basic("csk_unknown"), INVALID, id="unknown"),
        pytest.param(basic("not-even-a-key"), INVALID, id="unknown-shape"),
    ],
)
def test_mixpanel__bad_credentials__401(sync: Sync, headers: dict[str, str], message: str) -> None:
    response = sync.mixpanel(envelope("members", members("a")), headers=headers)
    assert response.status_code == 401
    assert response.json() == failure("members", 401, message)
    assert response.headers["www-authenticate"] == 'Basic realm="ensign cohort sync"'
    assert sync.members_of() == set()


def test_mixpanel__revoked_key__401(sync: Sync) -> None:
    [key] = sync.admin("GET", "cohort-sync-keys/").json()["results"]
    assert sync.admin("DELETE", f"cohort-sync-keys/{key['id']}/").status_code == 204
    response = sync.mixpanel(envelope("add_members", members("a")))
    assert response.status_code == 401
    assert response.json() == failure("add_members", 401, INVALID)


def test_mixpanel__bad_credentials_and_bad_body__401_first(sync: Sync) -> None:
    response = sync.mixpanel(b"{", headers={})
    assert (response.status_code, response.json()) == (401, failure(None, 401, MISSING))


def test_mixpanel__any_username_and_bearer__accepted(sync: Sync) -> None:
    assert sync.mixpanel(envelope("members", members("a")), basic(sync.key, "")).status_code == 200
    assert sync.mixpanel(envelope("members", members("b")), bearer(sync.key)).status_code == 200


def _without(body: dict[str, Any], *names: str) -> dict[str, Any]:
    parameters = {k: v for k, v in body["parameters"].items() if k not in names}
    return {**body, "parameters": parameters}


def _with(body: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**body, "parameters": {**body["parameters"], **changes}}


PAGE_INFO = (
    "parameters.page_info: must be {total_pages, page_count}, page_count from 1 to total_pages."
)
GOOD = envelope("members", members("a"))


@pytest.mark.parametrize(
    ("body", "action", "message"),
    [
        pytest.param(b"{not json", None, "The body is not valid JSON.", id="not-json"),
        pytest.param(b"", None, "The body is not valid JSON.", id="empty"),
        pytest.param([1, 2], None, "The body must be a JSON object.", id="array"),
        pytest.param(
            {"parameters": {}},
            None,
            "action: must be one of members, add_members, remove_members.",
            id="no-action",
        ),
        pytest.param(
            {**GOOD, "action": "delete_everything"},
            None,
            "action: must be one of members, add_members, remove_members.",
            id="unknown-action",
        ),
        pytest.param(
            {"action": "members"}, "members", "parameters: must be an object.", id="no-parameters"
        ),
        pytest.param(
            _without(GOOD, "mixpanel_cohort_id"),
            "members",
            "parameters.mixpanel_cohort_id: must be a string of 1 to 150 characters.",
            id="no-cohort-id",
        ),
        pytest.param(
            _with(GOOD, mixpanel_cohort_id=["1"]),
            "members",
            "parameters.mixpanel_cohort_id: must be a string of 1 to 150 characters.",
            id="cohort-id-list",
        ),
        pytest.param(
            _with(GOOD, members={"a": 1}),
            "members",
            "parameters.members: must be a list.",
            id="members-not-list",
        ),
        pytest.param(_without(GOOD, "page_info"), "members", PAGE_INFO, id="no-page-info"),
        pytest.param(
            _with(GOOD, page_info={"total_pages": 2, "page_count": 3}),
            "members",
            PAGE_INFO,
            id="page-beyond-total",
        ),
        pytest.param(
            _with(GOOD, page_info={"total_pages": "x", "page_count": 1}),
            "members",
            PAGE_INFO,
            id="page-info-text",
        ),
        pytest.param(
            _without(GOOD, "mixpanel_session_id"),
            "members",
            "parameters.mixpanel_session_id: required for the members action.",
            id="no-session",
        ),
        pytest.param(
            _with(GOOD, members=members(*[str(i) for i in range(10_001)])),
            "members",
            "parameters.members: at most 10000 members per request.",
            id="too-many-members",
        ),
    ],
)
def test_mixpanel__malformed_body__400_and_logged(
    sync: Sync, body: Any, action: str | None, message: str
) -> None:
    response = sync.mixpanel(body)
    assert response.status_code == 400
    assert response.json() == failure(action, 400, message)
    [entry] = sync.log()
    assert (entry["outcome"], entry["status_code"], entry["message"]) == ("failure", 400, message)
    assert sync.members_of() == set()


def test_mixpanel__database_fault__5xx_so_mixpanel_retries(sync: Sync) -> None:
    # Given: a database that fails (a table gone)
    with sync.state.units.write() as unit, unit_session(unit) as session:
        session.execute(text("ALTER TABLE cohort_members RENAME TO cohort_members_away"))
    try:
        # When
        response = sync.mixpanel(envelope("add_members", members("a")))
    finally:
        with sync.state.units.write() as unit, unit_session(unit) as session:
            session.execute(text("ALTER TABLE cohort_members_away RENAME TO cohort_members"))
    # Then: a 503 in Mixpanel's shape, nothing half-done, and the failure logged
    assert response.status_code == 503
    assert response.json() == failure(
        "add_members", 503, "Temporary database failure; please retry."
    )
    assert sync.members_of() == set()
    assert sync.managed_segments() == []
    [entry] = sync.log()
    assert (entry["outcome"], entry["status_code"], entry["cohort"]) == ("failure", 503, "1001")
    # And the retry succeeds.
    sync.ok(envelope("add_members", members("a")))
    assert sync.members_of() == {"a"}


def test_mixpanel__large_body__not_caught_by_the_default_size_limit(sync: Sync) -> None:
    body = envelope("members", members(*[f"someone-{i:06d}" for i in range(9_000)]))
    body["parameters"]["members"] = [
        {**m, "address": "1 Long Street, Some Town, Somewhere"}
        for m in body["parameters"]["members"]
    ]
    assert len(str(body)) > 1_048_576
    sync.ok(body)
