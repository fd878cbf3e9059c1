"""The admin API and the import refuse NUL characters and unpaired surrogates with a 400 naming
the field, in bodies, query strings and path segments, and store nothing (issue 14, item 3)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from ensign.errors import InvalidInput
from ensign.services.importing import import_document
from ensign.storage.models import Identity, Project
from ensign.web.deps import AppState
from tests.admin.conftest import Admin
from tests.conftest import Organisation
from tests.documents import standard_document
from tests.units import unit_session


def _projects(state: AppState) -> int:
    with state.units.read() as unit, unit_session(unit) as session:
        return int(session.scalar(select(func.count()).select_from(Project)) or 0)


def test_admin_body__nul__400_naming_the_field(admin: Admin, state: AppState) -> None:
    response = admin.post("/api/v1/projects/", {"name": "Shop\x00"})
    assert response.status_code == 400
    assert response.json()["field"] == "name"
    assert _projects(state) == 0


def test_admin_body__unpaired_surrogate__400(admin: Admin, state: AppState) -> None:
    response = admin.client.post(
        "/api/v1/projects/",
        headers={**admin.headers, "Content-Type": "application/json"},
        content=b'{"name": "Shop\\ud800"}',
    )
    assert response.status_code == 400
    assert response.json()["field"] == "name"
    assert _projects(state) == 0


def test_admin_nested_body__nul__400_naming_the_path(admin: Admin, state: AppState) -> None:
    project = admin.project()
    response = admin.post(
        f"/api/v1/projects/{project['id']}/segments/",
        {
            "name": "s",
            "rules": [
                {
                    "type": "ALL",
                    "rules": [],
                    "conditions": [{"operator": "EQUAL", "property_": "p", "value": "a\x00"}],
                }
            ],
        },
    )
    assert response.status_code == 400
    assert response.json()["field"] == "rules.0.conditions.0.value"


def test_admin_query_and_path__nul__400(admin: Admin, state: AppState) -> None:
    environment = admin.environment(admin.project()["id"])
    base = f"/api/v1/environments/{environment['api_key']}/identities/"
    assert admin.get(base + "?q=a%00b").status_code == 400
    assert admin.get(f"/api/v1/environments/{environment['api_key']}%00/").status_code == 400
    response = admin.post(base, {"identifier": "a\x00b"})
    assert response.status_code == 400
    with state.units.read() as unit, unit_session(unit) as session:
        assert session.scalar(select(func.count()).select_from(Identity)) == 0


def test_import__nul_anywhere_in_the_document__400_and_nothing_stored(
    admin: Admin, state: AppState, organisation: Organisation
) -> None:
    document = standard_document()
    document["feature_states"][0]["feature"]["name"] = "ban\x00ner"
    response = admin.client.post("/api/v1/projects/import/", headers=admin.headers, json=document)
    assert response.status_code == 400
    assert response.json()["field"].endswith(".name")
    # The same check holds for `ensign import`, which calls the service directly.
    with (
        state.units.write() as unit,
        unit_session(unit) as session,
        pytest.raises(InvalidInput) as refused,
    ):
        import_document(session, organisation.id, document)
    assert refused.value.field == response.json()["field"]
    assert _projects(state) == 0
