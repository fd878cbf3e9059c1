"""Features, multivariate options, tags and environment feature states."""

from __future__ import annotations

from typing import Any

from tests.admin.conftest import Admin


def _setup(admin: Admin) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    project = admin.project()
    first = admin.environment(project["id"], "Production")
    second = admin.environment(project["id"], "Staging")
    return project, first, second


def _default_state(admin: Admin, api_key: str, feature_id: int) -> dict[str, Any]:
    states = admin.get(f"/api/v1/environments/{api_key}/featurestates/?feature={feature_id}").json()
    assert states["count"] == 1
    result: dict[str, Any] = states["results"][0]
    return result


def test_features__create__adds_default_state_in_every_environment(admin: Admin) -> None:
    project, first, second = _setup(admin)

    feature = admin.feature(project["id"], "banner", default_enabled=True, initial_value="42")

    assert feature["type"] == "STANDARD"
    for environment in (first, second):
        state = _default_state(admin, environment["api_key"], feature["id"])
        assert state["enabled"] is True
        assert state["feature_state_value"] == 42
        flag = admin.sdk_flags(environment["api_key"])["banner"]
        assert flag["enabled"] is True
        assert flag["feature_state_value"] == 42


def test_features__duplicate_name__conflict_naming_field(admin: Admin) -> None:
    project, _, _ = _setup(admin)
    admin.feature(project["id"], "banner")

    response = admin.post(f"/api/v1/projects/{project['id']}/features/", {"name": "banner"})

    assert response.status_code in (400, 409)
    assert response.json()["field"] == "name"


def test_features__update_and_delete__sdk_follows(admin: Admin) -> None:
    project, first, _ = _setup(admin)
    feature = admin.feature(project["id"], "banner")
    path = f"/api/v1/projects/{project['id']}/features/{feature['id']}/"

    updated = admin.patch(path, {"name": "hero", "description": "Top banner"}).json()
    flags_after_update = admin.sdk_flags(first["api_key"])
    deleted = admin.delete(path)

    assert updated["name"] == "hero"
    assert flags_after_update["hero"]["feature"]["description"] == "Top banner"
    assert deleted.status_code == 204
    assert admin.sdk_flags(first["api_key"]) == {}


def test_features__search_and_tag_filters__narrow_the_list(admin: Admin) -> None:
    project, _, _ = _setup(admin)
    tag = admin.made(f"/api/v1/projects/{project['id']}/tags/", {"label": "beta"})
    admin.feature(project["id"], "new_checkout", tags=[tag["id"]])
    admin.feature(project["id"], "old_checkout")
    admin.feature(project["id"], "banner")
    base = f"/api/v1/projects/{project['id']}/features/"

    searched = admin.get(base + "?search=CHECKOUT").json()
    tagged = admin.get(base + f"?tags={tag['id']}").json()

    assert {f["name"] for f in searched["results"]} == {"new_checkout", "old_checkout"}
    assert [f["name"] for f in tagged["results"]] == ["new_checkout"]
    assert tagged["results"][0]["tags"] == [tag["id"]]
    assert admin.get(base + "?tags=abc").status_code == 400


def test_features__unknown_tag__400_naming_field(admin: Admin) -> None:
    project, _, _ = _setup(admin)

    response = admin.post(f"/api/v1/projects/{project['id']}/features/", {"name": "x", "tags": [9]})

    assert response.status_code == 400
    assert response.json()["field"] == "tags"


def test_tags__crud__round_trips(admin: Admin) -> None:
    project, _, _ = _setup(admin)
    base = f"/api/v1/projects/{project['id']}/tags/"

    tag = admin.made(base, {"label": "beta", "color": "#ff0000"})
    duplicate = admin.post(base, {"label": "beta"})
    updated = admin.put(f"{base}{tag['id']}/", {"label": "gamma"}).json()
    deleted = admin.delete(f"{base}{tag['id']}/")

    assert duplicate.status_code == 409
    assert duplicate.json()["field"] == "label"
    assert updated["label"] == "gamma"
    assert deleted.status_code == 204
    assert admin.get(base).json()["count"] == 0


