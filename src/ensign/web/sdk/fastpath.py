"""The commonest SDK call, answered before the framework's middleware stack.

`GET /api/v1/flags/` for an environment already compiled in this process is a lookup of
bytes made when the environment last changed; the middleware and routing around it would
cost more than the answer. Anything else (a query string, a CORS request, an unknown or
uncached key, a disabled organisation) goes on to the full route, which answers the same.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from ensign.web.deps import AppState
from ensign.web.sdk import wire

FLAGS_PATHS = frozenset({"/api/v1/flags/", "/api/v1/flags"})


class FlagsFastPath:
    def __init__(self, app: ASGIApp, state: AppState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "GET"
            and scope["path"] in FLAGS_PATHS
            and not scope["query_string"]
        ):
            key = ""
            for name, value in scope["headers"]:
                if name == b"x-environment-key":
                    key = value.decode("latin-1")
                elif name == b"origin" or (
                    # A body, which no SDK sends here: the app checks it like any other.
                    name in (b"content-length", b"transfer-encoding") and value != b"0"
                ):
                    key = ""
                    break
            snapshot = self.state.cache.peek(key) if key else None
            if snapshot is not None and not snapshot.stop_serving_flags:
                body = wire.environment_flags_body(snapshot, is_server=key.startswith("ser."))
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (
                                b"x-flagsmith-document-updated-at",
                                snapshot.updated_at_header.encode(),
                            ),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
