"""Cohort sync refuses text that can never be stored with a 400 (which pauses Mixpanel's sync
and tells the customer), never a 5xx (which Mixpanel would retry for ever)."""

from __future__ import annotations

from ensign.web.deps import AppState
from tests.cohorts.conftest import Sync, envelope, members


def test_mixpanel__nul_in_cohort_name__400_failure_reply_and_nothing_stored(
    sync: Sync, state: AppState
) -> None:
    for field, value in (
        ("mixpanel_cohort_name", "Power\x00users"),
        ("mixpanel_cohort_description", "\x00"),
        ("mixpanel_session_id", "s\x00"),
    ):
        body = envelope("members", members("a", "b"))
        body["parameters"][field] = value
        response = sync.mixpanel(body)
        assert response.status_code == 400
        assert response.json() == {
            "action": "members",
            "status": "failure",
            "error": {
                "message": f"parameters.{field}: must not contain NUL characters or unpaired "
                "surrogates.",
                "code": 400,
            },
        }
    assert sync.managed_segments() == []
    assert sync.identities() == set()
    # Each refusal is in the sync log, with what was sent made storable.
    assert [e["cohort_name"] for e in sync.log()] == [
        "Power users",
        "Power users",
        "Power\ufffdusers",
    ]


def test_mixpanel__unpaired_surrogate_member__skipped(sync: Sync) -> None:
    body = envelope("members", [*members("a"), {"mixpanel_distinct_id": "b\ud800"}])
    raw = __import__("json").dumps(body).encode()
    response = sync.mixpanel(raw)
    # orjson refuses the unpaired surrogate, so the body is not JSON: a 400, never a retry.
    assert response.status_code == 400
    assert sync.identities() == set()


def test_webhook__nul_in_identifier__skipped(sync: Sync) -> None:
    response = sync.client.post(
        "/api/v1/cohort-sync/webhook/power/members/add",
        json={"identifiers": ["a", "b\x00"]},
        headers={"Authorization": f"Bearer {sync.key}"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["skipped"] == 1
    assert sync.identities() == {"a"}
