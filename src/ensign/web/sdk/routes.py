"""The Flagsmith SDK API (contract §1 to §4): the routes every official SDK calls.

Routes parse bodies themselves rather than through pydantic models: the reference accepts
loosely typed input and answers in its own error shapes, and this is the hot path.
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

from ensign.errors import AuthenticationFailed, InvalidInput, NotFound, PermissionDenied
from ensign.services import identities, outbox
from ensign.services.identities import Limits, TraitInput
from ensign.services.snapshots import Snapshot
from ensign.services.values import trait_value_from_json
from ensign.storage import environments as repo
from ensign.storage.models import utcnow
from ensign.web.deps import AppState

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


def limits_of(state: AppState) -> Limits:
    s = state.settings
    return Limits(
        identifier_length=s.max_identifier_length,
        trait_key_length=s.max_trait_key_length,
        trait_value_length=s.max_trait_value_length,
        traits_per_request=s.max_traits_per_request,
    )


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
        for flag in snapshot.environment_flags(is_server=is_server):
            if flag["feature"]["name"] == feature:
                return json_response(flag)
        raise NotFound("Given feature not found")
    return json_response(
        snapshot.environment_flags_body(is_server=is_server),
        headers={UPDATED_AT: snapshot.updated_at_header},
    )


async def deprecated_identity_flags(request: Request) -> Response:
    """The old `GET /flags/<identifier>` form: the identity's flags as a bare list."""
    snapshot, is_server = await environment_for(request)
    identifier = identities.check_identifier(
        request.path_params["identifier"], limits_of(app_state(request))
    )
    state = app_state(request)
    prepared = await state.run_identity_work(
        lambda: _identity_flags(state, snapshot, identifier, False)
    )
    return json_response(identities.evaluate(snapshot, prepared, is_server=is_server).flags_json)


# --- identities -------------------------------------------------------------------------------


def _identity_flags(
    state: AppState, snapshot: Snapshot, identifier: str, transient: bool
) -> identities.PreparedIdentity:
    if transient:
        return identities.PreparedIdentity(identifier, None, [])
    with state.identities.unit(write=False) as store:
        prepared = identities.load_or_create(store, snapshot, identifier)
    if prepared is None:
        with state.identities.unit(write=True) as store:
            prepared = identities.create(store, snapshot, identifier)
    return prepared


def _identity_flags_recorded(
    state: AppState, snapshot: Snapshot, identifier: str, transient: bool, is_server: bool
) -> identities.IdentifyResult:
    """`_identity_flags`, evaluated and recorded for the integrations in the same transaction."""
    with state.identities.unit(write=True) as store:
        if transient:
            prepared: identities.PreparedIdentity | None = identities.PreparedIdentity(
                identifier, None, []
            )
        else:
            prepared = identities.load_or_create(store, snapshot, identifier)
        if prepared is None:
            prepared = identities.create(store, snapshot, identifier)
        result = identities.evaluate(snapshot, prepared, is_server=is_server)
        outbox.record_identify(store, snapshot, result, utcnow())
    return result


@sdk_route(
    "/identities/", ["GET"], summary="Identity flags (`?identifier=`, `&transient=`, `&feature=`)"
)
async def get_identity(request: Request) -> Response:
    snapshot, is_server = await environment_for(request)
    state = app_state(request)
    identifier = request.query_params.get("identifier")
    transient = request.query_params.get("transient")
    feature = request.query_params.get("feature")
    if identifier is None or identifier == "":
        # The reference answers 200 here, and clients rely on it.
        return json_response({"detail": "Missing identifier"})
    checked = identities.check_identifier(identifier, limits_of(state))
    if feature is None and snapshot.integrations:
        # The all-flags form feeds the integrations: identity, evaluation and the outbox
        # records in one transaction, on one trip to the database thread.
        result = await state.run_identity_work(
            lambda: _identity_flags_recorded(state, snapshot, checked, bool(transient), is_server)
        )
        return json_response(
            result.body(snapshot), headers={UPDATED_AT: snapshot.updated_at_header}
        )
    prepared = await state.run_identity_work(
        lambda: _identity_flags(state, snapshot, checked, bool(transient))
    )
    result = identities.evaluate(snapshot, prepared, is_server=is_server)
    if feature is not None:
        return json_response(identities.single_flag(result, feature))
    return json_response(result.body(snapshot), headers={UPDATED_AT: snapshot.updated_at_header})


@sdk_route("/identities/", ["POST"], summary="Identify with traits")
async def post_identity(request: Request) -> Response:
    snapshot, is_server = await environment_for(request)
    state = app_state(request)
    body = await json_body(request)
    if not isinstance(body, dict):
        raise InvalidInput("Invalid request data")
    limits = limits_of(state)
    identifier = body.get("identifier")
    if identifier is not None:
        identifier = identities.check_identifier(identifier, limits)
    traits = identities.parse_traits(body.get("traits"), limits)
    transient = body.get("transient", False)
    if transient is not None and not isinstance(transient, bool):
        raise InvalidInput("transient: must be a boolean.", field="transient")

    record = bool(snapshot.integrations)

    def work() -> identities.IdentifyResult | identities.PreparedIdentity:
        with state.identities.unit(write=record or (bool(identifier) and not transient)) as store:
            prepared = identities.identify(
                store,
                snapshot,
                identifier=identifier,
                traits=traits,
                transient=bool(transient),
                is_server=is_server,
            )
            if not record:
                return prepared
            # Evaluated inside the transaction, so that the evaluations for the integrations
            # are recorded in the same commit as the identity, on one trip to the database
            # thread.
            result = identities.evaluate(snapshot, prepared, is_server=is_server)
            outbox.record_identify(store, snapshot, result, utcnow())
            return result

    done = await state.run_identity_work(work)
    if isinstance(done, identities.PreparedIdentity):
        done = identities.evaluate(snapshot, done, is_server=is_server)
    return json_response(done.body(snapshot), headers={UPDATED_AT: snapshot.updated_at_header})


