"""Every error class, answered on every surface in that surface's shape (`web/errors.py`)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient

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
)
from ensign.web.dashboard.core import DashboardRoute
from ensign.web.errors import cohort_sync_failure
from tests.dashboard.conftest import PASSWORD, Browser, user

__all__ = ["user"]

ERRORS: dict[str, EnsignError] = {
    "not_found": NotFound("No such thing."),
    "conflict": Conflict("Already taken."),
    "invalid": InvalidInput("name: too long.", field="name"),
    "unauthenticated": AuthenticationFailed("Who are you?"),
    "forbidden": PermissionDenied("Not for you."),
    "rate_limited": RateLimited("Slow down.", retry_after_seconds=7),
    "unavailable": DatabaseUnavailable("The database is restarting."),
    "at_capacity": AtCapacity("Too many streams.", retry_after_seconds=3),
}


def _raise(name: str) -> None:
    raise ERRORS[name]


@pytest.fixture
def app_client(client: TestClient) -> TestClient:
    router = APIRouter()
    router.add_api_route("/api/v1/flags/raise/{name}", _raise)
    router.add_api_route("/api/v1/raise/{name}", _raise)
    client.app.include_router(router)  # type: ignore[attr-defined]
    return client


@pytest.mark.parametrize(
    ("name", "status", "body", "retry_after"),
    [
        ("not_found", 404, {"detail": "No such thing."}, None),
        ("conflict", 400, {"detail": "Already taken."}, None),
        ("invalid", 400, {"name": ["name: too long."]}, None),
        ("unauthenticated", 403, {"detail": "Who are you?"}, None),
        ("forbidden", 403, {"detail": "Not for you."}, None),
        ("rate_limited", 429, {"detail": "Slow down."}, "7"),
        ("unavailable", 503, {"detail": "The database is restarting."}, "5"),
        ("at_capacity", 503, {"detail": "Too many streams."}, "3"),
    ],
)
def test_sdk_surface__each_error__reference_shape(
    app_client: TestClient, name: str, status: int, body: Any, retry_after: str | None
) -> None:
    response = app_client.get(f"/api/v1/flags/raise/{name}")
    assert (response.status_code, response.json()) == (status, body)
    assert response.headers.get("retry-after") == retry_after


@pytest.mark.parametrize(
    ("name", "status", "retry_after"),
    [
        ("not_found", 404, None),
        ("conflict", 409, None),
        ("invalid", 400, None),
        ("unauthenticated", 401, None),
        ("forbidden", 403, None),
        ("rate_limited", 429, "7"),
        ("unavailable", 503, "5"),
        ("at_capacity", 503, "3"),
    ],
)
def test_admin_surface__each_error__code_and_detail(
    app_client: TestClient, name: str, status: int, retry_after: str | None
) -> None:
    response = app_client.get(f"/api/v1/raise/{name}")
    error = ERRORS[name]
    expected: dict[str, Any] = {"error": name, "detail": error.detail}
    if error.field:
        expected["field"] = error.field
    assert (response.status_code, response.json()) == (status, expected)
    assert response.headers.get("retry-after") == retry_after


@pytest.fixture
def dashboard(client: TestClient, user: str) -> Browser:
    router = APIRouter(route_class=DashboardRoute)
    router.add_api_route("/raise/{name}", _raise)
    client.app.include_router(router)  # type: ignore[attr-defined]
    browser = Browser(client)
    browser.refresh_csrf()
    assert browser.post("/sign-in", {"email": user, "password": PASSWORD}).status_code == 303
    return browser


@pytest.mark.parametrize(
    ("name", "status", "title", "retry_after"),
    [
        ("not_found", 404, "Something is wrong", None),
        ("conflict", 409, "Something is wrong", None),
        ("invalid", 400, "Something is wrong", None),
        ("unauthenticated", 401, "Something is wrong", None),
        ("forbidden", 403, "Something is wrong", None),
        ("rate_limited", 429, "Too many attempts", "7"),
        ("unavailable", 503, "Try again in a moment", "5"),
        ("at_capacity", 503, "Try again in a moment", "3"),
    ],
)
def test_dashboard_surface__each_error__error_page(
    dashboard: Browser, name: str, status: int, title: str, retry_after: str | None
) -> None:
    response = dashboard.get(f"/raise/{name}")
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    assert f"<h1>{title}</h1>" in response.text
    assert ERRORS[name].detail in response.text
    assert response.headers.get("retry-after") == retry_after


@pytest.mark.parametrize(
    ("name", "status", "message", "headers"),
    [
        ("invalid", 400, "name: too long.", {}),
        (
            "unauthenticated",
            401,
            "Who are you?",
            {"www-authenticate": 'Basic realm="ensign cohort sync"'},
        ),
        ("rate_limited", 429, "Slow down.", {"retry-after": "7"}),
        (
            "unavailable",
            503,
            "Temporary database failure; please retry.",
            {"retry-after": "5"},
        ),
        ("at_capacity", 503, "Too many streams.", {"retry-after": "3"}),
        # Anything else is a fault of ours: a 5xx, so that Mixpanel retries instead of pausing.
        ("not_found", 500, "Internal error; please retry.", {}),
        ("conflict", 500, "Internal error; please retry.", {}),
        ("forbidden", 500, "Internal error; please retry.", {}),
    ],
)
def test_cohort_sync_surface__each_error__mixpanel_failure(
    name: str, status: int, message: str, headers: dict[str, str]
) -> None:
    response = cohort_sync_failure(ERRORS[name]).reply("members")
    assert response.status_code == status
    assert response.body == (
        b'{"action":"members","status":"failure","error":{"message":"%s","code":%d}}'
        % (message.encode(), status)
    )
    assert {
        k: v for k, v in response.headers.items() if k in ("retry-after", "www-authenticate")
    } == headers


def test_cohort_sync_surface__unexpected_exception__500() -> None:
    failure = cohort_sync_failure(RuntimeError("a bug"))
    assert (failure.status, failure.message) == (500, "Internal error; please retry.")
