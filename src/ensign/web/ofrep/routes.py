"""OFREP's two evaluation routes (`open-feature/protocol` `service/openapi.yaml` v0.3.0).

Authenticated by an environment's client or server key, sent as `Authorization: Bearer <key>`
or `X-API-Key: <key>`. Each route parses the body into a `services.ofrep.ContextRequest`,
evaluates on the identify path's database threads, and answers in OFREP's shapes; errors are
answered by `web.errors` in OFREP's error shapes.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ensign.errors import AuthenticationFailed, PermissionDenied, UnparsableInput
from ensign.services import ofrep
from ensign.services.ofrep import ContextRequest, Resolution
from ensign.services.snapshots import Snapshot
from ensign.web.deps import get_state

PREFIX = "/ofrep/v1"
# Where the realtime stream of an environment is served (the Flagsmith SDKs' path).
EVENT_STREAM_PATH = "/sse/environments/{key}/stream"

routes: list[BaseRoute] = []
# (path, method, summary) of each route, for the OpenAPI document.
documented: list[tuple[str, str, str]] = [
    (PREFIX + "/evaluate/flags/{key}", "POST", "OFREP: evaluate one flag"),
    (PREFIX + "/evaluate/flags", "POST", "OFREP: evaluate every flag (ETag, If-None-Match)"),
]


def _json(body: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )


def _key_of(request: Request) -> str:
    key = request.headers.get("x-api-key", "").strip()
    if not key:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            key = token.strip()
    return key


async def _environment(request: Request) -> tuple[Snapshot, bool]:
    """The environment the key opens, and whether the key is a server key. OFREP answers 401
    for a missing or unknown key and 403 for a known one that may not evaluate."""
    key = _key_of(request)
    if not key:
        raise AuthenticationFailed(
            "Send an environment key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'."
        )
    cache = get_state(request).cache
    snapshot = cache.peek(key) or await run_in_threadpool(cache.for_key, key)
    if snapshot is None:
        raise AuthenticationFailed("Unknown environment key.")
    if snapshot.stop_serving_flags:
        raise PermissionDenied("Organisation is disabled from serving flags.")
    return snapshot, key.startswith("ser.")


async def _context(request: Request, *, is_server: bool) -> ContextRequest:
    raw = await request.body()
    try:
        body = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError as error:
        raise UnparsableInput(f"The request body is not JSON: {error}.") from None
    return ofrep.parse_request(body, get_state(request).sdk_limits, is_server=is_server)


def _success(resolution: Resolution) -> dict[str, Any]:
    # OFREP metadata is flat (strings, numbers, booleans), so the experiment is three keys.
    metadata: dict[str, Any] = {"featureId": resolution.feature_id}
    if resolution.experiment is not None:
        metadata["experimentId"] = resolution.experiment.experiment.id
        metadata["experimentName"] = resolution.experiment.experiment.name
        metadata["inExperiment"] = resolution.experiment.in_experiment
    return {
        "key": resolution.key,
        "value": resolution.value,
        "reason": resolution.reason,
        "variant": resolution.variant,
        "metadata": metadata,
    }


async def evaluate_flag(request: Request) -> Response:
    snapshot, is_server = await _environment(request)
    context = await _context(request, is_server=is_server)
    state = get_state(request)
    key = request.path_params["key"]
    resolution = await state.run_identity_work(
        lambda: ofrep.single_resolution(state.identities, snapshot, context, key)
    )
    return _json(_success(resolution))


def _not_modified(if_none_match: str, etag: str) -> bool:
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag in tags


async def evaluate_flags(request: Request) -> Response:
    snapshot, is_server = await _environment(request)
    context = await _context(request, is_server=is_server)
    if_none_match = request.headers.get("if-none-match", "")
    state = get_state(request)
    answer = await state.run_identity_work(
        lambda: ofrep.bulk_answer(
            state.identities,
            snapshot,
            context,
            held=lambda etag: _not_modified(if_none_match, etag),
        )
    )
    headers = {"ETag": answer.etag}
    if answer.resolutions is None:
        # A provider revalidating its cache: nothing was recorded again either.
        return Response(status_code=304, headers=headers)
    flags = []
    for item in answer.resolutions:
        if isinstance(item, Resolution):
            flags.append(_success(item))
        else:
            flags.append(
                {
                    "key": item.key,
                    "errorCode": "TARGETING_KEY_MISSING",
                    "errorDetails": item.detail,
                }
            )
    body = {
        "flags": flags,
        "metadata": {"version": str(snapshot.revision)},
        "eventStreams": [
            {
                "type": "sse",
                "endpoint": {"requestUri": EVENT_STREAM_PATH.format(key=snapshot.api_key)},
            }
        ],
    }
    return _json(body, headers=headers)


# `path`: a flag key may hold "/" (the admin API accepts any name), which arrives decoded
# from "%2F" or as it is; either way the rest of the path is the key.
routes.append(Route(PREFIX + "/evaluate/flags/{key:path}", evaluate_flag, methods=["POST"]))
routes.append(Route(PREFIX + "/evaluate/flags", evaluate_flags, methods=["POST"]))
