"""Identities, traits and identity overrides."""

from __future__ import annotations

from tests.admin.conftest import Admin


def test_identities__create_search_delete__round_trips(admin: Admin) -> None:
    project = admin.project()
    environment = admin.environment(project["id"])
    base = f"/api/v1/environments/{environment['api_key']}/identities/"

    ann = admin.made(base, {"identifier": "ann@example.com"})
    admin.made(base, {"identifier": "bob@example.com"})
    duplicate = admin.post(base, {"identifier": "ann@example.com"})
    searched = admin.get(base + "?q=ANN").json()
    deleted = admin.delete(f"{base}{ann['id']}/")

    assert duplicate.status_code == 409
    assert duplicate.json()["field"] == "identifier"
    assert [i["identifier"] for i in searched["results"]] == ["ann@example.com"]
    assert deleted.status_code == 204
    assert admin.get(f"{base}{ann['id']}/").status_code == 404


def test_traits__set_update_delete__typed(admin: Admin) -> None:
    project = admin.project()
    environment = admin.environment(project["id"])
    identity = admin.made(
        f"/api/v1/environments/{environment['api_key']}/identities/", {"identifier": "ann"}
    )
    base = f"/api/v1/environments/{environment['api_key']}/identities/{identity['id']}/traits/"

    created = admin.made(base, {"trait_key": "age", "trait_value": 30})
    updated = admin.made(base, {"trait_key": "age", "trait_value": "31"})
    listed = admin.get(base).json()
    deleted = admin.delete(f"{base}{created['id']}/")

    assert created["trait_value"] == 30
    assert updated["id"] == created["id"]
    assert updated["trait_value"] == "31"
    assert [(t["trait_key"], t["trait_value"]) for t in listed["results"]] == [("age", "31")]
    assert deleted.status_code == 204
    assert admin.get(base).json()["results"] == []


def test_identity_overrides__create_update_delete__sdk_follows(admin: Admin) -> None:
    project = admin.project()
    environment = admin.environment(project["id"])
    feature = admin.feature(project["id"], "banner", initial_value="plain")
    identity = admin.made(
        f"/api/v1/environments/{environment['api_key']}/identities/", {"identifier": "ann"}
    )
    base = (
        f"/api/v1/environments/{environment['api_key']}/identities/{identity['id']}/featurestates/"
    )

    def served() -> object:
        response = admin.client.get(
            "/api/v1/identities/?identifier=ann",
            headers={"X-Environment-Key": environment["api_key"]},
        )
        flags = {f["feature"]["name"]: f for f in response.json()["flags"]}
        return flags["banner"]["enabled"], flags["banner"]["feature_state_value"]

    override = admin.made(
        base, {"feature": feature["id"], "enabled": True, "feature_state_value": "vip"}
    )
    after_create = served()
    duplicate = admin.post(base, {"feature": feature["id"], "enabled": True})
    admin.patch(f"{base}{override['id']}/", {"feature_state_value": 7})
    after_update = served()
    listed = admin.get(base).json()
    deleted = admin.delete(f"{base}{override['id']}/")
    after_delete = served()

    assert override["identity"] == identity["id"]
    assert after_create == (True, "vip")
    assert duplicate.status_code == 409
    assert after_update == (True, 7)
    assert [s["id"] for s in listed["results"]] == [override["id"]]
    assert deleted.status_code == 204
    assert after_delete == (False, "plain")


def test_identity_overrides__feature_of_another_project__400(admin: Admin) -> None:
    project = admin.project()
    other_project = admin.project("Other")
    environment = admin.environment(project["id"])
    feature = admin.feature(other_project["id"], "elsewhere")
    identity = admin.made(
        f"/api/v1/environments/{environment['api_key']}/identities/", {"identifier": "ann"}
    )

    response = admin.post(
        f"/api/v1/environments/{environment['api_key']}/identities/{identity['id']}/featurestates/",
        {"feature": feature["id"], "enabled": True},
    )

    assert response.status_code == 400
    assert response.json()["field"] == "feature"
