"""Trait increments under concurrency and at the edge of 64 bits, against stored values that
predate the checks (issue 14, items 1 and 2)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
from fastapi.testclient import TestClient

from ensign.web.deps import AppState
from tests.conftest import ServerProcess
from tests.sdk.conftest import Env

INCREMENT = "/api/v1/traits/increment-value/"


def test_increment__200_concurrent_clients__none_lost(
    server: ServerProcess, env: Env, database_url: str
) -> None:
    body = {"trait_key": "logins", "identifier": "racer", "increment_by": 1}
    limits = httpx.Limits(max_connections=50)
    with httpx.Client(base_url=server.url, headers=env.server, limits=limits, timeout=60) as http:

        def increment(_: int) -> int:
            return http.post(INCREMENT, json=body).status_code

        with ThreadPoolExecutor(max_workers=50) as pool:
            statuses = list(pool.map(increment, range(200)))
        identity = http.get("/api/v1/identities/", params={"identifier": "racer"}).json()

    assert statuses == [200] * 200
    assert {t["trait_key"]: t["trait_value"] for t in identity["traits"]} == {"logins": 200}


def _traits(client: TestClient, env: Env, identifier: str) -> dict[str, object]:
    response = client.get(
        "/api/v1/identities/", headers=env.server, params={"identifier": identifier}
    )
    assert response.status_code == 200
    return {t["trait_key"]: t["trait_value"] for t in response.json()["traits"]}


def test_increment__result_beyond_64_bits__400_and_value_unchanged(
    client: TestClient, env: Env
) -> None:
    for start, step in ((2**63 - 1, 1), (-(2**63), -1), (2**62, 2**62)):
        client.post(
            "/api/v1/traits/",
            headers=env.server,
            json={"identity": {"identifier": "edge"}, "trait_key": "n", "trait_value": start},
        )
        response = client.post(
            INCREMENT,
            headers=env.server,
            json={"trait_key": "n", "identifier": "edge", "increment_by": step},
        )
        assert response.status_code == 400
        assert _traits(client, env, "edge") == {"n": start}


def test_identity__stored_values_that_no_longer_decode__still_served(
    client: TestClient, env: Env, state: AppState
) -> None:
    with state.identities.unit(write=True) as store:
        identity_id, _ = store.get_or_create_identity(env.environment_id, "legacy")
        store.insert_traits(
            identity_id,
            [("huge", "int", str(2**64)), ("garbled", "int", "12abc"), ("odd", "float", "x.y")],
        )

    expected = {"huge": str(2**64), "garbled": "12abc", "odd": "x.y"}
    assert _traits(client, env, "legacy") == expected
    response = client.post(
        "/api/v1/identities/",
        headers=env.server,
        json={"identifier": "legacy", "traits": [{"trait_key": "plan", "trait_value": "gold"}]},
    )
    assert response.status_code == 200
    assert {t["trait_key"]: t["trait_value"] for t in response.json()["traits"]} == {
        **expected,
        "plan": "gold",
    }
    increment = client.post(
        INCREMENT,
        headers=env.server,
        json={"trait_key": "huge", "identifier": "legacy", "increment_by": 1},
    )
    assert increment.status_code == 400
    assert _traits(client, env, "legacy")["huge"] == str(2**64)
