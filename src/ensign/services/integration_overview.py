"""What the dashboard's integrations page shows of an environment, read in one unit of work:
every destination with its counters and latest attempts, the names its feature filters offer,
and the events endpoint's status."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from ensign.integrations.catalog import SCHEMAS
from ensign.integrations.schema import Schema
from ensign.services import events, integrations
from ensign.services.admin import features, tags
from ensign.services.events import EventStatus
from ensign.services.integrations import DeliveryStatus
from ensign.services.keys import AdminPrincipal
from ensign.storage import integrations as integration_store
from ensign.storage.models import DeliveryAttempt, Environment, IntegrationConfig
from ensign.storage.pagination import Window
from ensign.storage.unit_of_work import UnitOfWork

# The feature and tag names offered as filters (the dashboard's own bound on a project).
NAMES = Window(0, 1000)


@dataclass(frozen=True)
class Destination:
    """One kind of destination of an environment: its configuration, if any, with its
    delivery counters and latest attempts."""

    kind: str
    schema: Schema
    config: IntegrationConfig | None
    status: DeliveryStatus | None
    attempts: list[DeliveryAttempt]


def destinations(
    session: Session,
    environment: Environment,
    *,
    recent_attempts: int,
    unwritten_suppressed: Callable[[int], int] = lambda _: 0,
) -> list[Destination]:
    """Every kind in the catalog, configured or not, for the environment (whose access the
    caller checked)."""
    configs: dict[str, IntegrationConfig] = {}
    for config in integration_store.configs_of_environment(session, environment.id):
        configs.setdefault(config.kind, config)
    found = []
    for kind, schema in SCHEMAS.items():
        configured = configs.get(kind)
        if configured is None:
            found.append(Destination(kind, schema, None, None, []))
            continue
        attempts = integration_store.attempts(session, configured.id, Window(0, recent_attempts))
        status = integrations.status_of(session, configured, unwritten_suppressed)
        found.append(Destination(kind, schema, configured, status, list(attempts.items)))
    return found


@dataclass(frozen=True)
class IntegrationsOverview:
    environment: Environment
    destinations: list[Destination]
    feature_names: list[str]
    tag_labels: list[str]
    events: EventStatus


def overview(
    unit: UnitOfWork,
    principal: AdminPrincipal,
    environment_id: int,
    *,
    recent_attempts: int,
    unwritten_suppressed: Callable[[int], int] = lambda _: 0,
) -> IntegrationsOverview:
    session = unit.session
    env = integrations.environment_of(session, principal, environment_id)
    project_id = env.project_id
    return IntegrationsOverview(
        environment=env,
        destinations=destinations(
            session,
            env,
            recent_attempts=recent_attempts,
            unwritten_suppressed=unwritten_suppressed,
        ),
        feature_names=[
            f.name for f in features.list_features(session, principal, project_id, NAMES).items
        ],
        tag_labels=[t.label for t in tags.list_tags(session, principal, project_id, NAMES).items],
        events=events.event_status(session, principal, env.api_key),
    )
