"""Segments and segment overrides."""

from __future__ import annotations

from typing import Any

from ensign.engine.operators import OPERATOR_NAMES, VALUELESS_OPERATORS
from tests.admin.conftest import Admin

PLAN_IS_GOLD = [
    {
        "type": "ALL",
        "rules": [
            {
                "type": "ANY",
                "rules": [],
                "conditions": [{"operator": "EQUAL", "property": "plan", "value": "gold"}],
            }
        ],
        "conditions": [],
    }
]


def _segment(admin: Admin, project_id: int, name: str = "gold", **fields: Any) -> dict[str, Any]:
    body = {"name": name, "rules": PLAN_IS_GOLD, **fields}
    return admin.made(f"/api/v1/projects/{project_id}/segments/", body)


def test_segments__crud__round_trips_rules(admin: Admin) -> None:
    project = admin.project()
    segment = _segment(admin, project["id"])
    path = f"/api/v1/projects/{project['id']}/segments/{segment['id']}/"

    read = admin.get(path).json()
    updated = admin.patch(path, {"name": "golden", "description": "VIPs"}).json()
    deleted = admin.delete(path)

    assert read["rules"][0]["rules"][0]["conditions"] == [
        {"operator": "EQUAL", "property": "plan", "value": "gold"}
    ]
    assert updated["name"] == "golden"
    assert updated["description"] == "VIPs"
    assert deleted.status_code == 204
    assert admin.get(path).status_code == 404


def test_segments__unknown_operator__400_naming_field(admin: Admin) -> None:
    project = admin.project()
    rules = [{"type": "ALL", "conditions": [{"operator": "LIKE", "property": "a", "value": "b"}]}]

    response = admin.post(
        f"/api/v1/projects/{project['id']}/segments/", {"name": "s", "rules": rules}
    )

    assert response.status_code == 400
    assert response.json()["field"] == "rules.0.conditions.0.operator"


def test_segments__openapi__lists_the_engine_operators_as_an_enum(admin: Admin) -> None:
    schema = admin.client.get("/api/v1/openapi.json").json()

    condition = schema["components"]["schemas"]["ConditionIn"]

    assert condition["properties"]["operator"]["enum"] == list(OPERATOR_NAMES)


def test_segments__every_engine_operator__accepted(admin: Admin) -> None:
    project = admin.project()
    values = {"PERCENTAGE_SPLIT": "50", "MODULO": "2|0", "REGEX": "^a"}
    conditions = [
        {
            "operator": operator,
            "property": "p",
            "value": None if operator in VALUELESS_OPERATORS else values.get(operator, "1"),
        }
        for operator in OPERATOR_NAMES
    ]

    made = admin.made(
        f"/api/v1/projects/{project['id']}/segments/",
        {"name": "s", "rules": [{"type": "ANY", "conditions": conditions}]},
    )

    assert [c["operator"] for c in made["rules"][0]["conditions"]] == list(OPERATOR_NAMES)


def test_segments__unknown_rule_type__400_naming_field(admin: Admin) -> None:
    project = admin.project()
    rules = [{"type": "ALL", "rules": [{"type": "SOME"}]}]

    response = admin.post(
        f"/api/v1/projects/{project['id']}/segments/", {"name": "s", "rules": rules}
    )

    assert response.status_code == 400
    assert response.json()["field"] == "rules.0.rules.0.type"


def test_segments__bad_regex_and_modulo__400_naming_value(admin: Admin) -> None:
    project = admin.project()
    base = f"/api/v1/projects/{project['id']}/segments/"

    def condition(operator: str, value: str) -> dict[str, Any]:
        return {
            "name": "s",
            "rules": [
                {
                    "type": "ALL",
                    "conditions": [{"operator": operator, "property": "p", "value": value}],
                }
            ],
        }

    regex = admin.post(base, condition("REGEX", "(unclosed"))
    # Valid, but `regex` expands counted repeats: it would take seconds to compile.
    costly = admin.post(base, condition("REGEX", "a{1000000}"))
    modulo = admin.post(base, condition("MODULO", "three"))

    assert regex.status_code == 400
    assert regex.json()["field"] == "rules.0.conditions.0.value"
    assert costly.status_code == 400
    assert costly.json()["field"] == "rules.0.conditions.0.value"
    assert "repeats too much" in costly.json()["detail"]
    assert modulo.status_code == 400
    assert modulo.json()["field"] == "rules.0.conditions.0.value"


def test_segments__numeric_condition_value__stored_as_text(admin: Admin) -> None:
    project = admin.project()
    rules = [
        {
            "type": "ALL",
            "conditions": [{"operator": "GREATER_THAN", "property": "age", "value": 18}],
        }
    ]

    segment = admin.made(
        f"/api/v1/projects/{project['id']}/segments/", {"name": "adults", "rules": rules}
    )

    assert segment["rules"][0]["conditions"][0]["value"] == "18"


