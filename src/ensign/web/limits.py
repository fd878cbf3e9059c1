"""Request body size limit, enforced before any route reads the body."""

from __future__ import annotations

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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
