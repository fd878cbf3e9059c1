"""The one change path: a change to what an environment serves leaves an audit entry with its
record before and after, a change record in every environment it reached, and a new revision."""

from __future__ import annotations

from ensign.storage import changes as change_store
from ensign.storage.db import Database
from ensign.storage.environments import environment_by_key
from tests.admin.conftest import Admin, World


def _records(url: str, api_key: str) -> list[dict[str, object]]:
    database = Database(url)
    try:
        with database.read_session() as session:
            environment = environment_by_key(session, api_key)
            assert environment is not None
            return [
                {"actor": r.actor, "change_set": r.change_set, "changes": r.changes}
                for r in change_store.change_records(session, environment.id)
            ]
    finally:
        database.dispose()


def _revision(url: str, api_key: str) -> int:
    database = Database(url)
    try:
        with database.read_session() as session:
            environment = environment_by_key(session, api_key)
            assert environment is not None
            return environment.revision
    finally:
        database.dispose()


def test_change_path__feature_state_update__audited_recorded_and_served(
    world: World, admin: Admin
) -> None:
    # Given: a feature served off in one environment
    project = admin.project()
    environment = admin.environment(project["id"])
    admin.feature(project["id"], "banner")
    key = environment["api_key"]
    state = admin.get(f"/api/v1/environments/{key}/featurestates/").json()["results"][0]
    revision = _revision(world.url, key)

    # When: it is switched on
    response = admin.patch(
        f"/api/v1/environments/{key}/featurestates/{state['id']}/", {"enabled": True}
    )

    # Then: SDKs see it, the revision moved, and the change is audited and recorded once
    assert response.status_code == 200, response.text
    assert admin.sdk_flags(key)["banner"]["enabled"] is True
    assert _revision(world.url, key) > revision
    entry = admin.get(f"/api/v1/audit/?environment={key}").json()["results"][0]
    assert (entry["before"]["enabled"], entry["after"]["enabled"]) == (False, True)
    # (the feature's creation is a change record of its own, before this one)
    records = [
        r
        for r in _records(world.url, key)
        if r["actor"] == "api-key:tests"
        and any(c["resource_type"] == "feature_state" for c in r["changes"])  # type: ignore[attr-defined]
    ]
    assert len(records) == 1
    (change,) = records[0]["changes"]  # type: ignore[misc]
    assert change["resource_type"] == "feature_state"
    assert change["action"] == "UPDATED"
    assert (change["before"]["enabled"], change["after"]["enabled"]) == (False, True)


def test_change_path__override_deleted__recorded_with_its_last_record(
    admin: Admin, world: World
) -> None:
    # Given: a segment override
    project = admin.project()
    environment = admin.environment(project["id"])
    feature = admin.feature(project["id"], "banner")
    segment = admin.made(
        f"/api/v1/projects/{project['id']}/segments/",
        {
            "name": "beta",
            "rules": [
                {
                    "type": "ALL",
                    "rules": [
                        {
                            "type": "ANY",
                            "conditions": [
                                {"property": "plan", "operator": "EQUAL", "value": "beta"}
                            ],
                        }
                    ],
                }
            ],
        },
    )
    key = environment["api_key"]
    override = admin.made(
        f"/api/v1/environments/{key}/features/{feature['id']}/create-segment-override/",
        {"segment": segment["id"], "enabled": True},
    )
    state_id = override.get("id", override.get("feature_state", {}).get("id"))

    # When: it is deleted
    response = admin.delete(f"/api/v1/features/featurestates/{state_id}/")

    # Then: its change record keeps what it was
    assert response.status_code == 204, response.text
    latest = _records(world.url, key)[0]["changes"]
    assert latest[0]["action"] == "DELETED"  # type: ignore[index]
    assert latest[0]["before"]["enabled"] is True  # type: ignore[index]
    assert latest[0]["after"] is None  # type: ignore[index]
