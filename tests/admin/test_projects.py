"""Projects, environments and server keys."""

from __future__ import annotations

from tests.admin.conftest import Admin


def test_projects__crud__round_trips(admin: Admin) -> None:
    created = admin.project("Shop")
    path = f"/api/v1/projects/{created['id']}/"

    updated = admin.put(path, {"name": "Store", "hide_disabled_flags": True}).json()
    listed = admin.get(f"/api/v1/projects/?organisation={admin.organisation_id}").json()
    deleted = admin.delete(path)

    assert created["organisation"] == admin.organisation_id
    assert updated["name"] == "Store"
    assert updated["hide_disabled_flags"] is True
    assert [p["name"] for p in listed["results"]] == ["Store"]
    assert deleted.status_code == 204
    assert admin.get(path).status_code == 404


def test_projects__missing_name__400_naming_field(admin: Admin) -> None:
    response = admin.post("/api/v1/projects/", {})

    assert response.status_code == 400
    assert response.json()["error"] == "invalid"
    assert response.json()["field"] == "name"


def test_projects__name_too_long_or_wrong_type__400(admin: Admin) -> None:
    assert admin.post("/api/v1/projects/", {"name": "x" * 201}).status_code == 400
    assert admin.post("/api/v1/projects/", {"name": 12}).status_code == 400
    assert admin.post("/api/v1/projects/", {"name": "a\x00b"}).status_code == 400
    assert admin.post("/api/v1/projects/", [1, 2]).status_code == 400


def test_projects__another_organisation_in_body__400(admin: Admin) -> None:
    response = admin.post("/api/v1/projects/", {"name": "x", "organisation": 2**40})

    assert response.status_code == 400
    assert response.json()["field"] == "organisation"


def test_environments__create__has_state_for_every_feature(admin: Admin) -> None:
    project = admin.project()
    admin.feature(project["id"], "a", default_enabled=True, initial_value="true")
    admin.feature(project["id"], "b", initial_value="hello")

    environment = admin.environment(project["id"], "Staging")
    states = admin.get(f"/api/v1/environments/{environment['api_key']}/featurestates/").json()

    assert len(environment["api_key"]) == 22
    assert environment["hide_disabled_flags"] is None
    values = {s["feature"]: (s["enabled"], s["feature_state_value"]) for s in states["results"]}
    assert sorted(values.values(), key=str) == sorted([(True, True), (False, "hello")], key=str)
    assert set(admin.sdk_flags(environment["api_key"])) == {"a", "b"}


def test_environments__update_and_list_and_delete__round_trips(admin: Admin) -> None:
    project = admin.project()
    environment = admin.environment(project["id"])
    path = f"/api/v1/environments/{environment['api_key']}/"

    updated = admin.patch(
        path, {"description": "live", "hide_disabled_flags": True, "allow_client_traits": False}
    ).json()
    listed = admin.get(f"/api/v1/environments/?project={project['id']}").json()
    deleted = admin.delete(path)

    assert updated["description"] == "live"
    assert updated["hide_disabled_flags"] is True
    assert updated["allow_client_traits"] is False
    assert listed["count"] == 1
    assert deleted.status_code == 204
    assert admin.get(path).status_code == 404


def test_environments__hide_disabled_flags__sdk_sees_it_at_once(admin: Admin) -> None:
    project = admin.project()
    environment = admin.environment(project["id"])
    admin.feature(project["id"], "off")
    assert "off" in admin.sdk_flags(environment["api_key"])

    admin.patch(f"/api/v1/environments/{environment['api_key']}/", {"hide_disabled_flags": True})

    assert "off" not in admin.sdk_flags(environment["api_key"])


def test_environments__unknown_project__400_naming_field(admin: Admin) -> None:
    response = admin.post("/api/v1/environments/", {"name": "x", "project": 999})

    assert response.status_code == 400
    assert response.json()["field"] == "project"


def test_server_keys__create_update_delete__gate_the_document(admin: Admin) -> None:
    project = admin.project()
    environment = admin.environment(project["id"])
    path = f"/api/v1/environments/{environment['api_key']}/api-keys/"

    created = admin.made(path, {"name": "backend"})
    document = admin.client.get(
        "/api/v1/environment-document/", headers={"X-Environment-Key": created["key"]}
    )
    deactivated = admin.patch(f"{path}{created['id']}/", {"active": False}).json()
    refused = admin.client.get(
        "/api/v1/environment-document/", headers={"X-Environment-Key": created["key"]}
    )
    deleted = admin.delete(f"{path}{created['id']}/")

    assert created["key"].startswith("ser.")
    assert document.status_code == 200
    assert document.json()["api_key"] == environment["api_key"]
    assert deactivated["active"] is False
    assert refused.status_code == 403
    assert deleted.status_code == 204
    assert admin.get(path).json()["count"] == 0


def test_environment_document__admin_endpoint__matches_environment(admin: Admin) -> None:
    project = admin.project()
    environment = admin.environment(project["id"])
    admin.feature(project["id"], "a")

    document = admin.get(f"/api/v1/environments/{environment['api_key']}/document/").json()

    assert document["api_key"] == environment["api_key"]
    assert [fs["feature"]["name"] for fs in document["feature_states"]] == ["a"]
    assert document["feature_states"][0]["django_id"] is not None
