"""The audit log: who changed what, when, with the record before and after."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Response

from ensign.services.admin import audit
from ensign.storage.pagination import Window
from ensign.web.dashboard.core import DashboardRoute, DashContext, render

router = APIRouter(route_class=DashboardRoute)

PAGE_SIZE = 50


def _pretty(value: Any) -> str | None:
    return None if value is None else json.dumps(value, indent=2, sort_keys=True, default=str)


@router.get("/audit")
def show_audit(dash: DashContext) -> Response:
    page_text = dash.request.query_params.get("page", "1")
    page = max(1, min(int(page_text) if page_text.isdigit() else 1, 100_000))
    search = dash.request.query_params.get("q", "").strip()
    with dash.state.units.read() as unit:
        found = audit.list_entries(
            unit,
            dash.user,
            Window((page - 1) * PAGE_SIZE, PAGE_SIZE),
            search=search or None,
        )
        entries = [
            {"entry": e, "before": _pretty(e.before), "after": _pretty(e.after)}
            for e in found.items
        ]
        return render(
            dash,
            "pages/audit.html",
            {
                "entries": entries,
                "page": page,
                "has_next": page * PAGE_SIZE < found.count,
                "search": search,
                "count": found.count,
            },
        )
