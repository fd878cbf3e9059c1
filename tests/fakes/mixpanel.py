"""A fake Mixpanel `/engage` and `/track`: validates profile updates and events as Mixpanel
documents them, keeps each profile's properties, and keeps events, counting those whose
`$insert_id` it has already seen (Mixpanel drops them) as duplicates."""

from __future__ import annotations

import threading
import time
from typing import Any
from urllib.parse import parse_qs

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.script import Script, scripted

OPERATIONS = ("$set", "$set_once", "$add", "$union", "$append", "$remove", "$unset", "$delete")


class Invalid(Exception):
    pass


def _check_update(update: Any) -> dict[str, Any]:
    if not isinstance(update, dict):
        raise Invalid("each update must be an object")
    if not isinstance(update.get("$token"), str) or not update["$token"]:
        raise Invalid("$token is required")
    if not isinstance(update.get("$distinct_id"), str) or not update["$distinct_id"]:
        raise Invalid("$distinct_id is required")
    operations = [op for op in OPERATIONS if op in update]
    if len(operations) != 1:
        raise Invalid("exactly one operation is required")
    if "$set" in update and not isinstance(update["$set"], dict):
        raise Invalid("$set must be an object")
    if len(orjson.dumps(update)) > 1_000_000:
        raise Invalid("an update must be at most 1 MB")
    return update


# Mixpanel's /track takes events from the last five days only.
TRACK_MAX_AGE_SECONDS = 5 * 24 * 3600


def _check_shape(event: Any) -> dict[str, Any]:
    """What /track and /import both require: an event name, properties with a distinct id
    and a numeric time."""
    if not isinstance(event, dict):
        raise Invalid("each event must be an object")
    if not isinstance(event.get("event"), str) or not event["event"]:
        raise Invalid("event is required")
    props = event.get("properties")
    if not isinstance(props, dict):
        raise Invalid("properties must be an object")
    if not isinstance(props.get("distinct_id"), str) or not props["distinct_id"]:
        raise Invalid("properties.distinct_id is required")
    moment = props.get("time")
    if isinstance(moment, bool) or not isinstance(moment, int | float):
        raise Invalid("properties.time must be a number")
    return props


def _valid_insert_id(insert_id: Any) -> bool:
    return (
        isinstance(insert_id, str) and len(insert_id) <= 36 and insert_id.replace("-", "").isalnum()
    )


def _check_event(event: Any) -> dict[str, Any]:
    """A /track event: the project token in it, at most five days old, `$insert_id` optional."""
    if isinstance(event, dict) and isinstance(event.get("properties"), dict):
        token = event["properties"].get("token")
        if not isinstance(token, str) or not token:
            raise Invalid("properties.token is required")
    props = _check_shape(event)
    moment = props["time"]
    seconds = moment / 1000 if moment > 1e11 else moment
    if seconds < time.time() - TRACK_MAX_AGE_SECONDS:
        raise Invalid("events older than 5 days are refused by /track")
    insert_id = props.get("$insert_id")
    if insert_id is not None and not _valid_insert_id(insert_id):
        raise Invalid("$insert_id must be at most 36 characters of [A-Za-z0-9-]")
    if len(props) >= 255:
        raise Invalid("at most 255 properties")
    return dict(event)


# Mixpanel's /import: at most 2000 events and 10 MB a request.
IMPORT_MAX_BYTES = 10 * 1024 * 1024


def _check_import_event(event: Any) -> dict[str, Any]:
    """An /import event: no token in it (the request's Basic credentials say the project),
    any age, and `$insert_id` required."""
    props = _check_shape(event)
    if not _valid_insert_id(props.get("$insert_id")):
        raise Invalid("properties.$insert_id: at most 36 characters of [A-Za-z0-9-] required")
    return dict(event)


