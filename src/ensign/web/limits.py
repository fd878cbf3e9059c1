"""Request body limits, size and JSON nesting, enforced before any route reads the body."""

from __future__ import annotations

import json
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ensign.errors import UnparsableInput
from ensign.web.errors import is_json_surface, refused

# Paths that accept larger bodies than `max_body_bytes`. Cohort sync takes up to 10,000
# members per request; a Mixpanel page that size, with the exported profile properties, is
# well over 1 MiB, and a 413 would pause the customer's sync (analytics-apis.md §3.4).
LARGER_LIMITS: tuple[tuple[str, int], ...] = (("/api/v1/cohort-sync/", 16 * 1024 * 1024),)


class BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    """Answers 413 for bodies over `max_bytes`, whether declared by Content-Length or streamed."""

    def __init__(
        self, app: ASGIApp, max_bytes: int, larger: tuple[tuple[str, int], ...] = ()
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.larger = LARGER_LIMITS + larger

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        max_bytes = max(
            [self.max_bytes, *(size for prefix, size in self.larger if path.startswith(prefix))]
        )
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > max_bytes:
                    await self._reject(send, max_bytes)
                    return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._reject(send, max_bytes)

    async def _reject(self, send: Send, max_bytes: int) -> None:
        body = orjson.dumps({"detail": f"Request body is larger than {max_bytes} bytes."})
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


# Deeper than any body Ensign takes (an imported document, its rules nested the 10 levels the
# admin API allows, is about 30 deep) and well within the interpreter's recursion limit, which
# the standard JSON parser and every walk of a parsed body share: past it, a `RecursionError`.
MAX_JSON_DEPTH = 256

# Bodies parsed as forms, never as JSON (the dashboard's); their fields are checked where parsed.
_FORM_TYPES = (b"application/x-www-form-urlencoded", b"multipart/form-data")


# The SDKs' events API decodes its batches itself without recursing (`services.event_json`)
# and refuses a deep event alone: a 400 would cost the SDK the batch's other events.
_OWN_DEPTH_CHECK = frozenset({"/api/v1/events", "/v1/events"})


def nests_too_deeply(body: bytes | str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether `body`, read as JSON, nests arrays and objects more than `limit` deep.

    Text that is not JSON does not: whoever parses it says what is wrong with it.
    """
    text = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    if text.count(b"[") + text.count(b"{") <= limit:
        return False
    try:
        # orjson never recurses in Python and stops at 1,024 levels with a JSONDecodeError.
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        try:
            # What orjson refuses that the standard parser keeps (lone surrogates, say).
            parsed = json.loads(body)
        except RecursionError:
            return True
        except ValueError:
            return False
    return _deeper_than(parsed, limit)


def _deeper_than(value: Any, limit: int) -> bool:
    # A loop, not recursion: the point is to never come near the recursion limit.
    stack = [(value, 1)] if isinstance(value, dict | list) else []
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        for child in node.values() if isinstance(node, dict) else node:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
    return False


class JsonDepthLimit:
    """Answers 400, in the surface's format, for a body nested more than `MAX_JSON_DEPTH` deep.

    Before routing, so before authentication or any parse of the body: Python's own JSON
    parser, FastAPI's and every recursive walk of a parsed body are then safe from a
    `RecursionError`, which would answer 500 with a traceback in the log for every request.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if (
            not is_json_surface(path)
            or _content_type(scope).startswith(_FORM_TYPES)
            or path.rstrip("/") in _OWN_DEPTH_CHECK
        ):
            await self.app(scope, receive, send)
            return
        first = await receive()
        messages = [first]
        while messages[-1]["type"] == "http.request" and messages[-1].get("more_body", False):
            messages.append(await receive())
        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
        if nests_too_deeply(body):
            error = UnparsableInput(f"The JSON body nests more than {MAX_JSON_DEPTH} levels deep.")
            await refused(path, error)(scope, receive, send)
            return

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)


def _content_type(scope: Scope) -> bytes:
    for name, value in scope.get("headers", []):
        if name == b"content-type":
            return bytes(value).lower()
    return b""
