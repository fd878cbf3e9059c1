"""The one place that turns Ensign's errors into HTTP responses, per surface.

The SDK API answers as the reference does (`{"detail": …}`, or `{"field": ["message"]}`);
the admin API answers `{"error": <code>, "detail": …, "field": …}`.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ensign.errors import (
    AuthenticationFailed,
    Conflict,
    EnsignError,
    InvalidInput,
    NotFound,
    PermissionDenied,
)
from ensign.web.responses import OrjsonResponse

SDK_PREFIXES = (
    "/api/v1/flags",
    "/api/v1/identities",
    "/api/v1/traits",
    "/api/v1/environment-document",
    "/api/v1/analytics",
)

ADMIN_STATUS: dict[type[EnsignError], tuple[int, str]] = {
    NotFound: (404, "not_found"),
    Conflict: (409, "conflict"),
    InvalidInput: (400, "invalid"),
    AuthenticationFailed: (401, "unauthenticated"),
    PermissionDenied: (403, "forbidden"),
}

# The reference answers a bad environment key with 403, never 401.
SDK_STATUS: dict[type[EnsignError], int] = {
    NotFound: 404,
    Conflict: 400,
    InvalidInput: 400,
    AuthenticationFailed: 403,
    PermissionDenied: 403,
}


def is_sdk_path(path: str) -> bool:
    return path.startswith(SDK_PREFIXES)


def _status_for(error: EnsignError) -> tuple[int, str]:
    for cls in type(error).__mro__:
        if cls in ADMIN_STATUS:
            return ADMIN_STATUS[cls]
    return 400, "error"


def sdk_error_body(error: EnsignError) -> tuple[int, dict[str, Any]]:
    status = next((SDK_STATUS[c] for c in type(error).__mro__ if c in SDK_STATUS), 400)
    if error.field is not None and status == 400:
        return status, {error.field: [error.detail]}
    return status, {"detail": error.detail}


def admin_error_body(error: EnsignError) -> tuple[int, dict[str, Any]]:
    status, code = _status_for(error)
    body: dict[str, Any] = {"error": code, "detail": error.detail}
    if error.field is not None:
        body["field"] = error.field
    return status, body


async def handle_ensign_error(request: Request, error: Exception) -> OrjsonResponse:
    assert isinstance(error, EnsignError)
    if is_sdk_path(request.url.path):
        status, body = sdk_error_body(error)
    else:
        status, body = admin_error_body(error)
    return OrjsonResponse(body, status_code=status)


async def handle_validation_error(request: Request, error: Exception) -> OrjsonResponse:
    assert isinstance(error, RequestValidationError)
    fields: dict[str, list[str]] = {}
    for item in error.errors():
        location = [str(p) for p in item.get("loc", ()) if p not in ("body", "query", "path")]
        name = ".".join(location) or "body"
        fields.setdefault(name, []).append(str(item.get("msg", "invalid")))
    if is_sdk_path(request.url.path):
        return OrjsonResponse(fields, status_code=400)
    first = next(iter(fields), "body")
    return OrjsonResponse(
        {
            "error": "invalid",
            "detail": f"{first}: {fields[first][0]}" if fields else "Invalid request.",
            "field": first,
            "fields": fields,
        },
        status_code=400,
    )


async def handle_http_error(request: Request, error: Exception) -> OrjsonResponse:
    assert isinstance(error, StarletteHTTPException)
    detail = error.detail if isinstance(error.detail, str) else "Error."
    if error.status_code == 404 and detail == "Not Found":
        detail = "Not found."
    if is_sdk_path(request.url.path):
        return OrjsonResponse(
            {"detail": detail}, status_code=error.status_code, headers=error.headers
        )
    code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(
        error.status_code, "error"
    )
    return OrjsonResponse(
        {"error": code, "detail": detail}, status_code=error.status_code, headers=error.headers
    )


async def handle_unexpected(request: Request, error: Exception) -> OrjsonResponse:
    # A bug of ours: answer in the surface's shape and let the log carry the traceback.
    body: dict[str, Any] = {"detail": "Internal server error."}
    if not is_sdk_path(request.url.path):
        body = {"error": "internal", **body}
    return OrjsonResponse(body, status_code=500)
