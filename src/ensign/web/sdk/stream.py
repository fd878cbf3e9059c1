"""Realtime updates: `GET /sse/environments/<client key>/stream`, the Server-Sent Events stream
the official SDKs follow with `enable_realtime_updates` (contract: realtime).

Each event is `event: environment_updated` (the name the JS SDK listens for) with
`data: {"updated_at": <epoch seconds>}`, the `updated_at` of the environment document; the
Python SDK re-fetches the document when the value is later than its document's. Each is
followed by the same change for OFREP providers (`ofrep_event`). One event on
connect, one after every change (`services.realtime`), and a comment line every
`realtime_keepalive_seconds` in between.

Written on the bare ASGI interface rather than with an SSE library: the stream needs one thing
beyond sending, noticing a client that went away while nothing is being sent (uvicorn drops
writes to a closed connection silently), and waiting on `receive()` does that without a
timer or task group per connection.
"""

from __future__ import annotations

import asyncio

import orjson
from prometheus_client import Gauge
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ensign.errors import EnsignError, NotFound, PermissionDenied
from ensign.services.realtime import STREAM_PATH, Listener, RealtimeHub
from ensign.web.deps import AppState

# The Python SDK reconnects at once after any answer that is not an exception, a 404 or 503
# included; answering errors after a pause keeps such a client from spinning.
ERROR_PAUSE_SECONDS = 1.0
KEEPALIVE = b": keep-alive\n\n"

OPEN_STREAMS = Gauge(
    "ensign_realtime_streams",
    "Realtime update streams open (in every web process of this `ensign serve`).",
    multiprocess_mode="livesum",
)


def event(updated_at: float) -> bytes:
    data = orjson.dumps({"updated_at": updated_at})
    return b"event: environment_updated\ndata: " + data + b"\n\n"


def ofrep_event(updated_at: float) -> bytes:
    """The same change as OFREP providers read it: an unnamed (`message`) event whose data has
    `type: refetchEvaluation` (OFREP's bulk answer advertises this stream in `eventStreams`).
    It repeats `updated_at`, because the Python SDK reads every event of the stream; the JS SDK
    listens to `environment_updated` only."""
    data = orjson.dumps(
        {"type": "refetchEvaluation", "lastModified": int(updated_at), "updated_at": updated_at}
    )
    return b"data: " + data + b"\n\n"


class EventStream(Response):
    """The open stream of one listener, until the client leaves or the server shuts down."""

    def __init__(self, hub: RealtimeHub, listener: Listener, keepalive_seconds: float) -> None:
        self.status_code = 200
        self.background = None
        self.raw_headers = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-cache"),
            # Proxies that buffer responses (nginx) would hold events back.
            (b"x-accel-buffering", b"no"),
        ]
        self.hub = hub
        self.listener = listener
        self.keepalive_seconds = keepalive_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        listener = self.listener
        watcher = asyncio.create_task(_end_on_disconnect(receive, listener))
        OPEN_STREAMS.inc()
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            while True:
                listener.wake.clear()
                if listener.closed:
                    break
                if listener.pending is not None:
                    moment, listener.pending = listener.pending, None
                    body = event(moment) + ofrep_event(moment)
                    await send({"type": "http.response.body", "body": body, "more_body": True})
                try:
                    async with asyncio.timeout(self.keepalive_seconds):
                        await listener.wake.wait()
                except TimeoutError:
                    await send({"type": "http.response.body", "body": KEEPALIVE, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            pass  # the connection broke mid-write: the client is gone
        finally:
            OPEN_STREAMS.dec()
            self.hub.unsubscribe(listener)
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)


async def _end_on_disconnect(receive: Receive, listener: Listener) -> None:
    try:
        while (await receive())["type"] != "http.disconnect":
            pass
    finally:
        listener.end()


async def environment_stream(request: Request) -> Response:
    state: AppState = request.app.state.ensign
    key = request.path_params["key"]
    try:
        snapshot = state.cache.peek(key)
        if snapshot is None:
            snapshot = await run_in_threadpool(state.cache.for_key, key)
        # The client key only: the path ends up in logs, where a server key must not.
        if snapshot is None or snapshot.api_key != key:
            raise NotFound("Environment not found.")
        if snapshot.stop_serving_flags:
            raise PermissionDenied("Organisation is disabled from serving flags.")
        listener = state.realtime.subscribe(snapshot)
    except EnsignError:
        await asyncio.sleep(ERROR_PAUSE_SECONDS)
        raise
    return EventStream(state.realtime, listener, state.settings.realtime_keepalive_seconds)


routes = [Route(STREAM_PATH, environment_stream, methods=["GET"])]
