"""The environment feature-state list's filters (`feature`, `feature_name`, `anyIdentity`), as
scripts written for Flagsmith use them, and a project's environments."""

from __future__ import annotations

from typing import Any

from tests.admin.conftest import Admin, World

GOLD = [
    {
        "type": "ALL",
        "rules": [],
        "conditions": [{"operator": "EQUAL", "property": "plan", "value": "gold"}],
    }
]


def _states(admin: Admin, api_key: str, query: str = "") -> dict[str, Any]:
    response = admin.get(f"/api/v1/environments/{api_key}/featurestates/{query}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _with_overrides(admin: Admin) -> dict[str, Any]:
    """Three features, a segment override and an identity override of `banner`."""
    project = admin.project()
    environment = admin.environment(project["id"])
    key = environment["api_key"]
    checkout = admin.feature(project["id"], "checkout", initial_value="old")
    banner = admin.feature(project["id"], "banner", initial_value="plain")
    capital = admin.feature(project["id"], "Banner", initial_value="capital")
    segment = admin.made(
        f"/api/v1/projects/{project['id']}/segments/", {"name": "g", "rules": GOLD}
    )
    segment_override = admin.made(
        f"/api/v1/environments/{key}/features/{banner['id']}/create-segment-override/",
        {"segment": segment["id"], "enabled": True, "feature_state_value": "gold"},
    )
    identity = admin.made(f"/api/v1/environments/{key}/identities/", {"identifier": "ann"})
    identity_override = admin.made(
        f"/api/v1/environments/{key}/identities/{identity['id']}/featurestates/",
        {"feature": banner["id"], "enabled": True, "feature_state_value": "vip"},
    )
    return {
        "project": project,
        "key": key,
        "checkout": checkout,
        "banner": banner,
        "capital": capital,
        "segment_override": segment_override,
        "identity_override": identity_override,
    }


def test_featurestates__find_by_name_then_patch_first__changes_that_flag(admin: Admin) -> None:
    # Given: several flags, the named one created after another
    world = _with_overrides(admin)
    key = world["key"]

    # When: the usual script finds the state by name and PATCHes the first result
    found = _states(admin, key, "?feature_name=banner")
    response = admin.patch(
        f"/api/v1/environments/{key}/featurestates/{found['results'][0]['id']}/",
        {"enabled": True, "feature_state_value": "new"},
    )

    # Then: that flag changed for the SDK, and no other flag did
    assert response.status_code == 200, response.text
    flags = admin.sdk_flags(key)
    assert (flags["banner"]["enabled"], flags["banner"]["feature_state_value"]) == (True, "new")
    assert (flags["checkout"]["enabled"], flags["checkout"]["feature_state_value"]) == (
        False,
        "old",
    )
    assert flags["Banner"]["feature_state_value"] == "capital"


def test_featurestates__feature_name__the_default_state_of_exactly_that_name(
    admin: Admin,
) -> None:
    world = _with_overrides(admin)
    key = world["key"]

    lower = _states(admin, key, "?feature_name=banner")
    upper = _states(admin, key, "?feature_name=Banner")
    unknown = _states(admin, key, "?feature_name=BANNER")
    empty = _states(admin, key, "?feature_name=")

    assert lower["count"] == 1
    assert lower["results"][0]["feature"] == world["banner"]["id"]
    assert lower["results"][0]["identity"] is None
    assert lower["results"][0]["feature_segment"] is None
    assert [s["feature"] for s in upper["results"]] == [world["capital"]["id"]]
    assert unknown == {"count": 0, "next": None, "previous": None, "results": []}
    assert empty["count"] == 0


def test_featurestates__feature_name_of_another_project__nothing(admin: Admin) -> None:
    world = _with_overrides(admin)
    other_project = admin.project("Other")
    admin.feature(other_project["id"], "elsewhere")

    assert _states(admin, world["key"], "?feature_name=elsewhere")["count"] == 0


def test_featurestates__feature_name_with_nul__400_naming_filter(admin: Admin) -> None:
    world = _with_overrides(admin)

    response = admin.get(f"/api/v1/environments/{world['key']}/featurestates/?feature_name=a%00b")

    assert response.status_code == 400
    assert response.json()["field"] == "feature_name"


def test_featurestates__feature_id__that_features_default_state(admin: Admin) -> None:
    world = _with_overrides(admin)
    key = world["key"]
    checkout_id, banner_id = world["checkout"]["id"], world["banner"]["id"]

    by_id = _states(admin, key, f"?feature={checkout_id}")
    both = _states(admin, key, f"?feature={banner_id}&feature_name=banner")
    contradicting = _states(admin, key, f"?feature={checkout_id}&feature_name=banner")

    assert [s["feature"] for s in by_id["results"]] == [checkout_id]
    assert [s["feature"] for s in both["results"]] == [banner_id]
    assert contradicting["count"] == 0


def test_featurestates__no_filter__only_environment_defaults(admin: Admin) -> None:
    world = _with_overrides(admin)

    listed = _states(admin, world["key"])

    ids = {s["id"] for s in listed["results"]}
    assert listed["count"] == 3
    assert world["segment_override"]["id"] not in ids
    assert world["identity_override"]["id"] not in ids
    assert all(s["identity"] is None and s["segment"] is None for s in listed["results"])


def test_featurestates__any_identity__only_identity_overrides(admin: Admin) -> None:
    world = _with_overrides(admin)
    key = world["key"]
    override_id = world["identity_override"]["id"]

    bare = _states(admin, key, "?anyIdentity")
    valued = _states(admin, key, "?anyIdentity=1")
    false_too = _states(admin, key, "?anyIdentity=false")
    named = _states(admin, key, "?anyIdentity=1&feature_name=banner")
    other_name = _states(admin, key, "?anyIdentity=1&feature_name=checkout")

    for listed in (bare, valued, false_too, named):
        assert [s["id"] for s in listed["results"]] == [override_id]
        assert listed["results"][0]["feature_state_value"] == "vip"
    assert other_name["count"] == 0


def test_project_environments__lists_that_projects_environments_paginated(admin: Admin) -> None:
    project = admin.project("Shop")
    other_project = admin.project("Blog")
    names = ["Production", "Staging", "Development"]
    for name in names:
        admin.environment(project["id"], name)
    admin.environment(other_project["id"], "Elsewhere")
    path = f"/api/v1/projects/{project['id']}/environments/"

    everything = admin.get(path).json()
    first = admin.get(path + "?page_size=2").json()
    second = admin.get(path + "?page_size=2&page=2").json()
    beyond = admin.get(path + "?page_size=2&page=3")

    assert everything["count"] == 3
    assert [e["name"] for e in everything["results"]] == names
    assert {e["project"] for e in everything["results"]} == {project["id"]}
    assert [e["name"] for e in first["results"]] == names[:2]
    assert first["next"] is not None and "page=2" in first["next"]
    assert [e["name"] for e in second["results"]] == names[2:]
    assert second["next"] is None and second["previous"] is not None
    assert beyond.status_code == 404


def test_project_environments__another_organisations_or_unknown_project__404(
    world: World, admin: Admin
) -> None:
    project = admin.project()
    admin.environment(project["id"])
    other = world.new_organisation("Other")

    theirs = other.get(f"/api/v1/projects/{project['id']}/environments/")
    unknown = admin.get("/api/v1/projects/999999/environments/")
    huge = admin.get("/api/v1/projects/99999999999999999999999/environments/")

    assert theirs.status_code == 404
    assert "results" not in theirs.json()
    assert unknown.status_code == 404
    assert huge.status_code == 404


def test_openapi__documents_the_filters_and_project_environments(admin: Admin) -> None:
    schema = admin.client.get("/api/v1/openapi.json").json()

    operation = schema["paths"]["/api/v1/environments/{api_key}/featurestates/"]["get"]
    assert {"feature", "feature_name", "anyIdentity"} <= {
        p["name"] for p in operation["parameters"]
    }
    assert "get" in schema["paths"]["/api/v1/projects/{project_id}/environments/"]
