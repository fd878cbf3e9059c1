"""The experiments admin API: create, list, read, stop, delete, and what it refuses."""

from __future__ import annotations

from typing import Any

from tests.admin.conftest import Admin


def _setup(admin: Admin) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    project = admin.project()
    environment = admin.environment(project["id"])
    feature = admin.feature(project["id"], "checkout", initial_value="classic")
    base = f"/api/v1/projects/{project['id']}/features/{feature['id']}/mv-options/"
    admin.made(base, {"value": "express", "key": "express", "default_percentage_allocation": 50})
    return project, environment, feature


def _identity_flag(admin: Admin, env_key: str, identifier: str) -> dict[str, Any]:
    response = admin.client.get(
        "/api/v1/identities/",
        params={"identifier": identifier},
        headers={"X-Environment-Key": env_key},
    )
    assert response.status_code == 200, response.text
    flags = {f["feature"]["name"]: f for f in response.json()["flags"]}
    return flags["checkout"]


def test_experiments__crud__round_trips_and_stops(admin: Admin) -> None:
    _, environment, feature = _setup(admin)
    base = f"/api/v1/environments/{environment['api_key']}/experiments/"

    created = admin.made(base, {"name": "Checkout test", "feature": feature["id"]})
    path = f"{base}{created['id']}/"
    listed = admin.get(base).json()
    stopped = admin.patch(path, {"running": False}).json()
    read = admin.get(path).json()
    deleted = admin.delete(path)

    assert created["name"] == "Checkout test"
    assert created["feature"] == feature["id"]
    assert created["segment"] is None
    assert created["running"] is True
    assert created["started_at"] is not None
    assert created["stopped_at"] is None
    assert listed["count"] == 1
    assert listed["results"][0]["id"] == created["id"]
    assert stopped["running"] is False
    assert stopped["stopped_at"] is not None
    assert read == stopped
    assert deleted.status_code == 204
    assert admin.get(path).status_code == 404


def test_experiments__second_running_on_a_feature__400_naming_field(admin: Admin) -> None:
    _, environment, feature = _setup(admin)
    base = f"/api/v1/environments/{environment['api_key']}/experiments/"
    first = admin.made(base, {"name": "one", "feature": feature["id"]})

    second = admin.post(base, {"name": "two", "feature": feature["id"]})
    admin.patch(f"{base}{first['id']}/", {"running": False})
    after_stop = admin.post(base, {"name": "three", "feature": feature["id"]})
    restart = admin.patch(f"{base}{first['id']}/", {"running": True})

    assert second.status_code == 400
    assert second.json()["field"] == "feature"
    assert after_stop.status_code == 201
    assert restart.status_code == 400
    assert restart.json()["field"] == "feature"


def test_experiments__restart_on_a_feature_no_longer_multivariate__400_and_stays_stopped(
    admin: Admin,
) -> None:
    # Given a stopped experiment whose feature then lost its only variant
    project, environment, feature = _setup(admin)
    base = f"/api/v1/environments/{environment['api_key']}/experiments/"
    created = admin.made(base, {"name": "Checkout test", "feature": feature["id"]})
    path = f"{base}{created['id']}/"
    admin.patch(path, {"running": False})
    options = f"/api/v1/projects/{project['id']}/features/{feature['id']}/mv-options/"
    (option,) = admin.get(options).json()["results"]
    assert admin.delete(f"{options}{option['id']}/").status_code == 204

    # When it is started again
    restart = admin.patch(path, {"running": True})

    # Then it is refused as creating it would be, and it stays stopped
    assert (restart.status_code, restart.json()["field"]) == (400, "feature")
    assert "multivariate" in restart.json()["detail"]
    assert admin.get(path).json()["running"] is False
    assert admin.post(base, {"name": "again", "feature": feature["id"]}).status_code == 400


def test_experiments__bad_references__400_naming_field(admin: Admin) -> None:
    project, environment, _ = _setup(admin)
    plain = admin.feature(project["id"], "banner")
    base = f"/api/v1/environments/{environment['api_key']}/experiments/"

    standard = admin.post(base, {"name": "x", "feature": plain["id"]})
    unknown = admin.post(base, {"name": "x", "feature": 999_999})
    segment = admin.post(base, {"name": "x", "feature": plain["id"] - 1, "segment": 999_999})
    nameless = admin.post(base, {"feature": plain["id"]})

    assert (standard.status_code, standard.json()["field"]) == (400, "feature")
    assert (unknown.status_code, unknown.json()["field"]) == (400, "feature")
    assert (segment.status_code, segment.json()["field"]) == (400, "segment")
    assert nameless.status_code == 400
    assert admin.get(f"{base}1/").status_code == 404
    assert admin.get("/api/v1/environments/nope/experiments/").status_code == 404


def test_experiments__changes__audited(admin: Admin) -> None:
    _, environment, feature = _setup(admin)
    base = f"/api/v1/environments/{environment['api_key']}/experiments/"
    created = admin.made(base, {"name": "Checkout test", "feature": feature["id"]})
    admin.patch(f"{base}{created['id']}/", {"running": False})
    admin.delete(f"{base}{created['id']}/")

    logs = [
        e["log"] for e in admin.get("/api/v1/audit/").json()["results"] if "Experiment" in e["log"]
    ]

    assert sorted(logs) == [
        "Experiment created: Checkout test",
        "Experiment deleted: Checkout test",
        "Experiment stopped: Checkout test",
    ]


def test_experiments__start_and_stop__served_at_once(admin: Admin) -> None:
    _, environment, feature = _setup(admin)
    base = f"/api/v1/environments/{environment['api_key']}/experiments/"
    before = _identity_flag(admin, environment["api_key"], "user-1")

    created = admin.made(base, {"name": "Checkout test", "feature": feature["id"]})
    during = _identity_flag(admin, environment["api_key"], "user-1")
    admin.patch(f"{base}{created['id']}/", {"running": False})
    after = _identity_flag(admin, environment["api_key"], "user-1")

    assert "metadata" not in before
    assert during["metadata"] == {
        "experiment": {"id": created["id"], "name": "Checkout test", "in_experiment": True}
    }
    assert during["variant"] in ("express", "control")
    assert "metadata" not in after


def test_experiments__segment_deleted__experiment_stops_rather_than_widening(
    admin: Admin,
) -> None:
    project, environment, feature = _setup(admin)
    segment = admin.made(
        f"/api/v1/projects/{project['id']}/segments/",
        {"name": "gold", "rules": [{"type": "ALL", "rules": [], "conditions": []}]},
    )
    base = f"/api/v1/environments/{environment['api_key']}/experiments/"
    created = admin.made(
        base, {"name": "Gold test", "feature": feature["id"], "segment": segment["id"]}
    )

    admin.delete(f"/api/v1/projects/{project['id']}/segments/{segment['id']}/")
    after = admin.get(f"{base}{created['id']}/").json()

    assert (after["running"], after["segment"]) == (False, None)
    assert after["stopped_at"] is not None
    assert "metadata" not in _identity_flag(admin, environment["api_key"], "user-1")
