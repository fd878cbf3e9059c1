"""The audit log, pagination and evaluation counts."""

from __future__ import annotations

from tests.admin.conftest import Admin, World


def test_audit__update__records_before_and_after(admin: Admin) -> None:
    project = admin.project("Shop")
    admin.patch(f"/api/v1/projects/{project['id']}/", {"name": "Store"})

    entries = admin.get(f"/api/v1/projects/{project['id']}/audit/").json()["results"]

    update = entries[0]
    assert update["action"] == "UPDATED"
    assert update["related_object_type"] == "project"
    assert update["author"] == "api-key:tests"
    assert update["before"]["name"] == "Shop"
    assert update["after"]["name"] == "Store"
    assert update["created_date"].endswith("Z")


def test_audit__filters__by_environment_and_search(admin: Admin) -> None:
    project = admin.project()
    first = admin.environment(project["id"], "Production")
    admin.environment(project["id"], "Staging")
    feature = admin.feature(project["id"], "banner")
    states = admin.get(f"/api/v1/environments/{first['api_key']}/featurestates/").json()
    admin.patch(
        f"/api/v1/environments/{first['api_key']}/featurestates/{states['results'][0]['id']}/",
        {"enabled": True},
    )

    by_environment = admin.get(f"/api/v1/audit/?environment={first['api_key']}").json()
    by_search = admin.get("/api/v1/audit/?search=staging").json()
    by_project = admin.get(f"/api/v1/audit/?project={project['id']}").json()

    assert {e["related_object_type"] for e in by_environment["results"]} == {
        "environment",
        "feature_state",
    }
    state_entry = next(
        e for e in by_environment["results"] if e["related_object_type"] == "feature_state"
    )
    assert state_entry["before"]["enabled"] is False
    assert state_entry["after"]["enabled"] is True
    assert state_entry["before"]["feature_id"] == feature["id"]
    assert [e["log"] for e in by_search["results"]] == ["Environment created: Staging"]
    assert by_project["count"] == 5


def test_audit__another_organisation__sees_nothing(world: World, admin: Admin) -> None:
    admin.project()
    other = world.new_organisation("Other")

    assert other.get("/api/v1/audit/").json()["count"] == 0


def test_pagination__page_size__pages_with_links(admin: Admin) -> None:
    for index in range(5):
        admin.project(f"p{index}")

    first = admin.get("/api/v1/projects/?page_size=2").json()
    last = admin.get("/api/v1/projects/?page_size=2&page=3").json()
    beyond = admin.get("/api/v1/projects/?page_size=2&page=4")
    bad = admin.get("/api/v1/projects/?page=0")

    assert first["count"] == 5
    assert [p["name"] for p in first["results"]] == ["p0", "p1"]
    assert first["previous"] is None
    assert "page=2" in first["next"]
    assert [p["name"] for p in last["results"]] == ["p4"]
    assert last["next"] is None
    assert "page=2" in last["previous"]
    assert beyond.status_code == 404
    assert bad.status_code == 400


def test_pagination__default_page_size__ten(admin: Admin) -> None:
    for index in range(12):
        admin.project(f"p{index}")

    body = admin.get("/api/v1/projects/").json()

    assert len(body["results"]) == 10
    assert body["count"] == 12


def test_analytics__sdk_reports__counted_per_feature(admin: Admin) -> None:
    project = admin.project()
    environment = admin.environment(project["id"])
    admin.feature(project["id"], "banner")
    sent = admin.client.post(
        "/api/v1/analytics/flags/",
        headers={"X-Environment-Key": environment["api_key"]},
        json={"banner": 3},
    )
    assert sent.status_code == 200

    body = admin.get(
        f"/api/v1/environments/{environment['api_key']}/analytics/flags/?days=7"
    ).json()

    assert body["totals"] == {"banner": 3}
    assert body["results"][0]["count"] == 3
