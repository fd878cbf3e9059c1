"""Integration changes in the audit log, without the vendor keys."""

from __future__ import annotations

from fastapi.testclient import TestClient

from ensign.storage import changes as change_store
from ensign.storage.environments import environment_by_key
from ensign.web.deps import AppState
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


def test_change_path__integration_saved__snapshot_rebuilt_no_flag_change_recorded(
    client: TestClient, organisation: Organisation, env: Env, state: AppState
) -> None:
    # Given an environment's revision and change records
    def revision_and_records() -> tuple[int, int]:
        with state.units.read() as unit:
            environment = environment_by_key(unit.session, env.client_key)
            assert environment is not None
            records = change_store.change_records(unit.session, environment.id)
            return environment.revision, len(list(records))

    revision, records = revision_and_records()
    # When a webhook with a signing secret is configured
    created = client.post(
        f"/api/v1/environments/{env.client_key}/integrations/webhook/",
        headers=organisation.headers,
        json={"base_url": "https://hooks.example.com/in", "secret": "s3cret-value"},
    )
    assert created.status_code == 201, created.text
    # Then the revision moved (every process rebuilds the snapshot), the SDKs see it...
    after_revision, after_records = revision_and_records()
    assert after_revision > revision
    (target,) = state.cache.for_key(env.client_key).integrations  # type: ignore[union-attr]
    assert target.id == created.json()["id"]
    # ...no flag change is recorded, and the audit entry hides the secret
    assert after_records == records
    audit = client.get(f"/api/v1/audit/?environment={env.client_key}", headers=organisation.headers)
    assert "s3cret-value" not in audit.text
    (entry,) = [e for e in audit.json()["results"] if e["related_object_type"] == "integration"]
    assert entry["after"]["options"]["secret"] == "[redacted]"