class FakeMixpanel:
    def __init__(self) -> None:
        self.script = Script()
        self.requests: list[dict[str, Any]] = []
        self.updates: list[dict[str, Any]] = []
        self.profiles: dict[tuple[str, str], dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.duplicate_events = 0
        self._insert_ids: set[str] = set()
        self._lock = threading.Lock()
        self.app = Starlette(
            routes=[
                Route("/engage", self.engage, methods=["POST"]),
                Route("/track", self.track, methods=["POST"]),
                Route("/import", self.import_, methods=["POST"]),
            ]
        )

    def _answer(self, verbose: bool, error: str | None) -> Response:
        if verbose:
            body = {"status": 0 if error else 1, "error": error}
            return Response(orjson.dumps(body), media_type="application/json")
        return Response(b"0" if error else b"1", media_type="text/plain")

    async def engage(self, request: Request) -> Response:
        raw = await request.body()
        with self._lock:
            self.requests.append(
                {
                    "headers": dict(request.headers),
                    "query": dict(request.query_params),
                    "body": raw,
                    "at": time.monotonic(),
                }
            )
        answer = self.script.next()
        if answer is not None:
            return await scripted(answer)
        verbose = request.query_params.get("verbose") in ("1", "2")
        if request.headers.get("content-encoding"):
            return Response("gzip is not supported", status_code=400)
        if request.headers.get("content-type", "").split(";")[0] != "application/json":
            return self._answer(verbose, "expected a JSON body")
        try:
            updates = orjson.loads(raw)
            if not isinstance(updates, list) or not 1 <= len(updates) <= 2000:
                raise Invalid("the body must be an array of 1 to 2000 updates")
            checked = [_check_update(u) for u in updates]
        except (Invalid, ValueError) as error:
            return self._answer(verbose, str(error))
        with self._lock:
            for update in checked:
                self.updates.append(update)
                profile = self.profiles.setdefault((update["$token"], update["$distinct_id"]), {})
                profile.update(update.get("$set", {}))
        return self._answer(verbose, None)

    async def track(self, request: Request) -> Response:
        raw = await request.body()
        with self._lock:
            self.requests.append(
                {
                    "path": "/track",
                    "headers": dict(request.headers),
                    "query": dict(request.query_params),
                    "body": raw,
                    "at": time.monotonic(),
                }
            )
        answer = self.script.next()
        if answer is not None:
            return await scripted(answer)
        verbose = request.query_params.get("verbose") in ("1", "2")
        content_type = request.headers.get("content-type", "").split(";")[0]
        try:
            if content_type == "application/x-www-form-urlencoded":
                data = parse_qs(raw.decode()).get("data", [""])[0]
                events = orjson.loads(data)
            elif content_type == "application/json":
                events = orjson.loads(raw)
            else:
                raise Invalid("expected JSON or form data")
            if isinstance(events, dict):
                events = [events]
            if not isinstance(events, list) or not 1 <= len(events) <= 2000:
                raise Invalid("the body must hold 1 to 2000 events")
            checked = [_check_event(e) for e in events]
        except (Invalid, ValueError) as error:
            return self._answer(verbose, str(error))
        with self._lock:
            for event in checked:
                insert_id = event["properties"].get("$insert_id")
                if insert_id is not None and insert_id in self._insert_ids:
                    self.duplicate_events += 1
                    continue
                if insert_id is not None:
                    self._insert_ids.add(insert_id)
                self.events.append(event)
        return self._answer(verbose, None)

    async def import_(self, request: Request) -> Response:
        """`/import?strict=1`: HTTP Basic credentials (the API secret, or a service account),
        a JSON array; answers `{"code": 200, "num_records_imported": n, "status": "OK"}`."""
        raw = await request.body()
        with self._lock:
            self.requests.append(
                {
                    "path": "/import",
                    "headers": dict(request.headers),
                    "query": dict(request.query_params),
                    "body": raw,
                    "at": time.monotonic(),
                }
            )
        answer = self.script.next()
        if answer is not None:
            return await scripted(answer)
        if not request.headers.get("authorization", "").startswith("Basic "):
            return Response(
                orjson.dumps({"code": 401, "error": "authentication required", "status": 0}),
                status_code=401,
                media_type="application/json",
            )
        if len(raw) > IMPORT_MAX_BYTES:
            return Response(b'{"code":413,"status":0}', status_code=413)
        try:
            if request.headers.get("content-type", "").split(";")[0] != "application/json":
                raise Invalid("expected a JSON array")
            events = orjson.loads(raw)
            if not isinstance(events, list) or not 1 <= len(events) <= 2000:
                raise Invalid("the body must hold 1 to 2000 events")
            checked = [_check_import_event(e) for e in events]
        except (Invalid, ValueError) as error:
            body = {"code": 400, "error": str(error), "status": "Bad Request"}
            return Response(orjson.dumps(body), status_code=400, media_type="application/json")
        with self._lock:
            for event in checked:
                insert_id = event["properties"]["$insert_id"]
                if insert_id in self._insert_ids:
                    self.duplicate_events += 1
                    continue
                self._insert_ids.add(insert_id)
                self.events.append(event)
        body = {"code": 200, "num_records_imported": len(checked), "status": "OK"}
        return Response(orjson.dumps(body), media_type="application/json")
