"""What every environment page shows around its content: the project, its environments and
the environment itself, looked up as the signed-in user may see them."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from ensign.services.admin import access
from ensign.services.keys import AdminPrincipal
from ensign.storage import environments as environment_store
from ensign.storage.models import Environment, Project
from ensign.storage.pagination import Window

ALL = Window(0, 1000)


def project_context(session: Session, principal: AdminPrincipal, project_id: int) -> dict[str, Any]:
    project = access.project_for(session, principal, project_id)
    envs = environment_store.environments(session, [project.id], ALL).items
    return {"project": project, "environments": list(envs)}


def environment(session: Session, principal: AdminPrincipal, env_id: int) -> Environment:
    return access.environment_by_id(session, principal, env_id)


def environment_context(
    session: Session, principal: AdminPrincipal, env_id: int, tab: str
) -> dict[str, Any]:
    env = environment(session, principal, env_id)
    context = project_context(session, principal, env.project_id)
    context.update(environment=env, tab=tab)
    return context


def project_of(session: Session, env: Environment) -> Project:
    project = environment_store.project_by_id(session, env.project_id)
    assert project is not None
    return project
