"""A fake Amplitude HTTP V2 API (`POST /2/httpapi`): validates requests as Amplitude documents
them, keeps each user's properties and the events ingested per API key, drops an event whose
`insert_id` it has seen in the last seven days, and can be told to refuse chosen events (a
400 listing them) or throttle chosen users (a 429 naming them)."""

from __future__ import annotations

import threading
import time
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.script import Script, scripted

MAX_EVENTS = 2000
MAX_BODY_BYTES = 1_000_000
DEFAULT_MIN_ID_LENGTH = 5
MAX_INSERT_ID_CHARS = 128
DEDUPE_SECONDS = 7 * 24 * 3600
OPERATIONS = ("$set", "$setOnce", "$add", "$append", "$prepend", "$unset", "$remove")


def _json(status: int, body: dict[str, Any]) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _bad_request(error: str, **extra: Any) -> Response:
    return _json(400, {"code": 400, "error": error, **extra})


class FakeAmplitude:
    def __init__(self, api_keys: set[str] | None = None) -> None:
        # The projects' API keys; a request with another is refused as Amplitude does.
        self.api_keys = api_keys if api_keys is not None else {"amplitude-key"}
        self.script = Script()
        # user id → the field named in the 400 that refuses each of that user's events.
        self.invalid_users: dict[str, str] = {}
        # user id → how many more requests holding that user's events answer 429.
        self.throttled_users: dict[str, int] = {}
        # How many more valid requests are ingested and then answered 500, as if the answer
        # had been lost on the way: the sender retries what Amplitude already holds.
        self.lose_answers = 0
        self.requests: list[dict[str, Any]] = []
        # API key → events ingested, in order.
        self.projects: dict[str, list[dict[str, Any]]] = {}
        # (API key, user id) → user properties.
        self.users: dict[tuple[str, str], dict[str, Any]] = {}
        self.duplicates = 0
        self._insert_ids: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()
        self.app = Starlette(routes=[Route("/2/httpapi", self.httpapi, methods=["POST"])])

    @property
    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            return [e for events in self.projects.values() for e in events]

    def user(self, user_id: str, api_key: str = "amplitude-key") -> dict[str, Any] | None:
        with self._lock:
            return self.users.get((api_key, user_id))

    async def httpapi(self, request: Request) -> Response:
        raw = await request.body()
        with self._lock:
            self.requests.append(
                {"headers": dict(request.headers), "body": raw, "at": time.monotonic()}
            )
        answer = self.script.next()
        if answer is not None:
            return await scripted(answer)
        if len(raw) >= MAX_BODY_BYTES:
            return _json(413, {"code": 413, "error": "Payload too large"})
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return _bad_request("Invalid request: Content-Type must be application/json")
        try:
            payload = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return _bad_request("Invalid JSON request body")
        if not isinstance(payload, dict):
            return _bad_request("Invalid JSON request body")
        api_key = payload.get("api_key")
        if not isinstance(api_key, str) or not api_key:
            return _bad_request("Request missing required field", missing_field="api_key")
        if api_key not in self.api_keys:
            return _bad_request(f"Invalid API key: {api_key}")
        events = payload.get("events")
        if not isinstance(events, list) or not events:
            return _bad_request("Request missing required field", missing_field="events")
        if len(events) > MAX_EVENTS:
            return _json(413, {"code": 413, "error": "Payload too large"})
        options = payload.get("options") or {}
        min_id_length = options.get("min_id_length", DEFAULT_MIN_ID_LENGTH)
        if not isinstance(min_id_length, int) or min_id_length < 1:
            return _bad_request("Invalid options: min_id_length")
        refused = self._refusals(events, min_id_length)
        if refused:
            return _bad_request("Request had invalid events", **refused)
        throttled = self._throttle(events)
        if throttled is not None:
            return throttled
        with self._lock:
            for event in events:
                self._ingest(api_key, event)
            if self.lose_answers > 0:
                self.lose_answers -= 1
                return _json(500, {"code": 500, "error": "Internal server error"})
        return _json(
            200,
            {
                "code": 200,
                "events_ingested": len(events),
                "payload_size_bytes": len(raw),
                "server_upload_time": int(time.time() * 1000),
            },
        )

    def _refusals(self, events: list[Any], min_id_length: int) -> dict[str, Any]:
        """The 400's lists of refused events, as Amplitude answers them (field → indexes)."""
        invalid: dict[str, list[int]] = {}
        missing: dict[str, list[int]] = {}
        lengths: dict[str, list[int]] = {}
        for index, event in enumerate(events):
            if not isinstance(event, dict):
                missing.setdefault("event_type", []).append(index)
                continue
            if not isinstance(event.get("event_type"), str) or not event["event_type"]:
                missing.setdefault("event_type", []).append(index)
            ids = [f for f in ("user_id", "device_id") if event.get(f) is not None]
            if not ids:
                missing.setdefault("user_id", []).append(index)
            for field in ids:
                value = event[field]
                if not isinstance(value, str):
                    invalid.setdefault(field, []).append(index)
                elif len(value) < min_id_length:
                    lengths.setdefault(field, []).append(index)
            insert_id = event.get("insert_id")
            if insert_id is not None and (
                not isinstance(insert_id, str) or len(insert_id) > MAX_INSERT_ID_CHARS
            ):
                invalid.setdefault("insert_id", []).append(index)
            moment = event.get("time")
            if moment is not None and (isinstance(moment, bool) or not isinstance(moment, int)):
                invalid.setdefault("time", []).append(index)
            for field in ("user_properties", "event_properties"):
                if field in event and not isinstance(event[field], dict):
                    invalid.setdefault(field, []).append(index)
            chosen = self.invalid_users.get(str(event.get("user_id")))
            if chosen is not None:
                invalid.setdefault(chosen, []).append(index)
        refused: dict[str, Any] = {}
        if invalid:
            refused["events_with_invalid_fields"] = invalid
        if missing:
            refused["events_with_missing_fields"] = missing
        if lengths:
            refused["events_with_invalid_id_lengths"] = lengths
        return refused

    def _throttle(self, events: list[dict[str, Any]]) -> Response | None:
        with self._lock:
            users = {
                e.get("user_id") for e in events if self.throttled_users.get(e.get("user_id"), 0)
            }
            for user in users:
                self.throttled_users[user] -= 1
        if not users:
            return None
        indexes = [i for i, e in enumerate(events) if e.get("user_id") in users]
        return _json(
            429,
            {
                "code": 429,
                "error": "Too many requests for some devices and users",
                "eps_threshold": 30,
                "throttled_devices": {},
                "throttled_users": {user: 31 for user in users},
                "throttled_events": indexes,
            },
        )

    def _ingest(self, api_key: str, event: dict[str, Any]) -> None:
        insert_id = event.get("insert_id")
        now = time.time()
        if insert_id is not None:
            seen = self._insert_ids.get((api_key, insert_id))
            if seen is not None and now - seen < DEDUPE_SECONDS:
                self.duplicates += 1
                return
            self._insert_ids[(api_key, insert_id)] = now
        self.projects.setdefault(api_key, []).append(event)
        user_id = event.get("user_id")
        changes = event.get("user_properties")
        if user_id is None or not changes:
            return
        properties = self.users.setdefault((api_key, user_id), {})
        for name, value in changes.items():
            if name == "$set":
                properties.update(value)
            elif name == "$unset":
                for key in value:
                    properties.pop(key, None)
            elif name not in OPERATIONS:
                # A plain key is a set.
                properties[name] = value