# --- traits -----------------------------------------------------------------------------------


def _trait_item(item: Any, limits: Limits, *, allow_null: bool) -> tuple[str, TraitInput]:
    if not isinstance(item, dict):
        raise InvalidInput("Invalid request data")
    identity = item.get("identity")
    if not isinstance(identity, dict):
        raise InvalidInput("identity: an object with an identifier is required.", field="identity")
    identifier = identity.get("identifier")
    if not isinstance(identifier, str) or not identifier:
        raise InvalidInput("identity.identifier: a non-empty string is required.", field="identity")
    identifier = identities.check_identifier(identifier, limits)
    key = identities.parse_trait_key(item.get("trait_key"), limits)
    if "trait_value" not in item:
        raise InvalidInput("trait_value: this field is required.", field="trait_value")
    value = item["trait_value"]
    if value is None:
        if not allow_null:
            raise InvalidInput("trait_value: this field may not be null.", field="trait_value")
        return identifier, TraitInput(key, None)
    return identifier, TraitInput(
        key, trait_value_from_json(value, max_length=limits.trait_value_length)
    )


@sdk_route("/traits/", ["POST"], summary="Set one trait")
async def set_trait(request: Request) -> Response:
    snapshot, is_server = await environment_for(request)
    state = app_state(request)
    identifier, trait = _trait_item(await json_body(request), limits_of(state), allow_null=False)
    identities.ensure_traits_writable(snapshot, is_server=is_server)

    def work() -> None:
        with state.identities.unit(write=True) as store:
            identities.set_trait(
                store,
                snapshot,
                identifier=identifier,
                key=trait.key,
                value=trait.value,
                is_server=is_server,
            )

    await state.run_identity_work(work)
    return json_response(
        {"identity": {"identifier": identifier}, "trait_key": trait.key, "trait_value": trait.value}
    )


@sdk_route("/traits/bulk/", ["PUT"], summary="Set many traits")
async def bulk_traits(request: Request) -> Response:
    snapshot, is_server = await environment_for(request)
    state = app_state(request)
    body = await json_body(request)
    limits = limits_of(state)
    if not isinstance(body, list):
        raise InvalidInput("Invalid request data")
    if len(body) > limits.traits_per_request:
        raise InvalidInput(f"At most {limits.traits_per_request} traits per request.")
    items = [_trait_item(item, limits, allow_null=True) for item in body]
    identities.ensure_traits_writable(snapshot, is_server=is_server)

    def work() -> None:
        with state.identities.unit(write=True) as store:
            for identifier, trait in items:
                identities.set_trait(
                    store,
                    snapshot,
                    identifier=identifier,
                    key=trait.key,
                    value=trait.value,
                    is_server=is_server,
                )

    await run_in_threadpool(work)
    return json_response(
        [
            {"identity": {"identifier": i}, "trait_key": t.key, "trait_value": t.value}
            for i, t in items
        ]
    )


@sdk_route("/traits/increment-value/", ["POST"], summary="Increment an integer trait")
async def increment_trait(request: Request) -> Response:
    snapshot, is_server = await environment_for(request)
    state = app_state(request)
    body = await json_body(request)
    limits = limits_of(state)
    if not isinstance(body, dict):
        raise InvalidInput("Invalid request data")
    key = identities.parse_trait_key(body.get("trait_key"), limits)
    identifier = body.get("identifier")
    if not isinstance(identifier, str) or not identifier:
        raise InvalidInput("identifier: a non-empty string is required.", field="identifier")
    identifier = identities.check_identifier(identifier, limits)
    increment_by = body.get("increment_by")
    if isinstance(increment_by, bool) or not isinstance(increment_by, int):
        raise InvalidInput("increment_by: an integer is required.", field="increment_by")
    if abs(increment_by) > 2**62:
        raise InvalidInput("increment_by: out of range.", field="increment_by")

    def work() -> int:
        with state.identities.unit(write=True) as store:
            return identities.increment_trait(
                store,
                snapshot,
                identifier=identifier,
                key=key,
                increment_by=increment_by,
                is_server=is_server,
            )

    value = await state.run_identity_work(work)
    return json_response({"trait_key": key, "trait_value": value, "identifier": identifier})


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
    body = await json_body(request)
    if not isinstance(body, dict):
        raise InvalidInput("Invalid request data")
    counts: dict[int, int] = {}
    for name, count in body.items():
        feature = snapshot.features.get(name)
        # Unknown names and non-integer counts are dropped silently, as the reference does.
        if feature is None or isinstance(count, bool) or not isinstance(count, int):
            continue
        if 0 < count < 2**31:
            counts[feature.id] = counts.get(feature.id, 0) + count
    if counts:

        def work() -> None:
            with state.db.session() as session:
                repo.add_evaluation_counts(
                    session, snapshot.environment_id, counts, dt.datetime.now(dt.UTC).date()
                )

        await run_in_threadpool(work)
    return Response(status_code=200)


# Registered last so that `/flags/<identifier>` never shadows a newer route.
routes.append(Route(PREFIX + "/flags/{identifier}", deprecated_identity_flags, methods=["GET"]))
