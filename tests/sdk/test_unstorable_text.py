"""NUL characters and unpaired surrogates are refused with a 400 on the SDK API, on both
databases, and nothing is stored (issue 14, item 3)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from ensign.storage.models import Identity, Trait
from ensign.web.deps import AppState
from tests.sdk.conftest import Env
from tests.units import unit_session


def _stored(state: AppState) -> tuple[int, int]:
    with state.units.read() as unit, unit_session(unit) as session:
        identities = session.scalar(select(func.count()).select_from(Identity))
        traits = session.scalar(select(func.count()).select_from(Trait))
    return int(identities or 0), int(traits or 0)


def _trait(identifier: str, key: str, value: Any) -> dict[str, Any]:
    return {"identity": {"identifier": identifier}, "trait_key": key, "trait_value": value}


CALLS = [
    ("POST", "/api/v1/identities/", {"identifier": "a\x00b"}),
    (
        "POST",
        "/api/v1/identities/",
        {"identifier": "a", "traits": [{"trait_key": "k\x00", "trait_value": 1}]},
    ),
    (
        "POST",
        "/api/v1/identities/",
        {"identifier": "a", "traits": [{"trait_key": "k", "trait_value": "v\x00"}]},
    ),
    ("POST", "/api/v1/traits/", _trait("a\x00", "k", 1)),
    ("POST", "/api/v1/traits/", _trait("a", "k", "\x00")),
    ("PUT", "/api/v1/traits/bulk/", [_trait("a", "ok", 1), _trait("a", "k\x00", 1)]),
    (
        "POST",
        "/api/v1/traits/increment-value/",
        {"identifier": "a", "trait_key": "n\x00", "increment_by": 1},
    ),
]


@pytest.mark.parametrize(("method", "path", "body"), CALLS)
def test_sdk_body__nul__400_and_nothing_stored(
    client: TestClient, env: Env, state: AppState, method: str, path: str, body: Any
) -> None:
    response = client.request(method, path, headers=env.server, json=body)
    assert response.status_code == 400, response.text
    assert _stored(state) == (0, 0)


def test_identity_query__nul__400_and_nothing_stored(
    client: TestClient, env: Env, state: AppState
) -> None:
    response = client.get("/api/v1/identities/?identifier=a%00b", headers=env.server)
    assert response.status_code == 400
    assert "identifier" in response.text
    assert _stored(state) == (0, 0)


def test_sdk_body__unpaired_surrogate__400_and_nothing_stored(
    client: TestClient, env: Env, state: AppState
) -> None:
    for raw in (b'{"identifier": "a\\ud800"}', b'{"identifier": "a\\udc00b"}'):
        response = client.post(
            "/api/v1/identities/",
            headers={**env.server, "Content-Type": "application/json"},
            content=raw,
        )
        assert response.status_code == 400
    assert _stored(state) == (0, 0)


def test_sdk_form_body__nul__400(client: TestClient, env: Env, state: AppState) -> None:
    response = client.post(
        "/api/v1/traits/increment-value/",
        headers=env.server,
        data={"identifier": "a\x00", "trait_key": "n", "increment_by": "1"},
    )
    assert response.status_code == 400
    assert _stored(state) == (0, 0)
