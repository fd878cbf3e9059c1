"""An app on a fresh database (the shared `database_url` fixture), an organisation and its
admin key, for the admin API tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ensign.services.admin.organisations import create_organisation
from ensign.services.keys import create_admin_key
from ensign.settings import Settings
from ensign.storage.db import Database
from ensign.storage.unit_of_work import Units
from ensign.web.app import create_app


@dataclass
class Admin:
    """A client authenticated as one organisation's admin key, with helpers for set-up."""

    client: TestClient
    organisation_id: int
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Api-Key {self.key}"}

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.client.get(path, headers=self.headers, **kwargs)

    def post(self, path: str, json: Any = None) -> Any:
        return self.client.post(path, headers=self.headers, json=json)

    def put(self, path: str, json: Any = None) -> Any:
        return self.client.put(path, headers=self.headers, json=json)

    def patch(self, path: str, json: Any = None) -> Any:
        return self.client.patch(path, headers=self.headers, json=json)

    def delete(self, path: str) -> Any:
        return self.client.delete(path, headers=self.headers)

    def made(self, path: str, json: Any) -> dict[str, Any]:
        """POST and insist on 201."""
        response = self.post(path, json)
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    def project(self, name: str = "Shop") -> dict[str, Any]:
        return self.made("/api/v1/projects/", {"name": name})

    def environment(self, project_id: int, name: str = "Production") -> dict[str, Any]:
        return self.made("/api/v1/environments/", {"name": name, "project": project_id})

    def feature(self, project_id: int, name: str = "checkout", **fields: Any) -> dict[str, Any]:
        return self.made(f"/api/v1/projects/{project_id}/features/", {"name": name, **fields})

    def sdk_flags(self, environment_key: str) -> dict[str, dict[str, Any]]:
        response = self.client.get("/api/v1/flags/", headers={"X-Environment-Key": environment_key})
        assert response.status_code == 200, response.text
        return {flag["feature"]["name"]: flag for flag in response.json()}


@dataclass
class World:
    url: str
    client: TestClient
    admin: Admin

    def new_organisation(self, name: str) -> Admin:
        organisation_id, key = make_organisation(self.url, name)
        return Admin(self.client, organisation_id, key)


def make_organisation(url: str, name: str) -> tuple[int, str]:
    database = Database(url)
    try:
        with Units(database).write() as unit:
            organisation = create_organisation(unit, name=name)
            key = create_admin_key(unit, organisation.id, "tests")
            return organisation.id, key
    finally:
        database.dispose()


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    app = create_app(Settings(database_url=database_url))
    with TestClient(app) as client:
        organisation_id, key = make_organisation(database_url, "Acme")
        yield World(database_url, client, Admin(client, organisation_id, key))


@pytest.fixture
def admin(world: World) -> Admin:
    return world.admin
