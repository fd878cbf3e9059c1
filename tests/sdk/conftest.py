from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import update

from ensign.services.importing import import_document
from ensign.storage.models import Environment, Organisation, Project
from ensign.web.deps import AppState
from tests.conftest import Organisation as OrgFixture
from tests.documents import standard_document
from tests.units import unit_session


@dataclass(frozen=True)
class Env:
    client_key: str
    server_key: str
    environment_id: int
    project_id: int

    @property
    def client(self) -> dict[str, str]:
        return {"X-Environment-Key": self.client_key}

    @property
    def server(self) -> dict[str, str]:
        return {"X-Environment-Key": self.server_key}


@pytest.fixture
def make_env(state: AppState, organisation: OrgFixture) -> Callable[..., Env]:
    def make(document: dict[str, Any] | None = None) -> Env:
        with state.units.write() as unit, unit_session(unit) as session:
            result = import_document(session, organisation.id, document or standard_document())
        return Env(
            result.environment_key, result.server_key, result.environment_id, result.project_id
        )

    return make


@pytest.fixture
def env(make_env: Callable[..., Env]) -> Env:
    return make_env()


@pytest.fixture
def configure(state: AppState) -> Callable[..., None]:
    """Change environment, project or organisation settings directly, as an operator would."""

    def apply(
        env: Env,
        *,
        environment: dict[str, Any] | None = None,
        project: dict[str, Any] | None = None,
        organisation: dict[str, Any] | None = None,
    ) -> None:
        with state.units.write() as unit, unit_session(unit) as session:
            if environment:
                session.execute(
                    update(Environment)
                    .where(Environment.id == env.environment_id)
                    .values(**environment)
                )
            if project:
                session.execute(
                    update(Project).where(Project.id == env.project_id).values(**project)
                )
            if organisation:
                project_row = session.get(Project, env.project_id)
                assert project_row is not None
                session.execute(
                    update(Organisation)
                    .where(Organisation.id == project_row.organisation_id)
                    .values(**organisation)
                )
            session.execute(
                update(Environment)
                .where(Environment.id == env.environment_id)
                .values(revision=Environment.revision + 1)
            )

    return apply
