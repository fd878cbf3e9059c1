"""The Flagsmith SDK API (contract §1 to §4): the routes every official SDK calls.

Each route opens the environment its key names, parses the call into a request
(`services.sdk_requests`, not pydantic models: the reference accepts loosely typed input and
answers in its own error shapes, and this is the hot path), calls the one service function of
its use case, on the identify path's database threads where it touches the database, and
renders the answer with `wire`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ensign.errors import AuthenticationFailed, InvalidInput, PermissionDenied
from ensign.services import (
    evaluation_counts,
    event_json,
    events,
    flags,
    identify,
    sdk_requests,
    traits,
)
from ensign.services.event_requests import EventLimits
from ensign.services.snapshots import Snapshot
from ensign.web.deps import AppState
from ensign.web.sdk import wire

# Plain Starlette routes rather than FastAPI's: these are the hot path, and FastAPI's
# per-request dependency solving costs more than the work of a cached `GET /flags/`.
routes: list[BaseRoute] = []
# (path, method, summary) of each route, for the OpenAPI document.
documented: list[tuple[str, str, str]] = []
PREFIX = "/api/v1"

UPDATED_AT = "X-Flagsmith-Document-Updated-At"


def sdk_route(path: str, methods: list[str], summary: str) -> Callable[[Any], Any]:
    """Register a route with and without its trailing slash: SDKs send the slash, people
    typing curl often do not, and a redirect would turn a POST into a GET in some clients."""

    def register(endpoint: Any) -> Any:
        routes.append(Route(PREFIX + path, endpoint, methods=methods))
        if path.endswith("/"):
            routes.append(Route(PREFIX + path.rstrip("/"), endpoint, methods=methods))
        documented.extend((PREFIX + path, method, summary) for method in methods)
        return endpoint

    return register


def json_response(
    body: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return Response(content, status_code=status, media_type="application/json", headers=headers)


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.ensign
    return state


async def environment_for(request: Request, *, server_only: bool = False) -> tuple[Snapshot, bool]:
    """The snapshot the request's environment key opens, and whether it is a server key."""
    key = request.headers.get("x-environment-key", "")
    if not key or (server_only and not key.startswith("ser.")):
        raise AuthenticationFailed("Invalid or missing Environment key")
    state = app_state(request)
    snapshot = state.cache.peek(key)
    if snapshot is None:
        snapshot = await run_in_threadpool(state.cache.for_key, key)
    if snapshot is None:
        raise AuthenticationFailed("Invalid or missing Environment Key")
    if snapshot.stop_serving_flags:
        raise PermissionDenied("Organisation is disabled from serving flags.")
    return snapshot, key.startswith("ser.")


async def json_body(request: Request) -> Any:
    raw = await request.body()
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        return {k: v for k, v in form.items() if isinstance(v, str)}
    if not raw.strip():
        return {}
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise InvalidInput(f"JSON parse error - {error}") from None


# --- flags ------------------------------------------------------------------------------------


@sdk_route("/flags/", ["GET"], summary="Environment flags (`?feature=` for one)")
async def environment_flags(request: Request) -> Response:
    snapshot, is_server = await environment_for(request)
    feature = request.query_params.get("feature")
    if feature is not None:
        flag = flags.environment_flag(snapshot, feature, is_server=is_server)
        return json_response(wire.environment_flag(snapshot, flag))
    return json_response(
        wire.environment_flags_body(snapshot, is_server=is_server),
        headers={UPDATED_AT: snapshot.updated_at_header},
    )


async def deprecated_identity_flags(request: Request) -> Response:
    """The old `GET /flags/<identifier>` form: the identity's flags as a bare list."""
    snapshot, is_server = await environment_for(request)
    state = app_state(request)
    query = sdk_requests.IdentityFlagsRequest(
        sdk_requests.check_identifier(request.path_params["identifier"], state.sdk_limits),
        is_server,
        recorded=False,
    )
    result = await state.run_identity_work(
        lambda: identify.identity_flags(state.identities, snapshot, query, state.clock())
    )
    return json_response(wire.identity_flags(snapshot, result.served, result.experiments))


# --- identities -------------------------------------------------------------------------------


@sdk_route(
    "/identities/", ["GET"], summary="Identity flags (`?identifier=`, `&transient=`, `&feature=`)"
)
async def get_identity(request: Request) -> Response:
    snapshot, is_server = await environment_for(request)
    state = app_state(request)
    query = sdk_requests.identity_flags_request(
        request.query_params, state.sdk_limits, is_server=is_server
    )
    if query is None:
        # The reference answers 200 here, and clients rely on it.
        return json_response({"detail": "Missing identifier"})
    result = await state.run_identity_work(
        lambda: identify.identity_flags(state.identities, snapshot, query, state.clock())
    )
    if query.feature is not None:
        flag = result.served[0]
        return json_response(wire.identity_flag(snapshot, flag, result.experiments.get(flag.name)))
    return json_response(
        wire.identity_body(snapshot, result), headers={UPDATED_AT: snapshot.updated_at_header}
    )


