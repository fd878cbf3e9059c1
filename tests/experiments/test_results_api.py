"""`GET …/experiments/{id}/results/`: distinct identities per variant against the environment's
weights, and the sample-ratio check. Exposures are recorded with the storage function the
identify path uses."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ensign.storage.db import Database
from ensign.storage.experiments import SessionExposures
from tests.admin.conftest import Admin, World

NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)


def _experiment(admin: Admin, weight: float = 50) -> tuple[str, dict[str, Any]]:
    """A running experiment on a feature with one variant, `express`, at `weight` percent."""
    project = admin.project()
    environment = admin.environment(project["id"])
    feature = admin.feature(
        project["id"], "checkout", initial_value="classic", default_enabled=True
    )
    admin.made(
        f"/api/v1/projects/{project['id']}/features/{feature['id']}/mv-options/",
        {"value": "express", "key": "express", "default_percentage_allocation": weight},
    )
    base = f"/api/v1/environments/{environment['api_key']}/experiments/"
    experiment = admin.made(base, {"name": "Checkout test", "feature": feature["id"]})
    return f"{base}{experiment['id']}/results/", experiment


def _expose(url: str, experiment_id: int, *exposures: tuple[str, str]) -> None:
    database = Database(url)
    try:
        with database.session() as session:
            for identifier, variant in exposures:
                SessionExposures(session).insert_exposure(experiment_id, identifier, variant, NOW)
    finally:
        database.dispose()


def _by_variant(body: dict[str, Any]) -> dict[str | None, tuple[float, int]]:
    return {v["variant"]: (v["weight"], v["exposures"]) for v in body["variants"]}


def test_results__exposures__distinct_identities_per_variant(world: World) -> None:
    # Given an identity exposed twice to one variant, and one that moved to the other variant
    path, experiment = _experiment(world.admin)
    _expose(
        world.url,
        experiment["id"],
        ("ann", "control"),
        ("ann", "control"),
        ("bob", "control"),
        ("bob", "express"),
        ("cy", "express"),
    )

    body = world.admin.get(path).json()

    assert _by_variant(body) == {"control": (50.0, 2), "express": (50.0, 2)}
    assert body["exposed_identities"] == 3
    assert body["experiment"]["id"] == experiment["id"]
    assert body["srm_p_value"] == 1.0
    assert body["sample_ratio_mismatch"] is False


def test_results__a_skewed_split__flagged(world: World) -> None:
    # Given a 50/50 split that exposed 70 identities to control and 30 to express:
    # X = 2 * 20^2 / 50 = 16, df 1 → p = erfc(sqrt(8)) ≈ 6.33e-05
    path, experiment = _experiment(world.admin)
    _expose(
        world.url,
        experiment["id"],
        *[(f"c{i}", "control") for i in range(70)],
        *[(f"e{i}", "express") for i in range(30)],
    )

    body = world.admin.get(path).json()

    assert body["srm_p_value"] < 0.001
    assert abs(body["srm_p_value"] - 6.334248366623977e-05) < 1e-12
    assert body["sample_ratio_mismatch"] is True


def test_results__no_exposures__null_p_value(admin: Admin) -> None:
    path, _ = _experiment(admin, weight=30)

    body = admin.get(path).json()

    assert _by_variant(body) == {"control": (70.0, 0), "express": (30.0, 0)}
    assert body["srm_p_value"] is None
    assert body["sample_ratio_mismatch"] is False


def test_results__another_organisation_or_unknown__404(world: World) -> None:
    path, experiment = _experiment(world.admin)
    other = world.new_organisation("Other")

    assert other.get(path).status_code == 404
    assert world.admin.get(path.replace(f"/{experiment['id']}/", "/999999/")).status_code == 404
    assert world.client.get(path).status_code in (401, 403)


def test_results__identify_calls__each_identity_counted_once_in_its_variant(world: World) -> None:
    # Given a running experiment, and identities that each identify twice
    admin = world.admin
    path, _ = _experiment(admin)
    env_key = admin.get(path.split("/experiments/")[0] + "/").json()["api_key"]
    served: dict[str, int] = {}
    for i in range(20):
        for _ in range(2):
            response = world.client.post(
                "/api/v1/identities/",
                json={"identifier": f"user-{i}", "traits": []},
                headers={"X-Environment-Key": env_key},
            )
            assert response.status_code == 200, response.text
        [flag] = [f for f in response.json()["flags"] if f["feature"]["name"] == "checkout"]
        served[flag["variant"]] = served.get(flag["variant"], 0) + 1

    body = admin.get(path).json()

    # Then each identity is one exposure, in the variant it was served
    assert {k: n for k, (_, n) in _by_variant(body).items() if n} == served
    assert body["exposed_identities"] == 20
