"""An admin change made through one process reaches the flags another process serves within a second."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.conftest import Organisation, ServerProcess, free_port


@pytest.mark.slow  # starts `ensign serve`
def test_admin_change__in_another_process__served_within_one_second(
    client: TestClient, organisation: Organisation, database_url: str, tmp_path: Path
) -> None:
    # Given: a project, an environment, a feature, and a separate `ensign serve` process
    # polling for changes at the default interval
    admin = organisation.headers
    project = client.post("/api/v1/projects/", headers=admin, json={"name": "p"}).json()
    env = client.post(
        "/api/v1/environments/", headers=admin, json={"name": "e", "project": project["id"]}
    ).json()
    feature = client.post(
        f"/api/v1/projects/{project['id']}/features/",
        headers=admin,
        json={"name": "f", "default_enabled": False},
    ).json()
    server = ServerProcess(database_url, free_port(), log_path=tmp_path / "server.log")
    server.start(extra_env={"ENSIGN_CACHE_POLL_INTERVAL_SECONDS": "0.5"})
    try:
        headers = {"X-Environment-Key": env["api_key"]}
        assert httpx.get(f"{server.api_url}flags/", headers=headers).json()[0]["enabled"] is False
        state = client.get(
            f"/api/v1/environments/{env['api_key']}/featurestates/?feature={feature['id']}",
            headers=admin,
        ).json()["results"][0]

        # When: the feature is switched on through the admin API of this (other) process
        changed_at = time.monotonic()
        response = client.patch(
            f"/api/v1/environments/{env['api_key']}/featurestates/{state['id']}/",
            headers=admin,
            json={"enabled": True},
        )
        assert response.status_code == 200

        # Then: the server process serves the change within a second
        while time.monotonic() - changed_at < 5:
            if httpx.get(f"{server.api_url}flags/", headers=headers).json()[0]["enabled"]:
                break
            time.sleep(0.02)
        elapsed = time.monotonic() - changed_at
        assert elapsed < 1.0, f"took {elapsed:.2f} s"
    finally:
        server.stop()


def test_admin_change__same_process__served_at_once(
    client: TestClient, organisation: Organisation
) -> None:
    admin = organisation.headers
    project = client.post("/api/v1/projects/", headers=admin, json={"name": "p"}).json()
    env = client.post(
        "/api/v1/environments/", headers=admin, json={"name": "e", "project": project["id"]}
    ).json()
    client.post(
        f"/api/v1/projects/{project['id']}/features/",
        headers=admin,
        json={"name": "f", "initial_value": "one"},
    )
    headers = {"X-Environment-Key": env["api_key"]}
    assert client.get("/api/v1/flags/", headers=headers).json()[0]["feature_state_value"] == "one"
    state = client.get(
        f"/api/v1/environments/{env['api_key']}/featurestates/", headers=admin
    ).json()["results"][0]
    client.patch(
        f"/api/v1/environments/{env['api_key']}/featurestates/{state['id']}/",
        headers=admin,
        json={"feature_state_value": "two"},
    )
    assert client.get("/api/v1/flags/", headers=headers).json()[0]["feature_state_value"] == "two"
