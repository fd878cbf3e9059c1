"""An imported document meets the admin API's limits, or nothing of it is stored."""

from __future__ import annotations

from typing import Any

from tests.admin.conftest import Admin
from tests.documents import standard_document


def nested_rules(levels: int) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    for _ in range(levels):
        rules = [{"type": "ALL", "conditions": [], "rules": rules}]
    return rules


def project_names(admin: Admin) -> list[str]:
    body = admin.get("/api/v1/projects/").json()
    return [p["name"] for p in (body["results"] if isinstance(body, dict) else body)]


def imported(admin: Admin, document: dict[str, Any]) -> Any:
    return admin.client.post(
        "/api/v1/projects/import/?project=Imported", headers=admin.headers, json=document
    )


def test_import__rules_nested_100_deep__400_naming_the_path_and_nothing_stored(
    admin: Admin,
) -> None:
    # 100 levels is about 200 levels of JSON, within the limit on any body's nesting.
    document = standard_document()
    document["project"]["segments"][1]["rules"] = nested_rules(100)
    response = imported(admin, document)
    assert response.status_code == 400, response.text
    field = response.json()["field"]
    assert field.startswith("project.segments[1].rules[0].rules[0]")
    assert "nest too deeply" in response.json()["detail"]
    assert "Imported" not in project_names(admin)
    flags = admin.client.get("/api/v1/flags/", headers={"X-Environment-Key": document["api_key"]})
    assert flags.status_code in (401, 403)


def test_import__rules_ten_deep__imported(admin: Admin) -> None:
    document = standard_document()
    document["project"]["segments"][1]["rules"] = nested_rules(10)
    assert imported(admin, document).status_code == 201


def test_import__enabled_is_banana__400_must_be_a_boolean(admin: Admin) -> None:
    document = standard_document()
    document["feature_states"][3]["enabled"] = "banana"
    response = imported(admin, document)
    assert response.status_code == 400
    assert response.json()["detail"] == "feature_states[3].enabled: must be a boolean."
    assert "Imported" not in project_names(admin)


def test_import__too_many_conditions__400_naming_the_rule(admin: Admin) -> None:
    document = standard_document()
    rule = document["project"]["segments"][0]["rules"][0]["rules"][0]
    rule["conditions"] = rule["conditions"] * 1001
    response = imported(admin, document)
    assert response.status_code == 400
    assert response.json()["field"] == "project.segments[0].rules[0].rules[0].conditions"


def test_import__feature_name_too_long__400(admin: Admin) -> None:
    document = standard_document()
    document["feature_states"][0]["feature"]["name"] = "f" * 2001
    response = imported(admin, document)
    assert response.status_code == 400
    assert response.json()["field"] == "feature_states[0].feature.name"


def test_import__value_over_the_flag_value_limit__400(admin: Admin) -> None:
    document = standard_document()
    document["feature_states"][0]["feature_state_value"] = "x" * 20_001
    response = imported(admin, document)
    assert response.status_code == 400
    assert response.json()["field"] == "feature_states[0].feature_state_value"


def test_import__unknown_operator__400(admin: Admin) -> None:
    document = standard_document()
    document["project"]["segments"][0]["rules"][0]["rules"][0]["conditions"][0]["operator"] = "X"
    response = imported(admin, document)
    assert response.status_code == 400
    assert (
        response.json()["field"] == "project.segments[0].rules[0].rules[0].conditions[0].operator"
    )


def test_import__regex_too_costly_to_compile__400_naming_the_value(admin: Admin) -> None:
    document = standard_document()
    condition = document["project"]["segments"][0]["rules"][0]["rules"][0]["conditions"][0]
    condition.update(operator="REGEX", value="(a{1000}){1000}")
    response = imported(admin, document)
    assert response.status_code == 400
    assert response.json()["field"] == ("project.segments[0].rules[0].rules[0].conditions[0].value")
    assert "repeats too much" in response.json()["detail"]
    assert "Imported" not in project_names(admin)
