"""Amplitude's cohort webhook destination: batches of users entering or leaving a cohort become
the `amplitude_cohort_<id>` trait and the cohort's managed segment."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from ensign.storage.models import Trait
from ensign.web.deps import AppState
from tests.cohorts.conftest import Sync, basic, bearer, create_key, make_env
from tests.conftest import Organisation, ServerProcess
from tests.units import unit_session

AMPLITUDE_PATH = "/api/v1/cohort-sync/amplitude/"
TRAIT = "amplitude_cohort_7khm89cz"
MISSING = (
    "Authentication credentials were not provided: send the cohort-sync key as the HTTP Basic "
    "password or in the X-Ensign-Cohort-Key header."
)
INVALID = "Invalid cohort-sync key."


def batch(
    in_cohort: Any,
    *user_ids: str,
    cohort_id: Any = "7khm89cz",
    name: str = "Power users",
    message_id: str | None = None,
) -> dict[str, Any]:
    """A batch in Amplitude's default cohort format."""
    verb = "enter" if in_cohort in (True, "true") else "exit"
    return {
        "cohort_name": name,
        "cohort_id": cohort_id,
        "in_cohort": in_cohort,
        "computed_time": "1692206763",
        "message_id": message_id or f"9baaa88f-9d46-4ee5-a946-be0c6aea0046::{verb}::0",
        "users": [{"user_id": u} for u in user_ids],
    }


