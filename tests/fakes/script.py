"""Scriptable answers shared by the fake vendors, and a uvicorn runner on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import random
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.responses import Response


@dataclass
class Answer:
    """One scripted answer: a status, headers and body, or a hang of `hang_seconds`."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    hang_seconds: float = 0.0
    media_type: str = "text/plain"


class Script:
    """Answers to give before behaving normally, consumed one per request."""

    def __init__(self) -> None:
        self._answers: deque[Answer] = deque()
        self._lock = threading.Lock()
        self.always: Answer | None = None

    def then(self, *answers: Answer) -> Script:
        with self._lock:
            self._answers.extend(answers)
        return self

    def fail(self, times: int, status: int = 500, **kwargs: Any) -> Script:
        return self.then(*[Answer(status, **kwargs) for _ in range(times)])

    def next(self) -> Answer | None:
        with self._lock:
            if self._answers:
                return self._answers.popleft()
        return self.always

    def clear(self) -> None:
        with self._lock:
            self._answers.clear()
        self.always = None


async def scripted(answer: Answer) -> Response:
    if answer.hang_seconds:
        await asyncio.sleep(answer.hang_seconds)
    return Response(
        answer.body, status_code=answer.status, headers=answer.headers, media_type=answer.media_type
    )


# Under pytest-xdist, two workers asking the kernel for a free port (bind to 0, then close)
# can be handed the same one before either server binds it. Each worker picks from a range of
# its own, below Linux's ephemeral ports (32768 and up), so workers never collide; a port still
# held by an earlier server of the same worker fails the bind and another is tried.
_PORTS_PER_WORKER = 2_000


def free_port() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    index = int(worker[2:]) + 1 if worker.startswith("gw") and worker[2:].isdigit() else 0
    low = 10_000 + (index % 11) * _PORTS_PER_WORKER
    for _ in range(500):
        port = random.randrange(low, low + _PORTS_PER_WORKER)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {low}-{low + _PORTS_PER_WORKER}")


class ServedApp:
    """A Starlette app served by uvicorn on a free 127.0.0.1 port, in a thread; over TLS when
    given a certificate and its key (PEM files)."""

    def __init__(
        self, app: Starlette, *, certfile: str | None = None, keyfile: str | None = None
    ) -> None:
        self.port = free_port()
        self.scheme = "https" if certfile else "http"
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=1,
            ssl_certfile=certfile,
            ssl_keyfile=keyfile,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake vendor did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)
