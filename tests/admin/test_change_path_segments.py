"""Segments, identities and traits, experiments and imports on the one change path: each change
is audited, recorded in every environment it reaches, and moves those environments' revisions."""

from __future__ import annotations

from typing import Any

from ensign.storage import changes as change_store
from ensign.storage.db import Database
from ensign.storage.environments import environment_by_key
from tests.admin.conftest import Admin, World
from tests.documents import standard_document

RULES = [{"type": "ALL", "conditions": [{"property": "plan", "operator": "EQUAL", "value": "a"}]}]


def _changes(url: str, api_key: str) -> tuple[int, list[list[dict[str, Any]]]]:
    """The environment's revision, and its change sets' changes, newest first."""
    database = Database(url)
    try:
        with database.read_session() as session:
            environment = environment_by_key(session, api_key)
            assert environment is not None
            records = change_store.change_records(session, environment.id)
            return environment.revision, [list(r.changes) for r in records]
    finally:
        database.dispose()


def test_change_path__segment_rules_edited__recorded_in_every_environment_of_its_project(
    world: World, admin: Admin
) -> None:
    # Given: a segment of a project with two environments
    project = admin.project()
    production = admin.environment(project["id"])["api_key"]
    staging = admin.environment(project["id"], "Staging")["api_key"]
    base = f"/api/v1/projects/{project['id']}/segments/"
    segment = admin.made(base, {"name": "plans", "rules": RULES})
    revisions = {key: _changes(world.url, key)[0] for key in (production, staging)}

    # When: its rules change
    rules = [{"type": "ANY", "conditions": [{"property": "plan", "operator": "IS_SET"}]}]
    response = admin.patch(f"{base}{segment['id']}/", {"rules": rules})

    # Then: both environments serve a new revision and hold the change, before and after
    assert response.status_code == 200, response.text
    for key in (production, staging):
        revision, change_sets = _changes(world.url, key)
        assert revision > revisions[key]
        (change,) = change_sets[0]
        assert (change["resource_type"], change["action"]) == ("segment", "UPDATED")
        assert change["before"]["rules"][0]["type"] == "ALL"
        assert change["after"]["rules"][0]["type"] == "ANY"


def test_change_path__trait_set_by_admin__recorded_and_served_anew(
    world: World, admin: Admin
) -> None:
    # Given: an identity
    project = admin.project()
    key = admin.environment(project["id"])["api_key"]
    identity = admin.made(f"/api/v1/environments/{key}/identities/", {"identifier": "ada"})
    revision, _ = _changes(world.url, key)

    # When: an admin gives it a trait (traits decide its segments)
    response = admin.post(
        f"/api/v1/environments/{key}/identities/{identity['id']}/traits/",
        {"trait_key": "plan", "trait_value": "gold"},
    )

    # Then: the environment's revision moved and the trait is recorded
    assert response.status_code == 201, response.text
    new_revision, change_sets = _changes(world.url, key)
    assert new_revision > revision
    (change,) = change_sets[0]
    assert (change["resource_type"], change["action"]) == ("trait", "CREATED")
    assert change["before"] is None
    assert change["after"]["trait_value"] == "gold"


def test_change_path__import__one_change_summarising_the_document(
    world: World, admin: Admin
) -> None:
    # When: a document is imported
    document = standard_document()
    response = admin.client.post("/api/v1/projects/import/", headers=admin.headers, json=document)

    # Then: its environment holds one change set of one change: the import, summarised
    assert response.status_code == 201, response.text
    _, change_sets = _changes(world.url, response.json()["environment_key"])
    assert len(change_sets) == 1
    (change,) = change_sets[0]
    assert (change["resource_type"], change["action"]) == ("environment", "import")
    assert change["after"]["features"] == len(
        {s["feature"]["name"] for s in document["feature_states"]}
    )
    assert change["after"]["segments"] == len(document["project"]["segments"])
