"""The organisation's audit log."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from ensign.services.admin import audit
from ensign.web.admin import render
from ensign.web.admin.routing import Pages, admin_route, paginated
from ensign.web.deps import Admin, State

router = APIRouter(tags=["Audit log"])


@admin_route(router, "/audit/", ["GET"], summary="The audit log")
def list_audit(
    request: Request,
    paging: Pages,
    state: State,
    principal: Admin,
    project: int | None = None,
    environment: str | None = None,
    search: str | None = None,
) -> dict[str, Any]:
    with state.units.read() as unit:
        page = audit.list_entries(
            unit,
            principal,
            paging.window,
            project_id=project,
            environment_key=environment,
            search=search,
        )
        return paginated(request, paging, page, render.audit_entry)
