"""Sign-in, sign-out, the home page and the dashboard's static files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi import APIRouter, Response

from ensign.errors import AuthenticationFailed
from ensign.services import accounts
from ensign.web.dashboard.core import (
    HERE,
    DashboardRoute,
    DashContext,
    FormErrors,
    redirect,
    render,
)

router = APIRouter(route_class=DashboardRoute)

STATIC = {
    "htmx.min.js": "text/javascript",
    "dashboard.css": "text/css",
    "dashboard.js": "text/javascript",
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
def sign_in(dash: DashContext) -> Response:
    email, password = dash.value("email"), dash.value("password")
    target = _safe_next(dash.value("next", "/"))
    errors = FormErrors()
    if not email.strip():
        errors.set("email", "Enter your email address.")
    if not password:
        errors.set("password", "Enter your password.")
    if not errors:
        try:
            with dash.state.write() as session:
                user = accounts.authenticate(session, email=email, password=password)
                principal = accounts.principal_for(user)
        except AuthenticationFailed as error:
            errors.set("password", error.detail)
        else:
            dash.sign_in(principal)
            return redirect(target)
    return render(
        dash,
        "pages/sign_in.html",
        {"errors": errors, "email": email, "next": target},
        status_code=400,
    )


@router.post("/sign-out")
def sign_out(dash: DashContext) -> Response:
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
