"""Authentication, organisation scoping, organisations and their master keys."""

from __future__ import annotations

from tests.admin.conftest import Admin, World


def test_admin_api__no_key__401(world: World) -> None:
    response = world.client.get("/api/v1/projects/")

    assert response.status_code == 401
    assert response.json()["error"] == "unauthenticated"


def test_admin_api__unknown_key__401(world: World) -> None:
    response = world.client.get("/api/v1/projects/", headers={"Authorization": "Api-Key ens_nope"})

    assert response.status_code == 401


def test_admin_api__another_organisations_project__404(world: World, admin: Admin) -> None:
    project = admin.project()
    environment = admin.environment(project["id"])
    other = world.new_organisation("Other")

    assert other.get(f"/api/v1/projects/{project['id']}/").status_code == 404
    assert other.get(f"/api/v1/projects/{project['id']}/features/").status_code == 404
    assert other.get(f"/api/v1/environments/{environment['api_key']}/").status_code == 404
    assert other.patch(f"/api/v1/projects/{project['id']}/", {"name": "x"}).status_code == 404
    assert other.get("/api/v1/projects/").json()["count"] == 0
    assert other.get(f"/api/v1/organisations/{admin.organisation_id}/").status_code == 404


def test_admin_api__huge_or_unknown_ids__404_not_500(admin: Admin) -> None:
    assert admin.get("/api/v1/projects/99999999999999999999999/").status_code == 404
    assert admin.get("/api/v1/projects/0/").status_code == 404
    assert admin.get("/api/v1/environments/" + "x" * 500 + "/").status_code == 404
    assert admin.get("/api/v1/features/featurestates/12345678901234/").status_code == 404


def test_admin_api__path_without_trailing_slash__served(admin: Admin) -> None:
    assert admin.get("/api/v1/projects").status_code == 200


def test_organisations__list__only_callers(admin: Admin) -> None:
    body = admin.get("/api/v1/organisations/").json()

    assert [o["id"] for o in body["results"]] == [admin.organisation_id]
    assert body["results"][0]["name"] == "Acme"


def test_organisations__update__changes_settings_and_serving(admin: Admin) -> None:
    project = admin.project()
    environment = admin.environment(project["id"])
    path = f"/api/v1/organisations/{admin.organisation_id}/"

    response = admin.patch(path, {"stop_serving_flags": True, "name": "Acme Ltd"})

    assert response.status_code == 200
    assert response.json()["stop_serving_flags"] is True
    assert response.json()["name"] == "Acme Ltd"
    flags = admin.client.get(
        "/api/v1/flags/", headers={"X-Environment-Key": environment["api_key"]}
    )
    assert flags.status_code == 403


def test_organisations__null_name__400_naming_field(admin: Admin) -> None:
    response = admin.patch(f"/api/v1/organisations/{admin.organisation_id}/", {"name": None})

    assert response.status_code == 400
    assert response.json()["field"] == "name"


def test_master_keys__create_use_revoke__key_shown_once_and_stops_working(
    admin: Admin,
) -> None:
    path = f"/api/v1/organisations/{admin.organisation_id}/master-api-keys/"

    created = admin.made(path, {"name": "ci"})
    other = Admin(admin.client, admin.organisation_id, created["key"])
    listed = admin.get(path).json()
    revoked = admin.delete(f"{path}{created['id']}/")

    assert created["key"].startswith("ens_")
    assert all("key" not in item for item in listed["results"])
    assert {item["name"] for item in listed["results"]} == {"tests", "ci"}
    assert revoked.status_code == 204
    assert other.get("/api/v1/projects/").status_code == 401
    assert admin.get(f"{path}{created['id']}/").json()["revoked"] is True


def test_master_keys__expired__401(admin: Admin) -> None:
    path = f"/api/v1/organisations/{admin.organisation_id}/master-api-keys/"

    created = admin.made(path, {"name": "old", "expiry_date": "2001-01-01T00:00:00Z"})

    other = Admin(admin.client, admin.organisation_id, created["key"])
    assert other.get("/api/v1/projects/").status_code == 401


def test_admin_api__hostile_input__4xx_never_500(admin: Admin) -> None:
    project = admin.project()
    key = admin.environment(project["id"])["api_key"]
    feature = admin.feature(project["id"], "f")
    identity = admin.made(f"/api/v1/environments/{key}/identities/", {"identifier": "z"})
    options = f"/api/v1/projects/{project['id']}/features/{feature['id']}/mv-options/"
    traits = f"/api/v1/environments/{key}/identities/{identity['id']}/traits/"
    nested: dict[str, object] = {"type": "ALL"}
    for _ in range(50):
        nested = {"type": "ALL", "rules": [nested]}

    responses = [
        admin.get(f"/api/v1/environments/{key}/identities/?q=a%00b"),
        admin.get("/api/v1/environments/ab%00c/"),
        admin.get("/api/v1/audit/?search=%00&environment=a%00"),
        admin.get(f"/api/v1/environments/{key}/analytics/flags/?days=99999999999"),
        admin.post(options, {"value": {"a": 1}}),
        admin.post(options, {"type": "int", "integer_value": 2**40}),
        admin.post(traits, {"trait_key": "t", "trait_value": 2**100}),
        admin.post(f"/api/v1/projects/{project['id']}/segments/", {"name": "x", "rules": [nested]}),
        admin.post("/api/v1/features/feature-segments/update-priorities/", {"a": 1}),
        admin.post(f"/api/v1/environments/{key}/api-keys/", {"expires_at": "99999-01-01"}),
    ]

    # NUL in a query string or path is refused outright (issue 14), before any lookup.
    assert [r.status_code for r in responses] == [400, 400, 400, 400, 400, 400, 400, 400, 400, 400]
