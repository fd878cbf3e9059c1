"""The ASGI application: every surface mounted on one FastAPI app, made from Settings."""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import re
import signal
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware

from ensign import __version__
from ensign.errors import EnsignError
from ensign.services.realtime import RealtimeHub
from ensign.services.sign_in import SignInGate, SignInLimits
from ensign.services.snapshots import Snapshot, SnapshotCache, build_snapshot
from ensign.settings import Settings
from ensign.storage import environments as repo
from ensign.storage.base import utcnow
from ensign.storage.db import Database
from ensign.storage.identity_pool import IdentityStorePool
from ensign.web import errors, ofrep, sdk
from ensign.web.admin import router as admin_router
from ensign.web.cohorts import router as cohort_sync_router
from ensign.web.dashboard import router as dashboard_router
from ensign.web.deps import AppState
from ensign.web.limits import BodySizeLimit, JsonDepthLimit
from ensign.web.metrics import router as metrics_router
from ensign.web.responses import OrjsonResponse
from ensign.web.sdk.fastpath import FlagsFastPath
from ensign.web.text import StorablePath, reject_unstorable_text

TEXT_CHECKED = [Depends(reject_unstorable_text)]
SDK_REQUEST_HEADERS = [
    "X-Environment-Key",
    "Content-Type",
    "Flagsmith-Application-Name",
    "Flagsmith-Application-Version",
    "Flagsmith-SDK-User-Agent",
    "Authorization",
    "If-Modified-Since",
    # OFREP providers
    "X-API-Key",
    "If-None-Match",
]


def build_state(settings: Settings, *, clock: Callable[[], dt.datetime] = utcnow) -> AppState:
    db = Database(settings.database_url)

    def load(environment_id: int) -> Snapshot | None:
        with db.read_session() as session:
            rows = repo.load_environment_rows(session, environment_id)
            snapshot = None if rows is None else build_snapshot(rows)
        # A snapshot lives until its environment changes; keeping its many small objects out
        # of the cyclic collector's scans keeps collections short on the request path.
        gc.freeze()
        return snapshot

    def revisions(ids: list[int]) -> dict[int, int]:
        with db.read_session() as session:
            return repo.environment_revisions(session, ids)

    def find(key: str) -> int | None:
        with db.read_session() as session:
            return repo.find_environment_id_by_key(session, key)

    cache = SnapshotCache(load, revisions, find, poll_interval=settings.cache_poll_interval_seconds)
    sign_ins = SignInGate(
        SignInLimits(
            attempts_per_account=settings.signin_attempts_per_account,
            attempts_per_address=settings.signin_attempts_per_address,
            window_seconds=settings.signin_window_seconds,
        )
    )
    return AppState(
        settings=settings,
        db=db,
        cache=cache,
        identities=IdentityStorePool(
            db, wal_max_bytes=int(settings.sqlite_wal_max_mb * 1024 * 1024)
        ),
        sign_ins=sign_ins,
        realtime=RealtimeHub(
            cache,
            max_connections=settings.realtime_max_connections,
            # Once every process has seen the change (see RealtimeHub).
            repeat_after_seconds=2 * settings.cache_poll_interval_seconds + 0.5,
        ),
        clock=clock,
    )


