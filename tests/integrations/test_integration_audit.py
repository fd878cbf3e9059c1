"""Integration changes in the audit log, without the vendor keys."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import Organisation
from tests.fakes.fixtures import Env


def test_audit__integration_created_changed_removed__each_recorded_without_the_key(
    client: TestClient, organisation: Organisation, env: Env
) -> None:
    # Given
    headers = organisation.headers
    base = f"/api/v1/environments/{env.client_key}/integrations/mixpanel/"
    # When an integration is created, changed twice and removed
    created = client.post(base, headers=headers, json={"api_key": "tok-first", "region": "eu"})
    assert created.status_code == 201, created.text
    item = f"{base}{created.json()['id']}/"
    assert client.patch(item, headers=headers, json={"api_key": "tok-second"}).status_code == 200
    assert client.patch(item, headers=headers, json={"enabled": False}).status_code == 200
    assert client.delete(item, headers=headers).status_code == 204
    # Then the environment's audit log shows all four, newest first
    response = client.get(f"/api/v1/audit/?environment={env.client_key}", headers=headers)
    entries = [e for e in response.json()["results"] if e["related_object_type"] == "integration"]
    assert [e["action"] for e in entries] == ["DELETED", "UPDATED", "UPDATED", "CREATED"]
    assert [e["log"] for e in entries] == [
        "Mixpanel integration deleted: Test environment",
        "Mixpanel integration updated: Test environment",
        "Mixpanel integration updated: Test environment (API key changed)",
        "Mixpanel integration created: Test environment",
    ]
    assert entries[3]["after"]["base_url"] == "https://api-eu.mixpanel.com"
    assert (entries[1]["before"]["enabled"], entries[1]["after"]["enabled"]) == (True, False)
    assert entries[0]["before"]["kind"] == "mixpanel"
    assert entries[0]["after"] is None
    assert all(e["environment"] == env.environment_id for e in entries)
    # and never the key itself
    assert "tok-first" not in response.text
    assert "tok-second" not in response.text
    assert {e["after"]["api_key"] for e in entries[1:]} == {"[redacted]"}
