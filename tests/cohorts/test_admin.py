"""Cohort-sync keys, settings, cohorts and the sync log in the admin API, and the CLI."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from ensign.cli import app
from tests.cohorts.conftest import Sync, basic, envelope, members


def test_keys__create_list_revoke(sync: Sync) -> None:
    created = sync.admin("POST", "cohort-sync-keys/", {"name": "second"})
    assert created.status_code == 201
    body = created.json()
    assert body["key"].startswith("csk_") and body["prefix"] == body["key"][:10]
    assert (body["name"], body["active"]) == ("second", True)
    listed = sync.admin("GET", "cohort-sync-keys/").json()
    assert [k["name"] for k in listed["results"]] == ["mixpanel", "second"]
    assert all("key" not in k for k in listed["results"])
    # The new key works, until revoked.
    assert sync.mixpanel(envelope("members", members("a")), basic(body["key"])).status_code == 200
    assert sync.admin("DELETE", f"cohort-sync-keys/{body['id']}").status_code == 204
    assert sync.mixpanel(envelope("members", members("a")), basic(body["key"])).status_code == 401
    revoked = sync.admin("GET", "cohort-sync-keys/").json()["results"][1]
    assert revoked["active"] is False and revoked["revoked_at"] is not None
    first = sync.admin("GET", "cohort-sync-keys/").json()["results"][0]
    assert first["last_used_at"] is None


def test_keys__unknown_key_or_environment__404(sync: Sync) -> None:
    assert sync.admin("DELETE", "cohort-sync-keys/99999/").status_code == 404
    response = sync.client.post(
        "/api/v1/environments/nope/cohort-sync-keys/", json={"name": "x"}, headers=sync.org.headers
    )
    assert response.status_code == 404


def test_keys__need_an_admin_key(sync: Sync) -> None:
    url = f"/api/v1/environments/{sync.env.client_key}/cohort-sync-keys/"
    assert sync.client.get(url).status_code == 401


def test_keys__name_required(sync: Sync) -> None:
    assert sync.admin("POST", "cohort-sync-keys/", {"name": ""}).status_code == 400


def test_sync_log__each_call_with_counts(sync: Sync) -> None:
    sync.ok(envelope("members", members("a", "b"), session="s1", page=1, total=2))
    sync.ok(envelope("members", [*members("c"), {"email": "x"}], session="s1", page=2, total=2))
    log = sync.log()
    assert [
        (e["action"], e["session"], e["page"], e["total_pages"], e["added"], e["skipped"])
        for e in log
    ] == [("members", "s1", 2, 2, 1, 1), ("members", "s1", 1, 2, 2, 0)]
    entry = log[0]
    assert entry["source"] == "mixpanel" and entry["cohort"] == "1001"
    assert entry["cohort_name"] == "Power users" and entry["outcome"] == "success"
    assert entry["status_code"] == 200 and entry["duration_ms"] >= 0
    assert entry["created_at"]
    paged = sync.admin("GET", "cohort-sync-log/?page_size=1").json()
    assert paged["count"] == 2 and len(paged["results"]) == 1 and paged["next"]


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, database_url: str) -> CliRunner:
    monkeypatch.setenv("ENSIGN_DATABASE_URL", database_url)
    return CliRunner()


def test_cli__create_list_revoke(sync: Sync, runner: CliRunner) -> None:
    env = sync.env.client_key
    created = runner.invoke(app, ["cohort-key", "create", "--environment", env, "--name", "cli"])
    assert created.exit_code == 0, created.output
    key = created.output.strip()
    assert key.startswith("csk_")
    assert sync.mixpanel(envelope("members", members("a")), basic(key)).status_code == 200
    listed = runner.invoke(app, ["cohort-key", "list", "--environment", env])
    assert listed.exit_code == 0
    lines = listed.output.strip().splitlines()
    assert [line.split("\t")[2:] for line in lines] == [["active", "mixpanel"], ["active", "cli"]]
    key_id = lines[1].split("\t")[0]
    revoked = runner.invoke(app, ["cohort-key", "revoke", "--environment", env, key_id])
    assert revoked.exit_code == 0 and "Revoked" in revoked.output
    assert sync.mixpanel(envelope("members", members("a")), basic(key)).status_code == 401


def test_cli__unknown_environment__fails(sync: Sync, runner: CliRunner) -> None:
    result = runner.invoke(app, ["cohort-key", "create", "--environment", "nope", "--name", "x"])
    assert result.exit_code == 1
    assert "Environment not found." in result.output