@contextmanager
def on_exit_signal(callback: Callable[[], None]) -> Iterator[None]:
    """Call `callback` on the loop when the server is told to stop (SIGINT, SIGTERM), then let
    the server's own handler act.

    uvicorn waits for every open response before its shutdown, and a realtime stream never
    ends by itself, so the streams must be ended when the signal arrives rather than at the
    lifespan's end, which comes only after them. Outside the main thread (an app run by a
    test client) there are no signals to hear.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()

    def chain(handler: Callable[[int, Any], Any]) -> Callable[[int, Any], None]:
        def chained(signum: int, frame: Any) -> None:
            loop.call_soon_threadsafe(callback)
            handler(signum, frame)

        return chained

    replaced: dict[int, Callable[[int, Any], Any]] = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        handler = signal.getsignal(sig)
        if callable(handler):
            replaced[sig] = handler
            signal.signal(sig, chain(handler))
    try:
        yield
    finally:
        for number, previous in replaced.items():
            signal.signal(number, previous)


def create_app(
    settings: Settings | None = None,
    *,
    state: AppState | None = None,
) -> FastAPI:
    """The Ensign app. The database must already be migrated (`ensign serve` does it)."""
    settings = settings or (state.settings if state else Settings())
    app_state = state or build_state(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        gc.freeze()  # everything imported at start-up lives as long as the process
        app_state.cache.start()
        app_state.realtime.start()
        try:
            with on_exit_signal(app_state.realtime.close):
                yield
        finally:
            app_state.realtime.close()
            app_state.cache.stop()
            if state is None:
                app_state.identities.shutdown()
                app_state.sign_ins.close()
                app_state.db.dispose()

    app = FastAPI(
        title="Ensign",
        version=__version__,
        description="Feature flags and remote config, compatible with the Flagsmith SDKs.",
        openapi_url="/api/v1/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        default_response_class=OrjsonResponse,
        lifespan=lifespan,
        redirect_slashes=False,
    )
    app.state.ensign = app_state
    app.add_exception_handler(EnsignError, errors.handle_ensign_error)
    app.add_exception_handler(RequestValidationError, errors.handle_validation_error)
    app.add_exception_handler(StarletteHTTPException, errors.handle_http_error)
    app.add_exception_handler(Exception, errors.handle_unexpected)
    # Routes are matched in order, one pattern at a time: the SDK API, the hot path, goes
    # before FastAPI's own documentation routes and the hundreds of admin and dashboard ones.
    app.router.routes[0:0] = [*sdk.routes, *ofrep.routes]
    app.include_router(admin_router, dependencies=TEXT_CHECKED)
    app.include_router(cohort_sync_router)
    app.include_router(metrics_router)
    app.include_router(dashboard_router)
    origins = [o.strip() for o in settings.cors_allow_origins.split(",") if o.strip()]
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_methods=["*"],
        allow_headers=SDK_REQUEST_HEADERS,
        expose_headers=["X-Flagsmith-Document-Updated-At", "Retry-After", "ETag"],
        max_age=86400,
    )
    # A full SDK event buffer (1,000 events with traits) can pass the general limit.
    events_limit = tuple((path, settings.max_events_body_bytes) for path in sdk.EVENTS_PATHS)
    app.add_middleware(StorablePath, routes=[*sdk.routes, *ofrep.routes])
    app.add_middleware(JsonDepthLimit)  # inside the size limit: it reads bounded bodies
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes, larger=events_limit)
    app.add_middleware(FlagsFastPath, state=app_state)  # outermost: see its docstring

    app.openapi = lambda: _openapi_with_sdk(app)  # type: ignore[method-assign]

    @app.get("/health", include_in_schema=False)
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def _openapi_with_sdk(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema of the admin API, plus the SDK routes (plain Starlette routes, so
    FastAPI does not see them): each with the environment key it needs, in a header or the path."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        for path, method, summary in sdk.documented:
            schema["paths"].setdefault(path, {})[method.lower()] = {
                "tags": ["SDK"],
                "summary": summary,
                "operationId": re.sub(r"\W+", "_", f"sdk_{method}{path}").strip("_").lower(),
                "parameters": [
                    {
                        "name": "key" if "{key}" in path else "X-Environment-Key",
                        "in": "path" if "{key}" in path else "header",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                "responses": {"200": {"description": "As the Flagsmith SDK API answers."}},
            }
        for path, method, summary in ofrep.documented:
            schema["paths"].setdefault(path, {})[method.lower()] = {
                "tags": ["OFREP"],
                "summary": summary,
                "operationId": re.sub(r"\W+", "_", f"{method}{path}").strip("_").lower(),
                "security": [{"BearerAuth": []}, {"ApiKeyAuth": []}],
                "responses": {
                    "200": {"description": "As OFREP v0.3.0 (open-feature/protocol) answers."}
                },
            }
        schema.setdefault("components", {}).setdefault("securitySchemes", {}).update(
            {
                "BearerAuth": {"type": "http", "scheme": "bearer"},
                "ApiKeyAuth": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            }
        )
        app.openapi_schema = schema
    return app.openapi_schema