def post(sync: Sync, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    auth = {"X-Ensign-Cohort-Key": sync.key} if headers is None else headers
    if isinstance(body, bytes):
        return sync.client.post(AMPLITUDE_PATH, content=body, headers=auth)
    return sync.client.post(AMPLITUDE_PATH, json=body, headers=auth)


def ok(sync: Sync, body: Any) -> dict[str, Any]:
    response = post(sync, body)
    assert response.status_code == 200, response.text
    reply: dict[str, Any] = response.json()
    return reply


def trait_rows(sync: Sync) -> int:
    with sync.state.units.read() as unit, unit_session(unit) as session:
        return int(session.scalar(select(func.count()).where(Trait.key == TRAIT)) or 0)


def test_enter_then_leave__trait_set_then_deleted_and_segment_managed(sync: Sync) -> None:
    # When: three users enter the cohort
    reply = ok(sync, batch(True, "alice", "bob", "carol"))
    # Then
    assert reply == {
        "action": "add_members",
        "status": "success",
        "added": 3,
        "removed": 0,
        "skipped": 0,
    }
    assert sync.members_of(TRAIT) == {"alice", "bob", "carol"}
    [segment] = sync.managed_segments()
    assert (segment.name, segment.managed_by) == (
        "Amplitude cohort: Power users",
        "cohort-sync:amplitude:7khm89cz",
    )
    [[condition]] = [r["conditions"] for r in segment.rules[0]["rules"]]
    assert condition == {"operator": "IS_SET", "property": TRAIT, "value": None}
    # When: bob and someone Ensign never saw leave
    reply = ok(sync, batch(False, "bob", "nobody"))
    # Then: bob's trait is deleted; leaving creates no identity
    assert (reply["action"], reply["removed"]) == ("remove_members", 1)
    assert sync.members_of(TRAIT) == {"alice", "carol"}
    assert "bob" in sync.identities() and "nobody" not in sync.identities()
    log = sync.log()
    assert [(e["source"], e["cohort"], e["cohort_name"], e["action"]) for e in log] == [
        ("amplitude", "7khm89cz", "Power users", "remove_members"),
        ("amplitude", "7khm89cz", "Power users", "add_members"),
    ]
    assert log[1]["session"] == "9baaa88f-9d46-4ee5-a946-be0c6aea0046::enter::0"
    assert (log[1]["received"], log[1]["added"]) == (3, 3)
    cohort = sync.admin("GET", "cohorts/").json()["results"][0]
    assert (cohort["source"], cohort["trait_key"], cohort["members"]) == ("amplitude", TRAIT, 2)


def test_repeated_batches__idempotent(sync: Sync) -> None:
    # Amplitude sends a batch again when the answer is slow: the same message twice.
    assert ok(sync, batch(True, "a", "b"))["added"] == 2
    assert ok(sync, batch(True, "a", "b"))["added"] == 0
    assert sync.members_of(TRAIT) == {"a", "b"}
    assert trait_rows(sync) == 2
    assert ok(sync, batch(False, "a"))["removed"] == 1
    assert ok(sync, batch(False, "a"))["removed"] == 0
    assert sync.members_of(TRAIT) == {"b"}
    assert trait_rows(sync) == 1
    assert len(sync.managed_segments()) == 1


def test_late_repeat_of_an_enter_batch__does_not_undo_a_later_leave(sync: Sync) -> None:
    # Given: a enters, and leaves in a later batch
    first = batch(True, "a", "b", message_id="m1::enter::0")
    ok(sync, first)
    ok(sync, batch(False, "a", message_id="m2::exit::0"))
    # When: Amplitude resends the first batch, whose answer it did not get in time
    reply = ok(sync, first)
    # Then: the repeat is recognised and changes nothing
    assert (reply["added"], reply["removed"]) == (0, 0)
    assert sync.members_of(TRAIT) == {"b"}
    assert sync.log()[0]["message"] == "Batch m1::enter::0 repeated: already applied, so ignored."
    # A batch that shares only the message id (a template's, say) is not a repeat.
    assert ok(sync, batch(True, "a", message_id="m1::enter::0"))["added"] == 1
    assert sync.members_of(TRAIT) == {"a", "b"}


def test_template_variants__text_in_cohort_numeric_id_and_unusable_users(sync: Sync) -> None:
    # A template may quote in_cohort, and render a numeric id without quotes.
    body = batch("true", "a", cohort_id=42, name="Numbers")
    body["users"] += [{"user_id": ""}, {"device_id": "d1"}, "not-an-object", {"user_id": "a"}]
    reply = ok(sync, body)
    assert (reply["added"], reply["skipped"]) == (1, 3)
    assert sync.members_of("amplitude_cohort_42") == {"a"}
    assert ok(sync, batch("false", "a", cohort_id=42))["removed"] == 1
    assert sync.members_of("amplitude_cohort_42") == set()


def test_cohort_renamed__segment_renamed(sync: Sync) -> None:
    ok(sync, batch(True, "a"))
    ok(sync, batch(True, "b", name="Renamed"))
    assert [s.name for s in sync.managed_segments()] == ["Amplitude cohort: Renamed"]
    assert sync.members_of(TRAIT) == {"a", "b"}


def test_empty_batch__success_and_cohort_created(sync: Sync) -> None:
    assert ok(sync, batch(True))["added"] == 0
    assert [s.name for s in sync.managed_segments()] == ["Amplitude cohort: Power users"]


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param("header", id="own-header"),
        pytest.param("basic", id="basic-password"),
        pytest.param("bearer", id="bearer"),
    ],
)
def test_key__each_way_of_sending_it__accepted(sync: Sync, headers: str) -> None:
    sent = {
        "header": {"X-Ensign-Cohort-Key": sync.key},
        "basic": basic(sync.key, "amplitude"),
        "bearer": bearer(sync.key),
    }[headers]
    assert post(sync, batch(True, "a"), sent).status_code == 200
    assert sync.members_of(TRAIT) == {"a"}


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        pytest.param({}, MISSING, id="missing"),
        pytest.param({"X-Ensign-Cohort-Key": ""}, MISSING, id="empty-header"),
        pytest.param({"X-Ensign-Cohort-Key": "csk_unknown"}, INVALID, id="unknown"),
        pytest.param(
            {"X-Ensign-Cohort-Key": "Bearer csk_x"},
            "Malformed X-Ensign-Cohort-Key header: send the cohort-sync key alone.",
            id="header-with-scheme",
        ),
        pytest.param(basic("csk_wrong"), INVALID, id="wrong-basic"),
    ],
)
def test_key__missing_or_wrong__401_and_nothing_changes(
    sync: Sync, headers: dict[str, str], message: str
) -> None:
    response = post(sync, batch(True, "a"), headers)
    assert response.status_code == 401
    assert response.json() == {
        "action": "add_members",
        "status": "failure",
        "error": {"message": message, "code": 401},
    }
    assert sync.members_of(TRAIT) == set()
    assert sync.managed_segments() == []


def test_key__revoked__401(sync: Sync) -> None:
    [key] = sync.admin("GET", "cohort-sync-keys/").json()["results"]
    assert sync.admin("DELETE", f"cohort-sync-keys/{key['id']}/").status_code == 204
    response = post(sync, batch(False, "a"))
    assert response.status_code == 401
    assert response.json()["error"] == {"message": INVALID, "code": 401}


