"""The dashboard's router: every page area's routes, under one route class."""

from __future__ import annotations

from fastapi import APIRouter

from ensign.web.dashboard import (
    audit,
    auth,
    cohorts,
    experiments,
    feature_editor,
    features,
    identities,
    integrations,
    overrides,
    projects,
    segments,
)
from ensign.web.dashboard.core import DashboardRoute

router = APIRouter(route_class=DashboardRoute, include_in_schema=False)
router.include_router(auth.router)
router.include_router(auth.static_router)
for area in (
    projects,
    features,
    feature_editor,
    experiments,
    overrides,
    segments,
    identities,
    integrations,
    cohorts,
    audit,
):
    router.include_router(area.router)
