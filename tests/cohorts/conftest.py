"""An environment with a cohort-sync key, and helpers that speak Mixpanel's cohort sync."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from ensign.services.importing import import_document
from ensign.storage.models import Identity, Segment, Trait
from ensign.web.deps import AppState
from tests.conftest import Organisation
from tests.documents import standard_document
from tests.units import unit_session

MIXPANEL_PATH = "/api/v1/cohort-sync/mixpanel/"


def basic(key: str, username: str = "mixpanel") -> dict[str, str]:
    token = base64.b64encode(f"{username}:{key}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def envelope(
    action: str,
    members: list[Any],
    *,
    cohort_id: str | int = "1001",
    name: str = "Power users",
    session: str | None = "session-1",
    page: int = 1,
    total: int = 1,
) -> dict[str, Any]:
    parameters: dict[str, Any] = {
        "mixpanel_project_id": "777",
        "mixpanel_cohort_id": cohort_id,
        "mixpanel_cohort_name": name,
        "mixpanel_cohort_description": "People who use it a lot",
        "page_info": {"total_pages": total, "page_count": page},
        "members": members,
    }
    if session is not None:
        parameters["mixpanel_session_id"] = session
    return {"action": action, "parameters": parameters}


def member(distinct_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "email": f"{distinct_id}@example.com",
        "mixpanel_distinct_id": distinct_id,
        "first_name": "First",
        "last_name": "Last",
        **extra,
    }


def members(*ids: str) -> list[dict[str, Any]]:
    return [member(i) for i in ids]


@dataclass(frozen=True)
class SegmentRow:
    id: int
    name: str
    managed_by: str | None
    rules: list[Any]


@dataclass(frozen=True)
class Env:
    client_key: str
    server_key: str
    environment_id: int
    project_id: int


@dataclass
class Sync:
    """One environment with a cohort-sync key, seen from Mixpanel's side and from the database."""

    client: TestClient | httpx.Client
    state: AppState
    org: Organisation
    env: Env
    key: str

    def mixpanel(self, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
        auth = basic(self.key) if headers is None else headers
        if isinstance(body, bytes | str):
            return self.client.post(MIXPANEL_PATH, content=body, headers=auth)
        return self.client.post(MIXPANEL_PATH, json=body, headers=auth)

    def ok(self, body: dict[str, Any]) -> None:
        response = self.mixpanel(body)
        assert response.status_code == 200, response.text
        assert response.json() == {"action": body["action"], "status": "success"}

    def members_of(self, trait_key: str = "mixpanel_cohort_1001") -> set[str]:
        """Identifiers of this environment's identities that carry the membership trait."""
        with self.state.units.read() as unit, unit_session(unit) as session:
            rows = session.execute(
                select(Identity.identifier, Trait.value_type, Trait.value_text)
                .join(Trait, Trait.identity_id == Identity.id)
                .where(Identity.environment_id == self.env.environment_id, Trait.key == trait_key)
            ).all()
        assert all(r.value_type == "bool" and r.value_text == "true" for r in rows)
        return {r.identifier for r in rows}

    def identities(self) -> set[str]:
        with self.state.units.read() as unit, unit_session(unit) as session:
            return set(
                session.scalars(
                    select(Identity.identifier).where(
                        Identity.environment_id == self.env.environment_id
                    )
                )
            )

    def managed_segments(self) -> list[SegmentRow]:
        with self.state.units.read() as unit, unit_session(unit) as session:
            rows = session.scalars(
                select(Segment)
                .where(Segment.project_id == self.env.project_id, Segment.managed_by.is_not(None))
                .order_by(Segment.id)
            )
            return [SegmentRow(s.id, s.name, s.managed_by, s.rules) for s in rows]

    def admin(self, method: str, path: str, json: Any = None) -> httpx.Response:
        url = f"/api/v1/environments/{self.env.client_key}/{path}"
        return self.client.request(method, url, json=json, headers=self.org.headers)

    def override_for_segment(self, feature: str, segment: int, value: str) -> None:
        """A segment override of `feature`, enabled with `value`, for the segment."""
        features = self.client.get(
            f"/api/v1/projects/{self.env.project_id}/features/", headers=self.org.headers
        ).json()["results"]
        feature_id = next(f["id"] for f in features if f["name"] == feature)
        override = self.admin(
            "POST",
            f"features/{feature_id}/create-segment-override/",
            {"segment": segment, "enabled": True, "feature_state_value": value},
        )
        assert override.status_code == 201, override.text

    def log(self) -> list[dict[str, Any]]:
        response = self.admin("GET", "cohort-sync-log/?page_size=1000")
        assert response.status_code == 200, response.text
        results: list[dict[str, Any]] = response.json()["results"]
        return results


def make_env(state: AppState, organisation: Organisation) -> Env:
    with state.units.write() as unit, unit_session(unit) as session:
        result = import_document(session, organisation.id, standard_document())
    return Env(result.environment_key, result.server_key, result.environment_id, result.project_id)


def create_key(client: Any, org: Organisation, env: Env, name: str = "mixpanel") -> str:
    response = client.post(
        f"/api/v1/environments/{env.client_key}/cohort-sync-keys/",
        json={"name": name},
        headers=org.headers,
    )
    assert response.status_code == 201, response.text
    key: str = response.json()["key"]
    return key


@pytest.fixture
def sync(client: TestClient, state: AppState, organisation: Organisation) -> Sync:
    env = make_env(state, organisation)
    return Sync(client, state, organisation, env, create_key(client, organisation, env))
