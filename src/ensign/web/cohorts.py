"""Cohort-sync receivers: Mixpanel's custom-webhook cohort sync, Amplitude's cohort webhook
destination, and a generic cohort webhook.

All authenticate with an environment's cohort-sync key, sent in the `X-Ensign-Cohort-Key`
header (Amplitude's destination lets users add headers), as the HTTP Basic password (any
username: Mixpanel's destination form offers only Basic auth) or as a Bearer token.

Replies follow Mixpanel's contract (analytics-apis.md §3.3), which the others share; failures
are answered from the cohort-sync table in `ensign.web.errors`.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers

from ensign.errors import AuthenticationFailed, InvalidInput
from ensign.services import cohort_requests as requests
from ensign.services import cohort_sync, cohort_sync_log, cohorts
from ensign.services.cohort_sync import SyncResult
from ensign.services.cohorts import SyncCaller
from ensign.web import errors
from ensign.web.deps import COHORT_KEY_HEADER, AppState, get_state

logger = logging.getLogger("ensign.cohorts")
router = APIRouter(prefix="/api/v1/cohort-sync", tags=["Cohort sync"])
T = TypeVar("T")

MISSING = (
    "Authentication credentials were not provided: send the cohort-sync key as the HTTP Basic "
    f"password or in the {COHORT_KEY_HEADER} header."
)
MALFORMED = "Malformed Authorization header: send HTTP Basic credentials or a Bearer token."
MALFORMED_HEADER = f"Malformed {COHORT_KEY_HEADER} header: send the cohort-sync key alone."
NOT_JSON = "The body is not valid JSON."
_NOT_JSON = object()


def credential(header: str | None) -> str:
    """The key an Authorization header carries: the Basic password, or the Bearer token."""
    if not header or not header.strip():
        raise AuthenticationFailed(MISSING)
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("ascii")
        except (binascii.Error, ValueError):
            raise AuthenticationFailed(MALFORMED) from None
        _, colon, key = decoded.partition(":")
        if not colon:
            raise AuthenticationFailed(MALFORMED)
    elif scheme.lower() == "bearer":
        key = value
    else:
        raise AuthenticationFailed(MALFORMED)
    return _checked(key, MALFORMED)


def request_key(headers: Headers) -> str:
    """The key a call carries: its own header when sent, else the Authorization header."""
    own = headers.get(COHORT_KEY_HEADER)
    if own is not None:
        return _checked(own.strip(), MALFORMED_HEADER)
    return credential(headers.get("authorization"))


def _checked(key: str, malformed: str) -> str:
    if not key.isascii() or not key.isprintable() or " " in key:
        raise AuthenticationFailed(malformed)
    if not key:
        raise AuthenticationFailed(MISSING)
    return key


def _reply(body: dict[str, Any], status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )


def _json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw) if raw else _NOT_JSON
    except orjson.JSONDecodeError:
        return _NOT_JSON


def _authenticate(state: AppState, key: str) -> SyncCaller:
    with state.units.read() as unit:
        return cohorts.authenticate(unit, key)


def _log_failure(state: AppState, caller: SyncCaller, **details: Any) -> None:
    try:
        with state.units.write() as unit:
            cohort_sync_log.log_failure(unit.session, caller, **details)
    except Exception:
        # The database is what failed, most likely; the reply matters more than the log.
        logger.warning("could not log a failed cohort sync", exc_info=True)


def _failure(error: Exception) -> errors.SyncFailure:
    failure = errors.cohort_sync_failure(error)
    if failure.status >= 500:
        logger.error("cohort sync failed", exc_info=error)
    return failure


async def _run(
    request: Request,
    action: str | None,
    source: str,
    body: Any,
    work: Callable[[AppState, SyncCaller], T],
    cohort: str | None = None,
) -> T | Response:
    """Authenticate, then run `work` in a thread; failures become Mixpanel-shaped replies."""
    state = get_state(request)
    started = time.perf_counter()
    try:
        key = request_key(request.headers)
        caller = await run_in_threadpool(_authenticate, state, key)
    except Exception as error:
        return _failure(error).reply(action)
    try:
        if body is _NOT_JSON:
            raise InvalidInput(NOT_JSON)
        return await run_in_threadpool(work, state, caller)
    except Exception as error:
        failure = _failure(error)
    details = {
        "source": source,
        "status_code": failure.status,
        "message": failure.message,
        "body": None if body is _NOT_JSON else body,
        "cohort_external_id": cohort,
        "duration_ms": (time.perf_counter() - started) * 1000,
    }
    await run_in_threadpool(lambda: _log_failure(state, caller, **details))
    return failure.reply(action)


async def mixpanel(request: Request) -> Response:
    """Receive one call of a Mixpanel cohort sync (`members`, `add_members` or
    `remove_members`) and answer as Mixpanel expects."""
    body = _json(await request.body())
    action = requests.mixpanel_action(body)

    def work(state: AppState, caller: SyncCaller) -> SyncResult:
        sync = requests.parse_mixpanel(body, max_members=state.settings.cohort_sync_max_members)
        with state.units.write() as unit:
            return cohort_sync.apply_mixpanel_sync(
                unit,
                caller,
                sync,
                max_identifier_length=state.settings.max_identifier_length,
                session_expiry=_expiry(state),
            )

    result = await _run(request, action, cohorts.MIXPANEL, body, work)
    if isinstance(result, Response):
        return result
    return _reply({"action": action, "status": "success"}, 200)


async def amplitude(request: Request) -> Response:
    """Receive one batch of Amplitude's cohort webhook: users entering or leaving a cohort.

    Amplitude resends a batch not answered within 1 to 2 seconds. The batch is applied before
    answering, not queued: bench/cohorts.py measures 30 to 40 ms for 1,000 users (about 300 ms
    for the 10,000 allowed), and a resent batch changes nothing."""
    body = _json(await request.body())
    action = requests.amplitude_action(body)

    def work(state: AppState, caller: SyncCaller) -> SyncResult:
        sync = requests.parse_amplitude(body, max_members=state.settings.cohort_sync_max_members)
        with state.units.write() as unit:
            return cohort_sync.apply_amplitude_sync(
                unit,
                caller,
                sync,
                max_identifier_length=state.settings.max_identifier_length,
            )

    result = await _run(request, action, cohorts.AMPLITUDE, body, work)
    if isinstance(result, Response):
        return result
    return _counts(action, result)


def _counts(action: str | None, result: SyncResult) -> Response:
    """A success that says what changed, for the receivers whose callers read it."""
    body = {
        "action": action,
        "status": "success",
        "added": result.added,
        "removed": result.removed,
        "skipped": result.skipped,
    }
    return _reply(body, 200)


def _expiry(state: AppState) -> dt.timedelta:
    return dt.timedelta(minutes=state.settings.cohort_session_expiry_minutes)


def _webhook(action: str) -> Callable[[Request], Any]:
    async def endpoint(request: Request) -> Response:
        cohort = str(request.path_params["cohort"])
        body = _json(await request.body())

        def work(state: AppState, caller: SyncCaller) -> SyncResult:
            name = requests.check_webhook_cohort(cohort)
            identifiers = requests.parse_webhook(
                body, max_members=state.settings.cohort_sync_max_members
            )
            with state.units.write() as unit:
                return cohort_sync.apply_webhook_sync(
                    unit,
                    caller,
                    name,
                    action,
                    identifiers,
                    max_identifier_length=state.settings.max_identifier_length,
                )

        result = await _run(request, action, cohorts.WEBHOOK, body, work, cohort=cohort[:200])
        if isinstance(result, Response):
            return result
        return _counts(action, result)

    return endpoint


def _register(path: str, endpoint: Callable[..., Any], name: str, summary: str) -> None:
    """Register with and without the trailing slash: redirects lose request bodies."""
    router.add_api_route(
        path, endpoint, methods=["POST"], summary=summary, name=name, operation_id=name
    )
    alternate = path.rstrip("/") if path.endswith("/") else path + "/"
    router.add_api_route(
        alternate, endpoint, methods=["POST"], name=f"{name}_alternate", include_in_schema=False
    )


_register(
    "/mixpanel/",
    mixpanel,
    "cohort_sync_mixpanel",
    "Mixpanel cohort sync (custom webhook destination)",
)
_register(
    "/amplitude/",
    amplitude,
    "cohort_sync_amplitude",
    "Amplitude cohort sync (cohort webhook destination)",
)
_register(
    "/webhook/{cohort}/members/add",
    _webhook(requests.ADD_MEMBERS),
    "cohort_sync_webhook_add",
    "Add identities to a cohort (generic webhook)",
)
_register(
    "/webhook/{cohort}/members/remove",
    _webhook(requests.REMOVE_MEMBERS),
    "cohort_sync_webhook_remove",
    "Remove identities from a cohort (generic webhook)",
)
