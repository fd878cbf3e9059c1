"""Mixpanel's custom-webhook cohort sync against the app (analytics-apis.md §3)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import update

from ensign.storage.models import CohortSyncSession, Environment, utcnow
from tests.cohorts.conftest import Sync, envelope, member, members
from tests.units import unit_session


def test_members__single_page__creates_identities_traits_and_segment(sync: Sync) -> None:
    # When
    sync.ok(envelope("members", members("a", "b")))
    # Then
    assert sync.members_of() == {"a", "b"}
    [segment] = sync.managed_segments()
    assert segment.name == "Mixpanel cohort: Power users"
    assert segment.managed_by == "cohort-sync:mixpanel:1001"
    assert segment.rules == [
        {
            "type": "ALL",
            "rules": [
                {
                    "type": "ALL",
                    "rules": [],
                    "conditions": [
                        {"operator": "IS_SET", "property": "mixpanel_cohort_1001", "value": None}
                    ],
                }
            ],
            "conditions": [],
        }
    ]


def test_members__paged_full_sync__removes_members_not_seen_once_complete(sync: Sync) -> None:
    # Given
    sync.ok(envelope("members", members("a", "b", "c"), session="s1"))
    # When: a later full sync, in two pages
    sync.ok(envelope("members", members("a", "d"), session="s2", page=1, total=2))
    # Then: nobody is removed before every page has arrived
    assert sync.members_of() == {"a", "b", "c", "d"}
    sync.ok(envelope("members", members("e"), session="s2", page=2, total=2))
    assert sync.members_of() == {"a", "d", "e"}
    # The identities stay; only their membership trait goes.
    assert {"b", "c"} <= sync.identities()
    last = sync.log()[0]
    assert (last["added"], last["removed"], last["skipped"]) == (1, 2, 0)
    assert last["message"] == "Session s2 complete: 2 pages."


def test_members__pages_out_of_order__same_result(sync: Sync) -> None:
    sync.ok(envelope("members", members("old"), session="s1"))
    sync.ok(envelope("members", members("c"), session="s2", page=3, total=3))
    sync.ok(envelope("members", members("a"), session="s2", page=1, total=3))
    assert sync.members_of() == {"old", "a", "c"}
    sync.ok(envelope("members", members("b"), session="s2", page=2, total=3))
    assert sync.members_of() == {"a", "b", "c"}


def test_members__duplicate_pages__idempotent(sync: Sync) -> None:
    sync.ok(envelope("members", members("old"), session="s1"))
    for _ in range(2):
        sync.ok(envelope("members", members("a", "b"), session="s2", page=1, total=2))
    assert sync.members_of() == {"old", "a", "b"}
    for _ in range(2):
        sync.ok(envelope("members", members("c"), session="s2", page=2, total=2))
    assert sync.members_of() == {"a", "b", "c"}
    # Repeating the whole session changes nothing.
    sync.ok(envelope("members", members("a", "b"), session="s2", page=1, total=2))
    sync.ok(envelope("members", members("c"), session="s2", page=2, total=2))
    assert sync.members_of() == {"a", "b", "c"}
    assert [e["added"] for e in reversed(sync.log())] == [1, 2, 0, 1, 0, 0, 0]


def test_members__sync_restarted_from_the_top__converges(sync: Sync) -> None:
    sync.ok(envelope("members", members("x", "y"), session="s1"))
    # A sync fails half way, and Mixpanel starts it again with a new session.
    sync.ok(envelope("members", members("a"), session="s2", page=1, total=2))
    sync.ok(envelope("members", members("a"), session="s3", page=1, total=2))
    sync.ok(envelope("members", members("b", "y"), session="s3", page=2, total=2))
    assert sync.members_of() == {"a", "b", "y"}


def test_members__empty_cohort__removes_everyone(sync: Sync) -> None:
    sync.ok(envelope("members", members("a"), session="s1"))
    sync.ok(envelope("members", [], session="s2", page=0, total=0))
    assert sync.members_of() == set()


def test_members__expired_incomplete_session__removes_no_one(sync: Sync) -> None:
    # Given: members a and b, and a full sync whose second page never came
    sync.ok(envelope("members", members("a", "b"), session="s1"))
    sync.ok(envelope("members", members("a"), session="s2", page=1, total=2))
    hours = sync.state.settings.cohort_session_expiry_minutes / 60 + 1
    with sync.state.units.write() as unit, unit_session(unit) as session:
        session.execute(
            update(CohortSyncSession)
            .where(CohortSyncSession.session_id == "s2")
            .values(started_at=utcnow() - dt.timedelta(hours=hours))
        )
    # When: the last page turns up after the session expired
    sync.ok(envelope("members", members("c"), session="s2", page=2, total=2))
    # Then: it adds, but removes no one, and the session starts again from that page
    assert sync.members_of() == {"a", "b", "c"}
    assert sync.log()[0]["message"] == "Session s2 had expired; it starts again from this page."
    # Once page 1 arrives again the session completes, against what it saw since restarting.
    sync.ok(envelope("members", members("a"), session="s2", page=1, total=2))
    assert sync.members_of() == {"a", "c"}


def test_add_and_remove_members__diffs(sync: Sync) -> None:
    sync.ok(envelope("members", members("a", "b"), session="s1"))
    sync.ok(envelope("add_members", members("c", "d"), session="s2"))
    sync.ok(envelope("remove_members", members("a", "nobody"), session="s2"))
    assert sync.members_of() == {"b", "c", "d"}
    # Removing never creates identities.
    assert "nobody" not in sync.identities()
    added, removed = sync.log()[1], sync.log()[0]
    assert (added["action"], added["added"]) == ("add_members", 2)
    assert (removed["action"], removed["removed"]) == ("remove_members", 1)


def test_add_members__unknown_cohort__created_with_its_segment(sync: Sync) -> None:
    sync.ok(envelope("add_members", members("a"), cohort_id=55, name="Churn risk", session=None))
    assert sync.members_of("mixpanel_cohort_55") == {"a"}
    assert [s.name for s in sync.managed_segments()] == ["Mixpanel cohort: Churn risk"]


def test_remove_members__unknown_cohort__success_and_nothing_removed(sync: Sync) -> None:
    sync.ok(envelope("remove_members", members("a"), cohort_id="66"))
    assert sync.members_of("mixpanel_cohort_66") == set()


def test_cohort_renamed__segment_renamed_and_flags_rebuilt(sync: Sync) -> None:
    sync.ok(envelope("members", members("a")))
    with sync.state.units.read() as unit, unit_session(unit) as session:
        environment = session.get(Environment, sync.env.environment_id)
        assert environment is not None
        before = environment.revision
    sync.ok(envelope("add_members", members("b"), name="Super users"))
    assert [s.name for s in sync.managed_segments()] == ["Mixpanel cohort: Super users"]
    with sync.state.units.read() as unit, unit_session(unit) as session:
        environment = session.get(Environment, sync.env.environment_id)
        assert environment is not None
        assert environment.revision > before
    cohorts = sync.admin("GET", "cohorts/").json()["results"]
    assert [(c["name"], c["members"], c["trait_key"]) for c in cohorts] == [
        ("Super users", 2, "mixpanel_cohort_1001")
    ]
    assert cohorts[0]["segment"] == sync.managed_segments()[0].id


def test_members__without_usable_key__skipped_and_counted(sync: Sync) -> None:
    body = envelope(
        "members",
        [
            member("a"),
            {"email": "no-id@example.com"},
            member(""),
            member("   "),
            {"mixpanel_distinct_id": None},
            {"mixpanel_distinct_id": ["x"]},
            {"mixpanel_distinct_id": "x" * 2001},
            {"mixpanel_distinct_id": "nul\x00byte"},
            "not an object",
            {"mixpanel_distinct_id": 12345},
            member("a"),
        ],
    )
    sync.ok(body)
    assert sync.members_of() == {"a", "12345"}
    entry = sync.log()[0]
    assert (entry["received"], entry["added"], entry["skipped"]) == (11, 2, 8)


def test_members__mapped_by_email__per_environment(sync: Sync) -> None:
    response = sync.admin("PUT", "cohort-sync-settings/", {"member_key": "email"})
    assert response.json() == {"member_key": "email"}
    assert sync.admin("GET", "cohort-sync-settings/").json() == {"member_key": "email"}
    sync.ok(envelope("members", members("a", "b")))
    assert sync.members_of() == {"a@example.com", "b@example.com"}


def test_members__mapped_by_another_property(sync: Sync) -> None:
    sync.admin("PATCH", "cohort-sync-settings/", {"member_key": "user_id"})
    sync.ok(envelope("members", [member("a", user_id="u-1"), member("b")]))
    assert sync.members_of() == {"u-1"}


def test_member_key_setting__default_and_invalid(sync: Sync) -> None:
    assert sync.admin("GET", "cohort-sync-settings/").json() == {
        "member_key": "mixpanel_distinct_id"
    }
    assert sync.admin("PUT", "cohort-sync-settings/", {"member_key": ""}).status_code == 400


def test_membership__shows_in_identity_response_and_flags(sync: Sync) -> None:
    # Given: a segment override on the cohort's segment
    sync.ok(envelope("members", members("a")))
    segment = sync.managed_segments()[0]
    features = sync.client.get(
        f"/api/v1/projects/{sync.env.project_id}/features/", headers=sync.org.headers
    ).json()["results"]
    banner = next(f for f in features if f["name"] == "banner")
    response = sync.client.post(
        f"/api/v1/environments/{sync.env.client_key}/features/{banner['id']}"
        "/create-segment-override/",
        json={"segment": segment.id, "enabled": True, "feature_state_value": "cohort banner"},
        headers=sync.org.headers,
    )
    assert response.status_code == 201, response.text

    def banner_for(identifier: str) -> tuple[str, list[dict[str, object]]]:
        body = sync.client.get(
            "/api/v1/identities/",
            params={"identifier": identifier},
            headers={"X-Environment-Key": sync.env.client_key},
        ).json()
        flag = next(f for f in body["flags"] if f["feature"]["name"] == "banner")
        return flag["feature_state_value"], body["traits"]

    value, traits = banner_for("a")
    assert value == "cohort banner"
    assert {"trait_key": "mixpanel_cohort_1001", "trait_value": True} in [
        {"trait_key": t["trait_key"], "trait_value": t["trait_value"]} for t in traits
    ]
    assert banner_for("b")[0] == "hello"
    # When: a leaves the cohort
    sync.ok(envelope("remove_members", members("a")))
    # Then
    assert banner_for("a") == ("hello", [])


def test_ten_thousand_members__one_request(sync: Sync) -> None:
    import time

    ids = [f"user-{i:05d}" for i in range(10_000)]
    body = envelope("members", [member(i, phone_number="+441234567890") for i in ids])
    started = time.perf_counter()
    sync.ok(body)
    first = time.perf_counter() - started
    assert len(sync.members_of()) == 10_000
    # Again, now that every identity exists and is a member.
    started = time.perf_counter()
    sync.ok({**body, "parameters": {**body["parameters"], "mixpanel_session_id": "s2"}})
    again = time.perf_counter() - started
    print(f"\n10,000-member page: {first:.2f} s new, {again:.2f} s repeated")
    entry = sync.log()[0]
    assert (entry["received"], entry["added"], entry["removed"]) == (10_000, 0, 0)
    assert first < 30 and again < 30  # a sanity bound, not a timing test
