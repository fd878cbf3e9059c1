"""The JSON admin API under /api/v1/, authenticated with `Authorization: Api-Key <key>`.

Paths and field names follow the reference's admin API (contract §7).
"""

from fastapi import APIRouter

from ensign.web.admin import (
    audit,
    environments,
    events,
    experiment_results,
    experiments,
    featurestates,
    identities,
    imports,
    integrations,
    organisations,
    projects,
    segments,
)

router = APIRouter(prefix="/api/v1")
for _module in (
    imports,
    organisations,
    projects,
    segments,
    environments,
    events,
    experiments,
    experiment_results,
    identities,
    featurestates,
    audit,
    integrations,
):
    router.include_router(_module.router)
