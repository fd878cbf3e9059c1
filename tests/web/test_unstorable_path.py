"""A NUL in a path parameter, on every surface and both databases: a 400 in the surface's
format, never the 500 of PostgreSQL refusing it, and nothing stored (issue 22, item 3)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from ensign.storage.models import Identity
from ensign.web.deps import AppState
from tests.sdk.conftest import Env, env, make_env
from tests.units import unit_session

__all__ = ["env", "make_env"]


def rule(field: str) -> str:
    return f"{field}: must not contain NUL characters or unpaired surrogates."


def test_sse__nul_in_the_key__400(client: TestClient) -> None:
    response = client.get("/sse/environments/a%00b/stream")
    assert (response.status_code, response.json()) == (400, {"key": [rule("key")]})


def test_sse__known_key_with_a_nul__400(client: TestClient, env: Env) -> None:
    response = client.get(f"/sse/environments/{env.client_key}%00/stream")
    assert (response.status_code, response.json()) == (400, {"key": [rule("key")]})


def test_ofrep_single__nul_in_the_flag_key__400_invalid_context(
    client: TestClient, env: Env
) -> None:
    response = client.post(
        "/ofrep/v1/evaluate/flags/ban%00ner",
        headers={"Authorization": f"Bearer {env.client_key}"},
        json={"context": {"targetingKey": "u1"}},
    )
    assert response.status_code == 400
    assert response.json() == {
        "key": "ban\x00ner",
        "errorCode": "INVALID_CONTEXT",
        "errorDetails": rule("key"),
    }


def test_sdk_identity_flags_path__nul_in_the_identifier__400_nothing_stored(
    client: TestClient, env: Env, state: AppState
) -> None:
    response = client.get("/api/v1/flags/a%00b", headers=env.client)
    assert (response.status_code, response.json()) == (400, {"identifier": [rule("identifier")]})
    with state.units.read() as unit, unit_session(unit) as session:
        assert session.scalar(select(func.count()).select_from(Identity)) == 0


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/environments/a%00b/featurestates/",
        "/api/v1/environments/a%00b/identities/",
        "/api/v1/environments/a%00b/cohort-sync-keys/",
        "/api/v1/environments/a%00b/analytics/flags/",
    ],
)
def test_admin__nul_in_an_environment_key__400_naming_it(client: TestClient, path: str) -> None:
    # No credentials: the path is refused before they are asked for (`reject_unstorable_text`).
    response = client.get(path)
    assert response.status_code == 400
    assert response.json() == {"error": "invalid", "detail": rule("api_key"), "field": "api_key"}


def test_sdk_identities__nul_in_the_identifier_query__400(client: TestClient, env: Env) -> None:
    response = client.get("/api/v1/identities/?identifier=a%00b", headers=env.client)
    assert response.status_code == 400
