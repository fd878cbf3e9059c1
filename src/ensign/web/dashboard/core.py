"""The dashboard's plumbing: signed session cookies, CSRF checks, sign-in enforcement,
template rendering and form errors. Every dashboard route goes through `DashboardRoute`."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from ensign.errors import DatabaseUnavailable, EnsignError, RateLimited
from ensign.services import accounts
from ensign.services.accounts import UserPrincipal
from ensign.web import errors
from ensign.web.dashboard.headers import SECURITY_HEADERS
from ensign.web.dashboard.markup import inline_code
from ensign.web.deps import AppState
from ensign.web.text import check_fields

HERE = Path(__file__).parent
COOKIE = "ensign_session"
SESSION_MAX_AGE_SECONDS = 14 * 24 * 3600
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PUBLIC_PATHS = frozenset({"/sign-in"})

templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.filters["code"] = inline_code


class SignInRequired(Exception):
    """No signed-in user; the route wrapper answers with the sign-in page."""


class CsrfFailed(Exception):
    """A state-changing request without the session's CSRF token."""


@dataclass
class Dash:
    """Everything a dashboard request knows: the app state, the signed-in user (if any), the
    session cookie's contents and the submitted form."""

    state: AppState
    request: Request
    session: dict[str, Any]
    form: FormData | None
    principal: UserPrincipal | None = None
    dirty: bool = False

    @property
    def user(self) -> UserPrincipal:
        if self.principal is None:
            raise SignInRequired
        return self.principal

    @property
    def csrf(self) -> str:
        cookie = self.session
        token = cookie.get("csrf")
        if not isinstance(token, str):
            token = secrets.token_urlsafe(32)
            self.session["csrf"] = token
            self.dirty = True
        return token

    def value(self, name: str, default: str = "") -> str:
        if self.form is None:
            return self.request.query_params.get(name, default)
        raw = self.form.get(name, default)
        return raw if isinstance(raw, str) else default

    def values(self, name: str) -> list[str]:
        if self.form is None:
            return self.request.query_params.getlist(name)
        return [v for v in self.form.getlist(name) if isinstance(v, str)]

    @property
    def session_token(self) -> str | None:
        """The server-side session this cookie names (see `accounts.start_session`)."""
        cookie = self.session
        token = cookie.get("sid")
        return token if isinstance(token, str) else None

    def sign_in(self, token: str) -> None:
        # A fresh cookie (and CSRF token) on sign-in, so nothing carries over from before.
        self.session = {"sid": token, "csrf": secrets.token_urlsafe(32)}
        self.dirty = True

    def sign_out(self) -> None:
        self.session = {"csrf": secrets.token_urlsafe(32)}
        self.principal = None
        self.dirty = True

    def flash(self, message: str) -> None:
        self.session["flash"] = message
        self.dirty = True

    def pop_flash(self) -> str | None:
        message = self.session.pop("flash", None)
        if message is not None:
            self.dirty = True
        return message if isinstance(message, str) else None


async def get_dash(request: Request) -> Dash:
    dash: Dash = request.state.dash
    return dash


DashContext = Annotated[Dash, Depends(get_dash)]


def _serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt="ensign.dashboard.session")


async def _secret(request: Request, state: AppState) -> str:
    secret: str | None = getattr(request.app.state, "dashboard_secret", None)
    if secret is None:
        secret = await run_in_threadpool(_load_secret, state)
        request.app.state.dashboard_secret = secret
    return secret


def _load_secret(state: AppState) -> str:
    with state.units.write() as unit:
        return accounts.session_secret(unit.session, state.settings.secret_key)


async def _load_principal(state: AppState, token: str | None) -> UserPrincipal | None:
    if token is None:
        return None

    def load() -> UserPrincipal | None:
        with state.units.read() as unit:
            return accounts.principal_for_session(unit.session, token)

    return await run_in_threadpool(load)


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def _sign_in_redirect(request: Request) -> Response:
    target = request.url.path
    if request.url.query:
        target += "?" + request.url.query
    location = "/sign-in" if target in ("/", "/sign-out") else f"/sign-in?next={quote(target)}"
    if is_htmx(request):
        return Response(status_code=401, headers={"HX-Redirect": location})
    return RedirectResponse(location, status_code=303)


def error_page(
    request: Request,
    status: int,
    title: str,
    message: str,
    headers: Mapping[str, str] | None = None,
) -> Response:
    return templates.TemplateResponse(
        request,
        "pages/error.html",
        {"title": title, "message": message, "dash": getattr(request.state, "dash", None)},
        status_code=status,
        headers=headers,
    )


