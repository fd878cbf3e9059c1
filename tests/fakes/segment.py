"""A fake Segment (or RudderStack) `/v1/batch`: checks the write key, the content type, the
sizes and every message as the vendor documents them, and keeps the messages, counting those
whose `messageId` it has already seen (the vendor drops them) as duplicates.

Segment answers 400 to a message over 32 KB or a batch over 500 KB, and 200 to a batch of more
than 2500 messages, dropping the rest (counted in `dropped`); RudderStack's gateway answers 413
past 4000 KB and `OK` to success."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import threading
import time
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.script import Script, scripted


@dataclass(frozen=True)
class Vendor:
    name: str
    message_bytes: int
    batch_bytes: int
    messages: int
    too_large_status: int
    ok: bytes
    ok_type: str


SEGMENT = Vendor(
    "Segment", 32 * 1024, 500 * 1024, 2500, 400, b'{"success":true}', "application/json"
)
RUDDERSTACK = Vendor("RudderStack", 4000 * 1024, 4000 * 1024, 10**9, 413, b"OK", "text/plain")

TYPES = ("identify", "track", "page", "screen", "group", "alias")


class Invalid(Exception):
    pass


def _check_message(message: Any, vendor: Vendor) -> dict[str, Any]:
    if not isinstance(message, dict):
        raise Invalid("each message must be an object")
    if len(orjson.dumps(message)) > vendor.message_bytes:
        raise Invalid(f"a message must be at most {vendor.message_bytes} bytes")
    if message.get("type") not in TYPES:
        raise Invalid(f"type must be one of {', '.join(TYPES)}")
    ids = [message.get(k) for k in ("userId", "anonymousId") if message.get(k) is not None]
    if not ids or not all(isinstance(i, str) and i for i in ids):
        raise Invalid("userId or anonymousId is required")
    if message["type"] == "identify" and not isinstance(message.get("traits", {}), dict):
        raise Invalid("traits must be an object")
    if message["type"] == "track":
        if not isinstance(message.get("event"), str) or not message["event"]:
            raise Invalid("track needs an event name")
        if not isinstance(message.get("properties", {}), dict):
            raise Invalid("properties must be an object")
    message_id = message.get("messageId")
    if not isinstance(message_id, str) or not 0 < len(message_id) < 100:
        raise Invalid("messageId must be a string under 100 characters")
    if "timestamp" in message:
        moment = dt.datetime.fromisoformat(message["timestamp"])
        if moment.tzinfo is None:
            raise Invalid("timestamp needs a time zone")
    return message


class FakeSegment:
    """Accepts the write keys in `write_keys` (add to it to add a source)."""

    def __init__(self, vendor: Vendor = SEGMENT, write_keys: set[str] | None = None) -> None:
        self.vendor = vendor
        default = "segment-key" if vendor is SEGMENT else "rudderstack-key"
        self.write_keys = write_keys if write_keys is not None else {default}
        self.script = Script()
        self.requests: list[dict[str, Any]] = []
        # Every message kept, with the write key it came with as `writeKey`.
        self.messages: list[dict[str, Any]] = []
        self.duplicates = 0
        self.dropped = 0
        self._seen: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self.app = Starlette(routes=[Route("/v1/batch", self.batch, methods=["POST"])])

    def identifies(self, write_key: str | None = None) -> dict[str, dict[str, Any]]:
        """Each user's traits, as the vendor's profile would hold them (later ones win)."""
        users: dict[str, dict[str, Any]] = {}
        for m in self.messages:
            if m["type"] == "identify" and write_key in (None, m["writeKey"]):
                users.setdefault(m["userId"], {}).update(m.get("traits", {}))
        return users

    def tracks(self, event: str | None = None) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == "track" and event in (None, m["event"])]

    def _write_key(self, request: Request) -> str | None:
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, colon, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return user if colon and password == "" and user in self.write_keys else None

    async def batch(self, request: Request) -> Response:
        raw = await request.body()
        with self._lock:
            self.requests.append(
                {"headers": dict(request.headers), "body": raw, "at": time.monotonic()}
            )
        answer = self.script.next()
        if answer is not None:
            return await scripted(answer)
        write_key = self._write_key(request)
        if write_key is None:
            return Response(b"Invalid write key", status_code=401, media_type="text/plain")
        if request.headers.get("content-type", "").split(";")[0] != "application/json":
            return Response(b"Content-Type must be application/json", status_code=400)
        if len(raw) > self.vendor.batch_bytes:
            return Response(
                f"batch over {self.vendor.batch_bytes} bytes".encode(),
                status_code=self.vendor.too_large_status,
            )
        try:
            body = orjson.loads(raw)
            if not isinstance(body, dict) or not isinstance(body.get("batch"), list):
                raise Invalid("batch must be a list")
            checked = [_check_message(m, self.vendor) for m in body["batch"]]
        except (Invalid, ValueError, TypeError) as error:
            return Response(f"Bad request: {error}".encode(), status_code=400)
        with self._lock:
            self.dropped += max(0, len(checked) - self.vendor.messages)
            for message in checked[: self.vendor.messages]:
                seen = (write_key, message["messageId"])
                if seen in self._seen:
                    self.duplicates += 1
                    continue
                self._seen.add(seen)
                self.messages.append({**message, "writeKey": write_key})
        return Response(self.vendor.ok, status_code=200, media_type=self.vendor.ok_type)
