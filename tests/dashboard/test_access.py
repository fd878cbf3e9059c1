"""Every dashboard route: signed out → the sign-in page; a wrong CSRF token → 403."""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute

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
from tests.dashboard.conftest import Browser

AREAS = (
    auth,
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
)
PUBLIC = {"/sign-in"}


def _routes(method: str) -> list[str]:
    paths = []
    for area in AREAS:
        for route in area.router.routes:
            assert isinstance(route, APIRoute)
            if method in route.methods and route.path not in PUBLIC:
                paths.append(route.path)
    return sorted(set(paths))


def _concrete(path: str) -> str:
    path = path.replace("{kind}", "mixpanel")
    return re.sub(r"\{[a-z_]+\}", "1", path)


GETS = _routes("GET")
POSTS = _routes("POST")


def test_routes__are_enumerated__cover_every_area() -> None:
    assert len(GETS) >= 15
    assert len(POSTS) >= 30


@pytest.mark.parametrize("path", GETS)
def test_page__signed_out__redirects_to_sign_in(anonymous: Browser, path: str) -> None:
    response = anonymous.get(_concrete(path))
    assert response.status_code == 303
    assert response.headers["location"].startswith("/sign-in")


@pytest.mark.parametrize("path", POSTS)
def test_action__signed_out__redirects_to_sign_in(anonymous: Browser, path: str) -> None:
    response = anonymous.post(_concrete(path))
    assert response.status_code == 303
    assert response.headers["location"].startswith("/sign-in")


@pytest.mark.parametrize("path", POSTS)
def test_action__wrong_csrf_token__is_forbidden(signed_in: Browser, path: str) -> None:
    signed_in.csrf = "not-the-token"
    response = signed_in.post(_concrete(path))
    assert response.status_code == 403
    assert "security token" in response.text


@pytest.mark.parametrize("path", ["/projects", "/sign-out"])
def test_action__missing_csrf_token__is_forbidden(signed_in: Browser, path: str) -> None:
    response = signed_in.client.post(path, data={"name": "x"}, follow_redirects=False)
    assert response.status_code == 403


def test_sign_in__signed_out__htmx_request_gets_a_redirect_header(anonymous: Browser) -> None:
    response = anonymous.get("/projects", headers={"HX-Request": "true"})
    assert response.status_code == 401
    assert response.headers["HX-Redirect"] == "/sign-in?next=/projects"


def test_static__signed_out__is_served(anonymous: Browser) -> None:
    assert anonymous.get("/static/htmx.min.js").status_code == 200
    css = anonymous.get("/static/dashboard.css")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")


def test_sign_in__wrong_password__message_next_to_the_field(anonymous: Browser, user: str) -> None:
    response = anonymous.post("/sign-in", {"email": user, "password": "wrong password"})
    assert response.status_code == 400
    assert 'id="password-error"' in response.text
    assert "Wrong email or password." in response.text


def test_sign_in__unknown_email__same_message(anonymous: Browser, user: str) -> None:
    response = anonymous.post("/sign-in", {"email": "nobody@example.com", "password": "x" * 10})
    assert response.status_code == 400
    assert "Wrong email or password." in response.text


def test_sign_in__next_elsewhere__stays_on_this_site(anonymous: Browser, user: str) -> None:
    from tests.dashboard.conftest import PASSWORD

    response = anonymous.post(
        "/sign-in", {"email": user, "password": PASSWORD, "next": "//evil.example/"}
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/"


def test_sign_in__next_path__returns_there(anonymous: Browser, user: str) -> None:
    from tests.dashboard.conftest import PASSWORD

    response = anonymous.post("/sign-in", {"email": user, "password": PASSWORD, "next": "/audit"})
    assert response.headers["location"] == "/audit"


def test_sign_out__signed_in__ends_the_session(signed_in: Browser) -> None:
    response = signed_in.post("/sign-out")
    assert response.status_code == 303
    assert signed_in.get("/projects").status_code == 303


def test_session__tampered_cookie__is_signed_out(signed_in: Browser) -> None:
    cookie = signed_in.client.cookies.get("ensign_session")
    assert cookie
    signed_in.client.cookies = {"ensign_session": cookie[:-3] + "abc"}
    assert signed_in.get("/projects").status_code == 303


def test_session__cookie__is_http_only_and_same_site(anonymous: Browser) -> None:
    anonymous.client.cookies = {}
    header = anonymous.client.get("/sign-in").headers["set-cookie"]
    assert "HttpOnly" in header
    assert "samesite=lax" in header.lower()


def test_admin_api__dashboard_cookie__does_not_authenticate(signed_in: Browser) -> None:
    response = signed_in.client.get("/api/v1/projects/")
    assert response.status_code == 401


def test_sdk_and_docs__unaffected(signed_in: Browser) -> None:
    assert signed_in.get("/docs").status_code == 200
    assert signed_in.get("/api/v1/openapi.json").status_code == 200
    assert signed_in.get("/api/v1/nothing-here").json()["error"] == "not_found"
