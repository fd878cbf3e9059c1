"""The generic cohort webhook: `{"identifiers": [...]}` to add or remove, for any tool."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.cohorts.conftest import Sync, basic, bearer

BASE = "/api/v1/cohort-sync/webhook"


def call(
    sync: Sync, cohort: str, verb: str, body: Any, headers: dict[str, str] | None = None
) -> httpx.Response:
    auth = bearer(sync.key) if headers is None else headers
    return sync.client.post(f"{BASE}/{cohort}/members/{verb}", json=body, headers=auth)


def test_webhook__add_and_remove__bearer_and_basic(sync: Sync) -> None:
    # When
    added = call(sync, "beta-testers", "add", {"identifiers": ["a", "b", "c", "", None, "a"]})
    # Then
    assert added.status_code == 200
    assert added.json() == {
        "action": "add_members",
        "status": "success",
        "added": 3,
        "removed": 0,
        "skipped": 2,
    }
    assert sync.members_of("cohort_beta-testers") == {"a", "b", "c"}
    [segment] = sync.managed_segments()
    assert (segment.name, segment.managed_by) == (
        "Cohort: beta-testers",
        "cohort-sync:webhook:beta-testers",
    )
    # When: removing through Basic auth
    removed = call(sync, "beta-testers", "remove", {"identifiers": ["b", "zz"]}, basic(sync.key))
    # Then
    assert removed.json() == {
        "action": "remove_members",
        "status": "success",
        "added": 0,
        "removed": 1,
        "skipped": 0,
    }
    assert sync.members_of("cohort_beta-testers") == {"a", "c"}
    log = sync.log()
    assert [(e["source"], e["cohort"], e["action"]) for e in log] == [
        ("webhook", "beta-testers", "remove_members"),
        ("webhook", "beta-testers", "add_members"),
    ]


def test_webhook__ten_thousand_identifiers__fit_in_one_request(sync: Sync) -> None:
    ids = [f"identity-{i:05d}-{'x' * 40}" for i in range(10_000)]
    response = call(sync, "big", "add", {"identifiers": ids})
    assert response.status_code == 200, response.text
    assert response.json()["added"] == 10_000


@pytest.mark.parametrize(
    ("cohort", "body", "message"),
    [
        pytest.param("ok", {"ids": []}, 'The body must be {"identifiers": [...]}.', id="no-list"),
        pytest.param("ok", ["a"], 'The body must be {"identifiers": [...]}.', id="bare-list"),
        pytest.param(
            "ok",
            {"identifiers": ["a"] * 10_001},
            "identifiers: at most 10000 per request.",
            id="too-many",
        ),
        pytest.param(
            "bad name!",
            {"identifiers": ["a"]},
            "cohort: use 1 to 100 letters, digits, '_', '-' or '.' in the cohort's name.",
            id="bad-cohort",
        ),
    ],
)
def test_webhook__malformed__400(sync: Sync, cohort: str, body: Any, message: str) -> None:
    response = call(sync, cohort, "add", body)
    assert response.status_code == 400
    assert response.json() == {
        "action": "add_members",
        "status": "failure",
        "error": {"message": message, "code": 400},
    }


def test_webhook__bad_key__401(sync: Sync) -> None:
    response = call(sync, "x", "add", {"identifiers": ["a"]}, bearer("csk_nope"))
    assert response.status_code == 401
    assert response.json()["error"] == {"message": "Invalid cohort-sync key.", "code": 401}
