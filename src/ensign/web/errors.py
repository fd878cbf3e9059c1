"""The one place that turns Ensign's errors into HTTP answers: one table per surface.

- The SDK API answers as the reference does (`{"detail": …}`, or `{"field": ["message"]}`).
- The admin API answers `{"error": <code>, "detail": …, "field": …}`.
- The dashboard answers with its error page; this module gives the page's status and title.
- OFREP answers `{"key", "errorCode", "errorDetails"}` (`errorCode` one of the protocol's
  codes; `key` only on the single-flag route), 401 for a missing or unknown key.
- The cohort-sync receivers answer in Mixpanel's failure shape, whose status decides what
  Mixpanel does next: a 4xx pauses the customer's sync and emails them, a 5xx is retried.

A fault that a retry can fix (`DatabaseUnavailable`, `AtCapacity`, `RateLimited`) answers 503
or 429 with a `Retry-After` on every surface; input that can never succeed stays a 4xx.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ensign.errors import (
    AtCapacity,
    AuthenticationFailed,
    Conflict,
    DatabaseUnavailable,
    EnsignError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    RateLimited,
    TargetingKeyMissing,
    UnparsableInput,
)
from ensign.web.responses import OrjsonResponse

T = TypeVar("T")

SDK_PREFIXES = (
    "/api/v1/flags",
    "/api/v1/identities",
    "/api/v1/traits",
    "/api/v1/environment-document",
    "/api/v1/analytics",
    "/sse/",
    "/api/v1/events",
    "/v1/events",
)

# Long enough for a database restart or failover to finish, short enough that clients are
# not left on stale flags for long.
DATABASE_RETRY_AFTER_SECONDS = 5

# The reference answers a bad environment key with 403, never 401.
SDK_STATUS: dict[type[EnsignError], int] = {
    NotFound: 404,
    Conflict: 400,
    InvalidInput: 400,
    AuthenticationFailed: 403,
    PermissionDenied: 403,
    RateLimited: 429,
    DatabaseUnavailable: 503,
    AtCapacity: 503,
}

ADMIN_STATUS: dict[type[EnsignError], tuple[int, str]] = {
    NotFound: (404, "not_found"),
    Conflict: (409, "conflict"),
    InvalidInput: (400, "invalid"),
    AuthenticationFailed: (401, "unauthenticated"),
    PermissionDenied: (403, "forbidden"),
    RateLimited: (429, "rate_limited"),
    DatabaseUnavailable: (503, "unavailable"),
    AtCapacity: (503, "at_capacity"),
}

OFREP_PREFIX = "/ofrep/"
OFREP_FLAG_PREFIX = "/ofrep/v1/evaluate/flags/"
COHORT_SYNC_PREFIX = "/api/v1/cohort-sync/"

# Status and OFREP error code. The protocol defines codes for evaluation failures only; an
# authentication failure or a fault of ours answers GENERAL.
OFREP_STATUS: dict[type[EnsignError], tuple[int, str]] = {
    NotFound: (404, "FLAG_NOT_FOUND"),
    UnparsableInput: (400, "PARSE_ERROR"),
    TargetingKeyMissing: (400, "TARGETING_KEY_MISSING"),
    InvalidInput: (400, "INVALID_CONTEXT"),
    AuthenticationFailed: (401, "GENERAL"),
    PermissionDenied: (403, "GENERAL"),
    RateLimited: (429, "GENERAL"),
    DatabaseUnavailable: (503, "GENERAL"),
}

# Status and page title.
DASHBOARD_STATUS: dict[type[EnsignError], tuple[int, str]] = {
    NotFound: (404, "Something is wrong"),
    Conflict: (409, "Something is wrong"),
    InvalidInput: (400, "Something is wrong"),
    AuthenticationFailed: (401, "Something is wrong"),
    PermissionDenied: (403, "Something is wrong"),
    RateLimited: (429, "Too many attempts"),
    DatabaseUnavailable: (503, "Try again in a moment"),
    AtCapacity: (503, "Try again in a moment"),
}

# Anything not in this table is a fault of ours, answered 500 so that Mixpanel retries
# rather than pausing the customer's sync.
COHORT_SYNC_STATUS: dict[type[EnsignError], int] = {
    InvalidInput: 400,
    AuthenticationFailed: 401,
    RateLimited: 429,
    DatabaseUnavailable: 503,
    AtCapacity: 503,
}
COHORT_SYNC_DATABASE_FAULT = "Temporary database failure; please retry."
COHORT_SYNC_INTERNAL_FAULT = "Internal error; please retry."


def _lookup(table: dict[type[EnsignError], T], error: EnsignError) -> T | None:
    for cls in type(error).__mro__:
        if cls in table:
            return table[cls]
    return None


def retry_headers(error: BaseException) -> dict[str, str] | None:
    """`Retry-After` for the faults a retry fixes; None for the rest."""
    if isinstance(error, RateLimited | AtCapacity):
        return {"Retry-After": str(max(1, error.retry_after_seconds))}
    if isinstance(error, DatabaseUnavailable):
        return {"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)}
    return None


# --- SDK and admin API ------------------------------------------------------------------------


def is_sdk_path(path: str) -> bool:
    return path.startswith(SDK_PREFIXES)


def sdk_error_body(error: EnsignError) -> tuple[int, dict[str, Any]]:
    status = _lookup(SDK_STATUS, error) or 400
    if error.field is not None and status == 400:
        return status, {error.field: [error.detail]}
    return status, {"detail": error.detail}


def admin_error_body(error: EnsignError) -> tuple[int, dict[str, Any]]:
    status, code = _lookup(ADMIN_STATUS, error) or (400, "error")
    body: dict[str, Any] = {"error": code, "detail": error.detail}
    if error.field is not None:
        body["field"] = error.field
    return status, body


def is_ofrep_path(path: str) -> bool:
    return path.startswith(OFREP_PREFIX)


def ofrep_error_body(
    request: Request, status: int, code: str, detail: str
) -> tuple[int, dict[str, Any]]:
    """OFREP's failure shapes: the single-flag route names the flag, the bulk route does not."""
    body: dict[str, Any] = {"errorCode": code, "errorDetails": detail}
    key = request.path_params.get("key")
    if isinstance(key, str):
        body = {"key": key, **body}
    return status, body


