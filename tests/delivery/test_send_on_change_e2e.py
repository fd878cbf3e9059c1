"""Send on change end to end: the official Flagsmith SDK against a real `ensign serve`, both
integrations configured through the admin API, the fake vendors on sockets."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from flagsmith import Flagsmith

from tests.conftest import Organisation, ServerProcess, wait_for
from tests.fakes.fixtures import Connector, Env, Served

pytestmark = pytest.mark.slow


USERS = 50


def _counters(served: ServerProcess, org: Organisation, env: Env, kind: str, id_: int) -> Any:
    url = f"{served.api_url}environments/{env.client_key}/integrations/{kind}/{id_}/deliveries/"
    response = httpx.get(url, headers=org.headers)
    assert response.status_code == 200, response.text
    return response.json()


def _set_limit(served: ServerProcess, org: Organisation, env: Env, value: int) -> None:
    """Change the "limit" flag's environment value through the admin API."""
    flags = httpx.get(f"{served.api_url}flags/", headers={"X-Environment-Key": env.client_key})
    (feature_id,) = [f["feature"]["id"] for f in flags.json() if f["feature"]["name"] == "limit"]
    base = f"{served.api_url}environments/{env.client_key}/featurestates/"
    states = httpx.get(base, headers=org.headers, params={"feature": feature_id}).json()
    (state,) = states["results"]
    response = httpx.patch(
        f"{base}{state['id']}/", headers=org.headers, json={"feature_state_value": value}
    )
    assert response.status_code == 200, response.text


def test_official_sdk__repeat_identities__changes_sent_once_every_evaluation_each_time(
    served: ServerProcess,
    organisation: Organisation,
    env: Env,
    vendors: Served,
    connect: Connector,
) -> None:
    # Given Heap sending on change (the default) and Mixpanel on every evaluation
    ids = {}
    for kind, base, extra in (
        ("heap", vendors.heap_url, {}),
        ("mixpanel", vendors.mixpanel_url, {"deliver": "every_evaluation"}),
    ):
        ids[kind] = connect(env.client_key, kind, api_key=f"{kind}-key", base_url=base, **extra)
    flagsmith = Flagsmith(environment_key=env.server_key, api_url=served.api_url)

    # When 50 users are each identified three times with the same traits
    for _ in range(3):
        for i in range(USERS):
            flagsmith.get_identity_flags(f"user-{i}", traits={"plan": "free"})

    # Then Heap receives one flag set per user, Mixpanel three, and Heap counts the rest
    def delivered(kind: str) -> int:
        return int(_counters(served, organisation, env, kind, ids[kind])["delivered"])

    wait_for(lambda: delivered("heap") == USERS)
    wait_for(lambda: delivered("mixpanel") >= 3 * USERS)
    heap = _counters(served, organisation, env, "heap", ids["heap"])
    assert heap["suppressed"] == 2 * USERS
    users = [e for e in vendors.heap.events if e["identity"].startswith("user-")]
    assert sorted(e["identity"] for e in users) == sorted(f"user-{i}" for i in range(USERS))
    assert {e["properties"]["limit"] for e in users} == {10}

    # When a flag changes and ten of the users are identified twice more
    _set_limit(served, organisation, env, 11)
    for _ in range(2):
        for i in range(10):
            flagsmith.get_identity_flags(f"user-{i}", traits={"plan": "free"})

    # Then each of them is sent once more, with the new value
    wait_for(lambda: delivered("heap") == USERS + 10)
    changed = [e for e in vendors.heap.events if e["properties"].get("limit") == 11]
    assert sorted(e["identity"] for e in changed) == sorted(f"user-{i}" for i in range(10))
    assert _counters(served, organisation, env, "heap", ids["heap"])["suppressed"] == 2 * USERS + 10
    wait_for(lambda: delivered("mixpanel") >= 3 * USERS + 20)
    assert delivered("mixpanel") == 3 * USERS + 20
    metrics = httpx.get(f"{served.url}/metrics").text
    assert f'ensign_delivery_suppressed_total{{kind="heap"}} {2 * USERS + 10}.0' in metrics