def ensign_error_page(request: Request, error: EnsignError) -> Response:
    page = errors.dashboard_error(error)
    return error_page(request, page.status, page.title, page.message, page.headers)


class DashboardRoute(APIRoute):
    """Loads the session, enforces sign-in and CSRF, renders errors as pages, and writes the
    session cookie back when it changed."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        inner = super().get_route_handler()

        async def handler(request: Request) -> Response:
            state: AppState = request.app.state.ensign
            try:
                secret = await _secret(request, state)
            except EnsignError as error:
                # No secret, no session cookie to write: answer the page alone.
                return ensign_error_page(request, error)
            session = _read_cookie(request, secret)
            form = None if request.method in SAFE_METHODS else await request.form()
            dash = Dash(state, request, session, form)
            request.state.dash = dash
            try:
                dash.principal = await _load_principal(state, dash.session_token)
                if dash.principal is None and dash.session_token is not None:
                    dash.session.pop("sid")  # ended or expired: forget it
                    dash.dirty = True
                if form is not None:
                    _check_csrf(request, dash, form)
                    check_fields(form.multi_items())
                check_fields(request.query_params.multi_items())
                if dash.principal is None and request.url.path not in PUBLIC_PATHS:
                    raise SignInRequired
                response = await inner(request)
            except SignInRequired:
                response = _sign_in_redirect(request)
            except CsrfFailed:
                response = error_page(
                    request,
                    403,
                    "Form expired",
                    "The form's security token was missing or wrong. Reload the page and try "
                    "again.",
                )
            except EnsignError as error:
                response = ensign_error_page(request, error)
            if dash.dirty or COOKIE not in request.cookies:
                dash.csrf  # noqa: B018  (make sure every session carries a token)
                _write_cookie(request, response, secret, dash.session)
            response.headers.setdefault("Cache-Control", "no-store")
            response.headers.update(SECURITY_HEADERS)
            return response

        return handler


def _read_cookie(request: Request, secret: str) -> dict[str, Any]:
    raw = request.cookies.get(COOKIE)
    if not raw:
        return {}
    try:
        data = _serializer(secret).loads(raw, max_age=SESSION_MAX_AGE_SECONDS)
    except BadSignature:
        return {}
    return data if isinstance(data, dict) else {}


def _write_cookie(request: Request, response: Response, secret: str, data: dict[str, Any]) -> None:
    response.set_cookie(
        COOKIE,
        _serializer(secret).dumps(data),
        max_age=SESSION_MAX_AGE_SECONDS,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )


def _check_csrf(request: Request, dash: Dash, form: FormData) -> None:
    cookie = dash.session
    expected = cookie.get("csrf")
    given = request.headers.get(CSRF_HEADER) or form.get(CSRF_FIELD)
    if (
        not isinstance(expected, str)
        or not isinstance(given, str)
        or not secrets.compare_digest(expected.encode(), given.encode())
    ):
        raise CsrfFailed


# --- rendering ------------------------------------------------------------------------------


@dataclass
class FormErrors:
    """Messages per field, shown next to the field they concern."""

    fields: dict[str, str] = field(default_factory=dict)

    def add(self, error: EnsignError, default_field: str = "__all__") -> None:
        if isinstance(error, DatabaseUnavailable | RateLimited):
            # No change to the form fixes these: the error page answers them, with its status.
            raise error
        name = error.field or default_field
        message = error.detail
        prefix = f"{name}: "
        if message.startswith(prefix):
            message = message[len(prefix) :]
        self.fields.setdefault(name, message[:1].upper() + message[1:])

    def set(self, name: str, message: str) -> None:
        self.fields.setdefault(name, message)

    def __bool__(self) -> bool:
        return bool(self.fields)

    def get(self, name: str) -> str | None:
        return self.fields.get(name)


def render(
    dash: Dash,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
) -> HTMLResponse:
    full: dict[str, Any] = {
        "dash": dash,
        "user": dash.principal,
        "csrf": dash.csrf,
        "flash": dash.pop_flash() if not is_htmx(dash.request) else None,
        "errors": FormErrors(),
        **(context or {}),
    }
    response: HTMLResponse = templates.TemplateResponse(
        dash.request, template, full, status_code=status_code
    )
    return response


def redirect(location: str) -> Response:
    return RedirectResponse(location, status_code=303)