def is_json_surface(path: str) -> bool:
    """The surfaces that read JSON bodies: the SDK API, OFREP, the admin API, cohort sync."""
    return path.startswith(("/api/", OFREP_PREFIX)) or is_sdk_path(path)


def refused(path: str, error: EnsignError) -> OrjsonResponse:
    """The answer to a request refused before routing, in the shape of the surface `path` is
    on; OFREP's single-flag key is read from the path, as the route would have."""
    if path.startswith(COHORT_SYNC_PREFIX):
        return cohort_sync_failure(error).reply(None)
    if is_ofrep_path(path):
        status, code = _lookup(OFREP_STATUS, error) or (400, "GENERAL")
        body: dict[str, Any] = {"errorCode": code, "errorDetails": error.detail}
        if path.startswith(OFREP_FLAG_PREFIX) and path != OFREP_FLAG_PREFIX:
            body = {"key": path.removeprefix(OFREP_FLAG_PREFIX), **body}
    elif is_sdk_path(path):
        status, body = sdk_error_body(error)
    else:
        status, body = admin_error_body(error)
    return OrjsonResponse(body, status_code=status, headers=retry_headers(error))


async def handle_ensign_error(request: Request, error: Exception) -> OrjsonResponse:
    assert isinstance(error, EnsignError)
    if is_ofrep_path(request.url.path):
        status, code = _lookup(OFREP_STATUS, error) or (400, "GENERAL")
        status, body = ofrep_error_body(request, status, code, error.detail)
    elif is_sdk_path(request.url.path):
        status, body = sdk_error_body(error)
    else:
        status, body = admin_error_body(error)
    return OrjsonResponse(body, status_code=status, headers=retry_headers(error))


def invalid_json_detail(error: RequestValidationError) -> str | None:
    """A body that is not JSON, said by line and column: FastAPI reports it with the
    character offset as the location, which reads like a field name."""
    for item in error.errors():
        if item.get("type") != "json_invalid":
            continue
        location = item.get("loc", ())
        offset = location[-1] if location and isinstance(location[-1], int) else 0
        document = error.body if isinstance(error.body, str) else ""
        line = document.count("\n", 0, offset) + 1
        column = offset - document.rfind("\n", 0, offset)
        reason = str(item.get("ctx", {}).get("error", "")).strip()
        reason = f": {reason[:1].lower()}{reason[1:]}" if reason else ""
        return f"Invalid JSON at line {line} column {column}{reason}."
    return None


async def handle_validation_error(request: Request, error: Exception) -> OrjsonResponse:
    assert isinstance(error, RequestValidationError)
    if (invalid_json := invalid_json_detail(error)) is not None:
        body = {"detail": invalid_json}
        if not is_sdk_path(request.url.path):
            body = {"error": "invalid", **body}
        return OrjsonResponse(body, status_code=400)
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
    if is_ofrep_path(request.url.path):
        return OrjsonResponse(
            {"errorCode": "GENERAL", "errorDetails": detail},
            status_code=error.status_code,
            headers=error.headers,
        )
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
    if is_ofrep_path(request.url.path):
        body = {"errorDetails": "Internal server error."}
    elif not is_sdk_path(request.url.path):
        body = {"error": "internal", **body}
    return OrjsonResponse(body, status_code=500)


# --- dashboard --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PageError:
    """What the dashboard's error page shows for an error."""

    status: int
    title: str
    message: str
    headers: dict[str, str] | None


def dashboard_error(error: EnsignError) -> PageError:
    status, title = _lookup(DASHBOARD_STATUS, error) or (400, "Something is wrong")
    return PageError(status, title, error.detail, retry_headers(error))


# --- cohort sync ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyncFailure:
    """A failed cohort sync, as Mixpanel is told of it (and as the sync log records it)."""

    status: int
    message: str
    headers: dict[str, str] | None

    def reply(self, action: str | None) -> OrjsonResponse:
        """Mixpanel's failure reply; `code` repeats the HTTP status."""
        body = {
            "action": action,
            "status": "failure",
            "error": {"message": self.message, "code": self.status},
        }
        return OrjsonResponse(body, status_code=self.status, headers=self.headers)


def cohort_sync_failure(error: Exception) -> SyncFailure:
    status = _lookup(COHORT_SYNC_STATUS, error) if isinstance(error, EnsignError) else None
    if status is None or not isinstance(error, EnsignError):
        return SyncFailure(500, COHORT_SYNC_INTERNAL_FAULT, None)
    if status == 401:
        realm = {"WWW-Authenticate": 'Basic realm="ensign cohort sync"'}
        return SyncFailure(401, error.detail, realm)
    message = COHORT_SYNC_DATABASE_FAULT if isinstance(error, DatabaseUnavailable) else error.detail
    return SyncFailure(status, message, retry_headers(error))