def test_mv_options__create__adds_values_to_every_default_state(admin: Admin) -> None:
    project, first, second = _setup(admin)
    feature = admin.feature(project["id"], "colour", initial_value="red")
    base = f"/api/v1/projects/{project['id']}/features/{feature['id']}/mv-options/"

    blue = admin.made(base, {"value": "blue", "key": "b", "default_percentage_allocation": 30})
    number = admin.made(
        base, {"type": "int", "integer_value": 7, "default_percentage_allocation": 20}
    )

    assert blue["value"] == "blue"
    assert number["value"] == 7
    assert number["type"] == "int"
    got = admin.get(f"/api/v1/projects/{project['id']}/features/{feature['id']}/").json()
    assert got["type"] == "MULTIVARIATE"
    for environment in (first, second):
        state = _default_state(admin, environment["api_key"], feature["id"])
        allocations = {
            mv["multivariate_feature_option"]: mv["percentage_allocation"]
            for mv in state["multivariate_feature_state_values"]
        }
        assert allocations == {blue["id"]: 30, number["id"]: 20}
    document = admin.get(f"/api/v1/environments/{first['api_key']}/document/").json()
    mv_ids = [mv["id"] for mv in document["feature_states"][0]["multivariate_feature_state_values"]]
    assert mv_ids == [blue["id"], number["id"]]


def test_mv_options__allocations_over_100__400(admin: Admin) -> None:
    project, _, _ = _setup(admin)
    feature = admin.feature(project["id"], "colour")
    base = f"/api/v1/projects/{project['id']}/features/{feature['id']}/mv-options/"
    admin.made(base, {"value": "a", "default_percentage_allocation": 60})

    response = admin.post(base, {"value": "b", "default_percentage_allocation": 50})
    out_of_range = admin.post(base, {"value": "c", "default_percentage_allocation": 150})

    assert response.status_code == 400
    assert response.json()["field"] == "default_percentage_allocation"
    assert out_of_range.status_code == 400
    assert out_of_range.json()["field"] == "default_percentage_allocation"


def test_mv_options__update_and_delete__round_trips(admin: Admin) -> None:
    project, first, _ = _setup(admin)
    feature = admin.feature(project["id"], "colour")
    base = f"/api/v1/projects/{project['id']}/features/{feature['id']}/mv-options/"
    option = admin.made(base, {"value": "a", "default_percentage_allocation": 10})

    updated = admin.patch(f"{base}{option['id']}/", {"value": True, "key": "on"}).json()
    deleted = admin.delete(f"{base}{option['id']}/")

    assert updated["value"] is True
    assert updated["type"] == "bool"
    assert updated["key"] == "on"
    assert deleted.status_code == 204
    state = _default_state(admin, first["api_key"], feature["id"])
    assert state["multivariate_feature_state_values"] == []


def test_feature_states__update__typed_and_served_at_once(admin: Admin) -> None:
    project, first, _ = _setup(admin)
    feature = admin.feature(project["id"], "limit")
    state = _default_state(admin, first["api_key"], feature["id"])
    path = f"/api/v1/environments/{first['api_key']}/featurestates/{state['id']}/"

    response = admin.patch(path, {"enabled": True, "feature_state_value": 12.5})

    assert response.status_code == 200
    assert response.json()["feature_state_value"] == "12.5"
    flag = admin.sdk_flags(first["api_key"])["limit"]
    assert flag["enabled"] is True
    assert flag["feature_state_value"] == "12.5"


def test_feature_states__bad_values__400_naming_field(admin: Admin) -> None:
    project, first, _ = _setup(admin)
    feature = admin.feature(project["id"], "limit")
    state = _default_state(admin, first["api_key"], feature["id"])
    path = f"/api/v1/environments/{first['api_key']}/featurestates/{state['id']}/"

    too_big = admin.patch(path, {"feature_state_value": 2**40})
    a_list = admin.patch(path, {"feature_state_value": [1, 2]})
    too_long = admin.patch(path, {"feature_state_value": "x" * 30_000})
    not_bool = admin.patch(path, {"enabled": "maybe"})

    for response in (too_big, a_list, too_long):
        assert response.status_code == 400
        assert response.json()["field"] == "feature_state_value"
    assert not_bool.status_code == 400
    assert not_bool.json()["field"] == "enabled"