def test_segment_overrides__priorities__appended_then_reordered(admin: Admin) -> None:
    project = admin.project()
    environment = admin.environment(project["id"])
    feature = admin.feature(project["id"], "banner")
    first = _segment(admin, project["id"], "first")
    second = _segment(admin, project["id"], "second")
    path = f"/api/v1/environments/{environment['api_key']}/features/{feature['id']}/create-segment-override/"

    a = admin.made(path, {"segment": first["id"], "enabled": True, "feature_state_value": "a"})
    b = admin.made(path, {"segment": second["id"], "enabled": True, "feature_state_value": "b"})
    duplicate = admin.post(path, {"segment": first["id"], "enabled": True})
    reordered = admin.post(
        "/api/v1/features/feature-segments/update-priorities/",
        [{"id": a["id"], "priority": 1}, {"id": b["id"], "priority": 0}],
    )
    listed = admin.get(
        f"/api/v1/features/feature-segments/?environment={environment['id']}&feature={feature['id']}"
    ).json()

    assert (a["priority"], b["priority"]) == (0, 1)
    assert a["feature_segment"] == a["id"]
    assert duplicate.status_code == 409
    assert reordered.status_code == 200
    assert [s["segment"] for s in listed["results"]] == [second["id"], first["id"]]
    document = admin.get(f"/api/v1/environments/{environment['api_key']}/document/").json()
    priorities = {
        s["name"]: s["feature_states"][0]["feature_segment"]["priority"]
        for s in document["project"]["segments"]
    }
    assert priorities == {"first": 1, "second": 0}


def test_segment_overrides__identity_in_segment__gets_override(admin: Admin) -> None:
    project = admin.project()
    environment = admin.environment(project["id"])
    feature = admin.feature(project["id"], "banner", initial_value="plain")
    segment = _segment(admin, project["id"])
    path = f"/api/v1/environments/{environment['api_key']}/features/{feature['id']}/create-segment-override/"

    admin.made(path, {"segment": segment["id"], "enabled": True, "feature_state_value": "shiny"})
    response = admin.client.post(
        "/api/v1/identities/",
        headers={"X-Environment-Key": environment["api_key"]},
        json={"identifier": "ann", "traits": [{"trait_key": "plan", "trait_value": "gold"}]},
    )

    flags = {f["feature"]["name"]: f for f in response.json()["flags"]}
    assert flags["banner"]["feature_state_value"] == "shiny"
    assert flags["banner"]["enabled"] is True


def test_segment_overrides__recreated__keeps_hashing_seed(admin: Admin) -> None:
    project = admin.project()
    environment = admin.environment(project["id"])
    feature = admin.feature(project["id"], "banner")
    segment = _segment(admin, project["id"])
    path = f"/api/v1/environments/{environment['api_key']}/features/{feature['id']}/create-segment-override/"
    document_path = f"/api/v1/environments/{environment['api_key']}/document/"

    first = admin.made(path, {"segment": segment["id"], "enabled": True})
    seed = admin.get(document_path).json()["project"]["segments"][0]["feature_states"][0][
        "django_id"
    ]
    assert admin.delete(f"/api/v1/features/featurestates/{first['id']}/").status_code == 204
    admin.feature(project["id"], "another")  # takes the freed id, on SQLite
    second = admin.made(path, {"segment": segment["id"], "enabled": True})
    again = admin.get(document_path).json()["project"]["segments"][0]["feature_states"][0][
        "django_id"
    ]

    assert second["id"] != first["id"]
    assert seed == first["id"]
    assert again == seed


def test_segment_overrides__update_via_featurestates__served(admin: Admin) -> None:
    project = admin.project()
    environment = admin.environment(project["id"])
    feature = admin.feature(project["id"], "banner")
    segment = _segment(admin, project["id"])
    path = f"/api/v1/environments/{environment['api_key']}/features/{feature['id']}/create-segment-override/"
    override = admin.made(path, {"segment": segment["id"], "enabled": False})

    updated = admin.patch(
        f"/api/v1/features/featurestates/{override['id']}/", {"feature_state_value": 5}
    ).json()

    assert updated["feature_state_value"] == 5
    assert updated["segment"] == segment["id"]


def test_segment_overrides__unknown_segment__400_naming_field(admin: Admin) -> None:
    project = admin.project()
    environment = admin.environment(project["id"])
    feature = admin.feature(project["id"], "banner")
    path = f"/api/v1/environments/{environment['api_key']}/features/{feature['id']}/create-segment-override/"

    response = admin.post(path, {"segment": 4242, "enabled": True})

    assert response.status_code == 400
    assert response.json()["field"] == "segment"


def test_feature_states__delete_default__400(admin: Admin) -> None:
    project = admin.project()
    environment = admin.environment(project["id"])
    feature = admin.feature(project["id"], "banner")
    states = admin.get(f"/api/v1/environments/{environment['api_key']}/featurestates/").json()
    assert states["results"][0]["feature"] == feature["id"]

    response = admin.delete(f"/api/v1/features/featurestates/{states['results'][0]['id']}/")

    assert response.status_code == 400
