"""The HTTP protocol `ensign serve` gives uvicorn: its httptools protocol, plus a deadline for
a request's line and headers.

uvicorn bounds the wait between requests on a kept-alive connection, but not the wait for a
request's headers: a client that sends half a request line and stops holds its connection (and
a slot of every limit counted in connections) for as long as it likes, and 2,000 of them hold
the server. The deadline runs from the connection's opening (for its first request) or from a
request's first byte (for the next ones) to the end of its headers; past it, the connection is
closed. The body and the response are not timed, so slow uploads and long-lived streams (SSE)
are not affected, and SDK requests, whose headers come in one packet, never meet it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class HeaderDeadlineProtocol(HttpToolsProtocol):
    # Set once per process from the settings (`configure`), before any connection is accepted.
    header_timeout_seconds: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_header_deadline()  # a kept-alive connection's next request

    def on_headers_complete(self) -> None:
        self._disarm_header_deadline()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)

    def _arm_header_deadline(self) -> None:
        if self._header_deadline is None and self.header_timeout_seconds > 0:
            self._header_deadline = self.loop.call_later(
                self.header_timeout_seconds, self._headers_too_slow
            )

    def _disarm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        # Closed without an answer or a log line: a client this slow is not reading either,
        # and a line per connection would let it flood the log.
        self._header_deadline = None
        if not self.transport.is_closing():
            self.transport.close()


def configure(header_timeout_seconds: float) -> None:
    """Set the deadline for this process's connections (0 turns it off)."""
    HeaderDeadlineProtocol.header_timeout_seconds = header_timeout_seconds
