"""Import a Flagsmith environment document through the admin API (as `ensign import` does)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from ensign.errors import InvalidInput
from ensign.services.import_checks import DocumentLimits
from ensign.services.importing import import_document_in_batches
from ensign.web.admin.routing import admin_route
from ensign.web.deps import Admin, State
from ensign.web.responses import OrjsonResponse

router = APIRouter(tags=["Import"])


@admin_route(
    router,
    "/projects/import/",
    ["POST"],
    status_code=201,
    summary="Import a Flagsmith environment document",
)
async def import_environment_document(
    request: Request,
    state: State,
    principal: Admin,
    project: str | None = Query(
        default=None, max_length=200, description="Name of the project to create"
    ),
) -> Any:
    """The body is the document itself, as Flagsmith's `/environment-document/` returns it.
    Answers the new project's id and the environment's client and server keys."""
    try:
        document = orjson.loads(await request.body())
    except orjson.JSONDecodeError as error:
        raise InvalidInput(f"body: not JSON ({error})", field="body") from None

    def work() -> dict[str, Any]:
        result = import_document_in_batches(
            state.units,
            principal,
            document,
            project_name=project,
            limits=DocumentLimits.from_settings(state.settings),
        )
        return result.as_json()

    return OrjsonResponse(await run_in_threadpool(work), status_code=201)