def test_feature_states__mv_allocations__validated_and_replaced(admin: Admin) -> None:
    project, first, _ = _setup(admin)
    feature = admin.feature(project["id"], "colour")
    base = f"/api/v1/projects/{project['id']}/features/{feature['id']}/mv-options/"
    a = admin.made(base, {"value": "a", "default_percentage_allocation": 10})
    b = admin.made(base, {"value": "b", "default_percentage_allocation": 10})
    state = _default_state(admin, first["api_key"], feature["id"])
    path = f"/api/v1/environments/{first['api_key']}/featurestates/{state['id']}/"

    over = admin.patch(
        path,
        {
            "multivariate_feature_state_values": [
                {"multivariate_feature_option": a["id"], "percentage_allocation": 70},
                {"multivariate_feature_option": b["id"], "percentage_allocation": 40},
            ]
        },
    )
    ok = admin.put(
        path,
        {
            "enabled": True,
            "feature_state_value": "control",
            "multivariate_feature_state_values": [
                {"multivariate_feature_option": a["id"], "percentage_allocation": 100}
            ],
        },
    )

    assert over.status_code == 400
    assert over.json()["field"] == "multivariate_feature_state_values"
    assert ok.status_code == 200
    assert [
        (mv["multivariate_feature_option"], mv["percentage_allocation"])
        for mv in ok.json()["multivariate_feature_state_values"]
    ] == [(a["id"], 100)]


def test_mv_weights__experiment_running__changes_refused_naming_the_field(admin: Admin) -> None:
    # Given a multivariate feature with an experiment running on it in Production only
    project, first, second = _setup(admin)
    feature = admin.feature(project["id"], "colour")
    base = f"/api/v1/projects/{project['id']}/features/{feature['id']}/mv-options/"
    a = admin.made(base, {"value": "a", "default_percentage_allocation": 30})
    b = admin.made(base, {"value": "b", "default_percentage_allocation": 30})
    experiment = admin.made(
        f"/api/v1/environments/{first['api_key']}/experiments/",
        {"name": "Colour test", "feature": feature["id"]},
    )

    def weights(api_key: str, a_weight: float, b_weight: float) -> Any:
        state = _default_state(admin, api_key, feature["id"])
        return admin.patch(
            f"/api/v1/environments/{api_key}/featurestates/{state['id']}/",
            {
                "multivariate_feature_state_values": [
                    {"multivariate_feature_option": a["id"], "percentage_allocation": a_weight},
                    {"multivariate_feature_option": b["id"], "percentage_allocation": b_weight},
                ]
            },
        )

    # When its weights are changed there, an option with a weight is added or one deleted
    changed = weights(first["api_key"], 50, 10)
    unchanged = weights(first["api_key"], 30, 30)
    added = admin.post(base, {"value": "c", "default_percentage_allocation": 10})
    added_unweighted = admin.post(base, {"value": "d", "default_percentage_allocation": 0})
    deleted = admin.delete(f"{base}{a['id']}/")
    elsewhere = weights(second["api_key"], 50, 10)

    # Then each change of the running experiment's weights is a 400 naming the field
    assert changed.status_code == 400
    assert changed.json()["field"] == "multivariate_feature_state_values"
    assert "'Colour test'" in changed.json()["detail"]
    assert added.status_code == 400
    assert added.json()["field"] == "default_percentage_allocation"
    assert deleted.status_code == 400
    assert deleted.json()["field"] == "option"
    # and what leaves them as they are, or another environment's, is not
    assert unchanged.status_code == 200
    assert added_unweighted.status_code == 201
    assert elsewhere.status_code == 200
    state = _default_state(admin, first["api_key"], feature["id"])
    assert {
        mv["multivariate_feature_option"]: mv["percentage_allocation"]
        for mv in state["multivariate_feature_state_values"]
        if mv["percentage_allocation"]
    } == {a["id"]: 30, b["id"]: 30}
    # Once the experiment is stopped, the weights may change
    stop = admin.patch(
        f"/api/v1/environments/{first['api_key']}/experiments/{experiment['id']}/",
        {"running": False},
    )
    assert stop.status_code == 200
    assert weights(first["api_key"], 50, 10).status_code == 200
