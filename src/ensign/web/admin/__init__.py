"""The JSON admin API under /api/v1/, authenticated with `Authorization: Api-Key <key>`.

Paths and field names follow the reference's admin API (contract §7).
"""

from fastapi import APIRouter

from ensign.web.admin import (
    audit,
    cohorts,
    environments,
    events,
    experiment_results,
    experiments,
    features,
    identities,
    imports,
    integrations,
    organisations,
    overrides,
    projects,
    segments,
    states,
    tags,
)

router = APIRouter(prefix="/api/v1")
# In the order the OpenAPI document lists them: overrides sit with what they override.
for _routes in (
    imports.router,
    organisations.router,
    projects.router,
    features.router,
    tags.router,
    segments.router,
    environments.router,
    states.router,
    overrides.environment_routes,
    events.router,
    experiments.router,
    experiment_results.router,
    identities.router,
    overrides.identity_routes,
    overrides.state_routes,
    audit.router,
    integrations.router,
    cohorts.router,
):
    router.include_router(_routes)
