"""A fake Heap: validates bulk and single track requests as Heap documents them, and records
accepted events, deduplicating by `idempotency_key` as Heap does."""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.script import Script, scripted


class Invalid(Exception):
    pass


def _check_event(event: Any) -> dict[str, Any]:
    if not isinstance(event, dict):
        raise Invalid("event must be an object")
    identity = event.get("identity")
    if not isinstance(identity, str) or not identity or len(identity) > 255:
        raise Invalid("identity must be a string of 1 to 255 characters")
    name = event.get("event")
    if not isinstance(name, str) or not name or len(name) > 1024:
        raise Invalid("event must be a string of 1 to 1024 characters")
    properties = event.get("properties", {})
    if not isinstance(properties, dict):
        raise Invalid("properties must be an object")
    for key, value in properties.items():
        if len(key) >= 1024:
            raise Invalid("property names must be under 1024 characters")
        if not isinstance(value, str | int | float | bool):
            raise Invalid("property values must be numbers or strings")
        if isinstance(value, str) and len(value) >= 1024:
            raise Invalid("property values must be under 1024 characters")
    if "timestamp" in event:
        dt.datetime.fromisoformat(event["timestamp"])
    key = event.get("idempotency_key")
    if key is not None and not isinstance(key, str):
        raise Invalid("idempotency_key must be a string")
    return event


class FakeHeap:
    def __init__(self) -> None:
        self.script = Script()
        self.requests: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.duplicates = 0
        self._keys: set[str] = set()
        self._lock = threading.Lock()
        self.app = Starlette(routes=[Route("/api/track", self.track, methods=["POST"])])

    @property
    def event_keys(self) -> list[str]:
        return [e["idempotency_key"] for e in self.events]

    async def track(self, request: Request) -> Response:
        raw = await request.body()
        with self._lock:
            self.requests.append(
                {"headers": dict(request.headers), "body": raw, "at": time.monotonic()}
            )
        answer = self.script.next()
        if answer is not None:
            return await scripted(answer)
        if request.headers.get("content-type", "").split(";")[0] != "application/json":
            return Response("Bad request", status_code=400, media_type="text/plain")
        try:
            body = orjson.loads(raw)
            if not isinstance(body, dict) or not isinstance(body.get("app_id"), str):
                raise Invalid("app_id is required")
            if "events" in body:
                events = body["events"]
                if not isinstance(events, list) or not 1 <= len(events) <= 1000:
                    raise Invalid("events must hold 1 to 1000 events")
            else:
                events = [body]
            checked = [_check_event(e) for e in events]
        except (Invalid, ValueError, TypeError) as error:
            return Response(f"Bad request: {error}", status_code=400, media_type="text/plain")
        with self._lock:
            for event in checked:
                key = event.get("idempotency_key")
                if key is not None and key in self._keys:
                    self.duplicates += 1
                    continue
                if key is not None:
                    self._keys.add(key)
                self.events.append({**event, "app_id": body["app_id"]})
        return Response(b"", status_code=200, media_type="text/plain")
