"""Dashboard fixtures: a user, a signed-in test client, and a CSRF token to post with."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ensign.services import accounts
from ensign.services.importing import import_document
from ensign.web.deps import AppState
from tests.conftest import Organisation
from tests.documents import standard_document
from tests.units import unit_session

PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found is not None, "no CSRF field on the page"
    return found.group(1)


@dataclass
class Browser:
    """A TestClient with the session's CSRF token at hand."""

    client: TestClient
    csrf: str = ""

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.client.get(path, follow_redirects=False, **kwargs)

    def post(self, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        body = {"csrf_token": self.csrf, **(data or {})}
        return self.client.post(path, data=body, follow_redirects=False, **kwargs)

    def refresh_csrf(self, path: str = "/sign-in") -> None:
        self.csrf = csrf_of(self.client.get(path).text)


@dataclass(frozen=True)
class Seeded:
    environment_id: int
    project_id: int
    client_key: str


@pytest.fixture
def user(state: AppState, organisation: Organisation) -> str:
    with state.units.write() as unit, unit_session(unit) as session:
        accounts.create_user(
            session, email="admin@example.com", password=PASSWORD, organisation_id=organisation.id
        )
    return "admin@example.com"


@pytest.fixture
def seeded(state: AppState, organisation: Organisation) -> Seeded:
    with state.units.write() as unit, unit_session(unit) as session:
        result = import_document(session, organisation.id, standard_document())
    return Seeded(result.environment_id, result.project_id, result.environment_key)


@pytest.fixture
def anonymous(client: TestClient) -> Browser:
    browser = Browser(client)
    browser.refresh_csrf()
    return browser


@pytest.fixture
def signed_in(anonymous: Browser, user: str) -> Browser:
    response = anonymous.post("/sign-in", {"email": user, "password": PASSWORD})
    assert response.status_code == 303, response.text
    anonymous.refresh_csrf("/projects")
    return anonymous