SHAPE = (
    'The body must be Amplitude\'s cohort format: {"cohort_id", "cohort_name", "in_cohort", '
    '"message_id", "users": [{"user_id": ...}]}.'
)
IN_COHORT = "in_cohort: must be true (the users enter) or false (they leave)."
GOOD = batch(True, "a")


@pytest.mark.parametrize(
    ("body", "action", "message"),
    [
        pytest.param(b"{not json", None, "The body is not valid JSON.", id="not-json"),
        pytest.param(b"", None, "The body is not valid JSON.", id="empty"),
        pytest.param([{"user_id": "a"}], None, SHAPE, id="per-user-template"),
        pytest.param({**GOOD, "in_cohort": None}, None, IN_COHORT, id="no-in-cohort"),
        pytest.param({**GOOD, "in_cohort": "yes"}, None, IN_COHORT, id="in-cohort-text"),
        pytest.param(
            {**GOOD, "cohort_id": None},
            "add_members",
            "cohort_id: must be a string of 1 to 150 characters.",
            id="no-cohort-id",
        ),
        pytest.param(
            {**GOOD, "cohort_id": "x" * 151},
            "add_members",
            "cohort_id: must be a string of 1 to 150 characters.",
            id="cohort-id-too-long",
        ),
        pytest.param(
            {**GOOD, "cohort_id": "a\nb"},
            "add_members",
            "cohort_id: must not contain control characters.",
            id="cohort-id-newline",
        ),
        pytest.param(
            {**GOOD, "users": {"user_id": "a"}},
            "add_members",
            'users: must be a list of {"user_id": ...} objects.',
            id="users-not-list",
        ),
        pytest.param(
            {**GOOD, "users": [{"user_id": str(i)} for i in range(10_001)]},
            "add_members",
            "users: at most 10000 users per request.",
            id="too-many-users",
        ),
        pytest.param(
            {**GOOD, "message_id": 7},
            "add_members",
            "message_id: must be a string of at most 200 characters.",
            id="message-id-number",
        ),
        pytest.param(
            {**GOOD, "cohort_name": "a\x00b"},
            "add_members",
            "cohort_name: must not contain NUL characters or unpaired surrogates.",
            id="nul-in-name",
        ),
    ],
)
def test_malformed_body__400_logged_and_nothing_changes(
    sync: Sync, body: Any, action: str | None, message: str
) -> None:
    response = post(sync, body)
    assert response.status_code == 400
    assert response.json() == {
        "action": action,
        "status": "failure",
        "error": {"message": message, "code": 400},
    }
    [entry] = sync.log()
    assert (entry["source"], entry["outcome"], entry["status_code"], entry["message"]) == (
        "amplitude",
        "failure",
        400,
        message,
    )
    assert sync.managed_segments() == []


def test_malformed_body__log_names_what_it_could(sync: Sync) -> None:
    post(sync, {**batch(True, "a", "b"), "cohort_id": ["x"]})
    [entry] = sync.log()
    assert (entry["cohort"], entry["cohort_name"], entry["action"], entry["received"]) == (
        "['x']",
        "Power users",
        "add_members",
        2,
    )


def _banner(client: httpx.Client, env_key: str, identifier: str) -> Any:
    response = client.get(
        f"/api/v1/identities/?identifier={identifier}", headers={"X-Environment-Key": env_key}
    )
    assert response.status_code == 200, response.text
    [flag] = [f for f in response.json()["flags"] if f["feature"]["name"] == "banner"]
    return flag["feature_state_value"]


@pytest.mark.slow
def test_served__segment_override_on_the_cohort__flips_for_members_and_back(
    server: ServerProcess, state: AppState, organisation: Organisation
) -> None:
    # Given: a running server, a key, and a cohort synced by "Amplitude"
    env = make_env(state, organisation)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        sync = Sync(client, state, organisation, env, create_key(client, organisation, env))
        ok(sync, batch(True, "alice", "bob"))
        [cohort] = sync.admin("GET", "cohorts/").json()["results"]
        # And: a segment override on the cohort's managed segment
        sync.override_for_segment("banner", cohort["segment"], "for cohort")
        # Then: members get the override, others the default
        assert _banner(client, env.client_key, "alice") == "for cohort"
        assert _banner(client, env.client_key, "bob") == "for cohort"
        assert _banner(client, env.client_key, "dave") == "hello"
        # When: bob leaves the cohort
        ok(sync, batch(False, "bob"))
        # Then: bob is back to the default at once; alice keeps the override
        assert _banner(client, env.client_key, "bob") == "hello"
        assert _banner(client, env.client_key, "alice") == "for cohort"
