from __future__ import annotations

from tests.admin.conftest import Admin
from tests.documents import standard_document


def test_import__document__project_and_environment_serving_its_flags(admin: Admin) -> None:
    document = standard_document()
    response = admin.client.post(
        "/api/v1/projects/import/?project=Imported", headers=admin.headers, json=document
    )
    assert response.status_code == 201, response.text
    keys = response.json()
    assert keys["environment_key"] == document["api_key"]
    assert keys["server_key"].startswith("ser.")
    assert admin.get(f"/api/v1/projects/{keys['project_id']}/").json()["name"] == "Imported"
    assert admin.sdk_flags(keys["environment_key"])["banner"]["feature_state_value"] == "hello"
    # The import is in the audit log.
    assert any(
        "Imported environment document" in e["log"]
        for e in admin.get("/api/v1/audit/").json()["results"]
    )


def test_import__not_a_document__400_naming_the_field(admin: Admin) -> None:
    response = admin.client.post(
        "/api/v1/projects/import/", headers=admin.headers, json={"name": "x"}
    )
    assert response.status_code == 400
    assert response.json()["field"] == "project"


def test_import__no_credentials__401(admin: Admin) -> None:
    response = admin.client.post("/api/v1/projects/import/", json=standard_document())
    assert response.status_code == 401
