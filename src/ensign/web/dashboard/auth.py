"""Sign-in, sign-out, the home page and the dashboard's static files."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from fastapi import APIRouter, Response
from starlette.concurrency import run_in_threadpool

from ensign.errors import AuthenticationFailed, RateLimited
from ensign.services import accounts
from ensign.web import errors as web_errors
from ensign.web.dashboard.core import (
    HERE,
    Dash,
    DashboardRoute,
    DashContext,
    FormErrors,
    redirect,
    render,
)

router = APIRouter(route_class=DashboardRoute)

# A refused attempt is answered after a pause: a waiting request costs no CPU, so a client
# that loops on refusals makes the server do almost nothing.
REFUSAL_DELAY_SECONDS = 1.0

STATIC = {
    "htmx.min.js": "text/javascript",
    "dashboard.css": "text/css",
    "dashboard.js": "text/javascript",
    "favicon.svg": "image/svg+xml",
}


def _safe_next(target: str) -> str:
    # Only same-site paths, so the sign-in form cannot send anyone elsewhere.
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


@router.get("/sign-in")
def sign_in_page(dash: DashContext) -> Response:
    if dash.principal is not None:
        return redirect(_safe_next(dash.value("next", "/")))
    return render(dash, "pages/sign_in.html", {"next": dash.value("next", "/"), "email": ""})


@router.post("/sign-in")
async def sign_in(dash: DashContext) -> Response:
    email, password = dash.value("email"), dash.value("password")
    target = _safe_next(dash.value("next", "/"))
    errors = FormErrors()
    if not email.strip():
        errors.set("email", "Enter your email address.")
    if not password:
        errors.set("password", "Enter your password.")
    status_code, headers = 400, None
    if not errors:
        try:
            token = await _check_and_start_session(dash, email, password)
        except AuthenticationFailed as error:
            errors.set("password", error.detail)
        except RateLimited as error:
            await asyncio.sleep(min(REFUSAL_DELAY_SECONDS, error.retry_after_seconds))
            errors.set("password", error.detail)
            status_code, headers = 429, web_errors.retry_headers(error)
        else:
            dash.sign_in(token)
            return redirect(target)
    response = render(
        dash,
        "pages/sign_in.html",
        {"errors": errors, "email": email, "next": target},
        status_code=status_code,
    )
    response.headers.update(headers or {})
    return response


async def _check_and_start_session(dash: Dash, email: str, password: str) -> str:
    """Check the password with no transaction open (Argon2 is slow on purpose, and on SQLite
    a write transaction would stop every other writer meanwhile), then record the sign-in in
    a short one."""
    state, gate = dash.state, dash.state.sign_ins
    gate.admit(email, dash.request.client.host if dash.request.client else "")

    def read() -> accounts.Credentials | None:
        with state.units.read() as unit:
            return accounts.credentials_for(unit.session, email)

    credentials = await run_in_threadpool(read)
    password_hash = await gate.verify(credentials, password)
    gate.succeeded(email)
    assert credentials is not None  # verify() refuses unknown emails

    def write() -> str:
        with state.units.write() as unit:
            return accounts.start_session(unit.session, credentials, password_hash)

    return await run_in_threadpool(write)


@router.post("/sign-out")
def sign_out(dash: DashContext) -> Response:
    token = dash.session_token
    if token is not None:
        with dash.state.units.write() as unit:
            accounts.end_session(unit.session, token)
    dash.sign_out()
    return redirect("/sign-in")


@router.get("/")
def home(dash: DashContext) -> Response:
    dash.user  # noqa: B018
    return redirect("/projects")


def _static(name: str) -> Response:
    path: Path = HERE / "static" / name
    return Response(
        path.read_bytes(),
        media_type=STATIC[name],
        headers={"Cache-Control": "public, max-age=3600"},
    )


def _serve(name: str) -> Callable[[], Response]:
    def serve() -> Response:
        return _static(name)

    return serve


# Static files need no session: plain routes, outside the dashboard's route class.
static_router = APIRouter()
for _name in STATIC:
    static_router.add_api_route(
        f"/static/{_name}", _serve(_name), methods=["GET", "HEAD"], name=f"static_{_name}"
    )
# Browsers ask for /favicon.ico whatever the page links to (before the link is read, and for
# pages that are not HTML): the same icon, so the log holds no 404 for it.
static_router.add_api_route(
    "/favicon.ico", _serve("favicon.svg"), methods=["GET", "HEAD"], name="favicon"
)