@sdk_route("/identities/", ["POST"], summary="Identify with traits")
async def post_identity(request: Request) -> Response:
    snapshot, is_server = await environment_for(request)
    state = app_state(request)
    body = sdk_requests.identify_request(
        await json_body(request), state.sdk_limits, is_server=is_server
    )
    result = await state.run_identity_work(
        lambda: identify.identify(state.identities, snapshot, body, state.clock())
    )
    return json_response(
        wire.identity_body(snapshot, result), headers={UPDATED_AT: snapshot.updated_at_header}
    )


# --- traits -----------------------------------------------------------------------------------


@sdk_route("/traits/", ["POST"], summary="Set one trait")
async def set_trait(request: Request) -> Response:
    snapshot, is_server = await environment_for(request)
    state = app_state(request)
    body = sdk_requests.trait_request(
        await json_body(request), state.sdk_limits, is_server=is_server
    )
    await state.run_identity_work(lambda: traits.set_traits(state.identities, snapshot, body))
    return json_response(wire.trait_written(body.traits[0]))


@sdk_route("/traits/bulk/", ["PUT"], summary="Set many traits")
async def bulk_traits(request: Request) -> Response:
    snapshot, is_server = await environment_for(request)
    state = app_state(request)
    body = sdk_requests.bulk_traits_request(
        await json_body(request), state.sdk_limits, is_server=is_server
    )
    await run_in_threadpool(traits.set_traits, state.identities, snapshot, body)
    return json_response([wire.trait_written(trait) for trait in body.traits])


@sdk_route("/traits/increment-value/", ["POST"], summary="Increment an integer trait")
async def increment_trait(request: Request) -> Response:
    snapshot, is_server = await environment_for(request)
    state = app_state(request)
    body = sdk_requests.increment_request(
        await json_body(request), state.sdk_limits, is_server=is_server
    )
    value = await state.run_identity_work(
        lambda: traits.increment_trait(state.identities, snapshot, body)
    )
    return json_response(wire.trait_incremented(body, value))


# --- local evaluation and analytics -------------------------------------------------------------


@sdk_route("/environment-document/", ["GET"], summary="Environment document (server keys only)")
async def environment_document(request: Request) -> Response:
    snapshot, _ = await environment_for(request, server_only=True)
    updated_at = snapshot.updated_at
    headers = {
        UPDATED_AT: snapshot.updated_at_header,
        "Last-Modified": format_datetime(updated_at.astimezone(dt.UTC), usegmt=True),
    }
    since = request.headers.get("if-modified-since")
    if since:
        try:
            since_at = parsedate_to_datetime(since)
        except (TypeError, ValueError, IndexError):
            since_at = None
        # HTTP dates have whole seconds; anything changed after that second is newer.
        if (
            since_at is not None
            and since_at.tzinfo is not None
            and since_at >= updated_at.replace(microsecond=0)
        ):
            return Response(status_code=304, headers=headers)
    return json_response(snapshot.document_bytes, headers=headers)


@sdk_route("/analytics/flags/", ["POST"], summary="Flag evaluation counts")
async def flag_analytics(request: Request) -> Response:
    snapshot, _ = await environment_for(request)
    state = app_state(request)
    body = sdk_requests.evaluation_counts_request(await json_body(request))
    if body.counts:
        await run_in_threadpool(
            evaluation_counts.count_evaluations, state.db, snapshot, body, state.clock()
        )
    return Response(status_code=200)


# --- events -------------------------------------------------------------------------------------


async def receive_events(request: Request) -> Response:
    """The SDKs' event pipeline (`enable_events=True`): 202 once the batch's good events are
    committed, with each refused event's index, field and reason; 429 over the key's rate."""
    snapshot, _ = await environment_for(request)
    state = app_state(request)
    raw = await request.body()
    try:
        body = event_json.decode(raw) if raw.strip() else {}
    except event_json.NotJson as error:
        raise InvalidInput(f"JSON parse error - {error}") from None
    key = request.headers.get("x-environment-key", "")
    events_sent = body.get("events") if isinstance(body, dict) else None
    refusal = state.event_rates.admit(key, len(events_sent) if isinstance(events_sent, list) else 1)
    if refusal is not None:
        return json_response(
            {"detail": "Too many events for this key: retry later."},
            status=429,
            headers={"Retry-After": str(refusal.retry_after)},
        )
    limits = EventLimits(
        events_per_request=state.settings.max_events_per_request,
        identifier_length=state.settings.max_identifier_length,
    )
    now = state.clock()
    received = await run_in_threadpool(events.receive_events, state.db, snapshot, body, limits, now)
    return json_response(
        {
            "accepted": received.accepted,
            "duplicates": received.duplicates,
            "refused": [
                {"index": r.index, "field": r.field, "reason": r.reason} for r in received.refused
            ],
        },
        status=202,
    )


# `events_api_url` may be the API's URL (`…/api/`) or the host's (`…/`): the SDKs append
# `v1/events`.
EVENTS_PATHS = ("/api/v1/events", "/v1/events")
for _path in EVENTS_PATHS:
    routes.append(Route(_path, receive_events, methods=["POST"]))
    routes.append(Route(_path + "/", receive_events, methods=["POST"]))
    documented.append((_path + "/", "POST", "SDK events: custom events and exposures"))

# Registered last so that `/flags/<identifier>` never shadows a newer route.
routes.append(Route(PREFIX + "/flags/{identifier}", deprecated_identity_flags, methods=["GET"]))
