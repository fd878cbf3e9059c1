"""Realtime updates against real `ensign serve` processes: the official Python SDK follows the
stream and picks up a change made in another process, idle streams cost no CPU, the
connection limit holds, and open streams do not hold up shutdown."""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from flagsmith import Flagsmith
from flagsmith.mappers import map_environment_document_to_environment_updated_at

from tests.conftest import Organisation, ServerProcess, free_port

pytestmark = pytest.mark.slow

EVENT = re.compile(rb"event: environment_updated\ndata: (\{[^\n]*\})\n\n")


@dataclass(frozen=True)
class Env:
    client_key: str
    server_key: str
    state_id: int


def make_env(server: ServerProcess, organisation: Organisation) -> Env:
    """A project, an environment with one feature (off) and a server key, made through the
    admin API."""

    def post(path: str, body: dict[str, Any]) -> Any:
        response = httpx.post(f"{server.api_url}{path}", headers=organisation.headers, json=body)
        assert response.status_code == 201, response.text
        return response.json()

    project = post("projects/", {"name": "p"})
    env = post("environments/", {"name": "e", "project": project["id"]})
    post(f"projects/{project['id']}/features/", {"name": "banner", "default_enabled": False})
    server_key = post(f"environments/{env['api_key']}/api-keys/", {"name": "sdk"})["key"]
    states = httpx.get(
        f"{server.api_url}environments/{env['api_key']}/featurestates/",
        headers=organisation.headers,
    ).json()["results"]
    return Env(env["api_key"], server_key, states[0]["id"])


def switch(server: ServerProcess, organisation: Organisation, env: Env, enabled: bool) -> None:
    response = httpx.patch(
        f"{server.api_url}environments/{env.client_key}/featurestates/{env.state_id}/",
        headers=organisation.headers,
        json={"enabled": enabled},
    )
    assert response.status_code == 200, response.text


def document_updated_at(server: ServerProcess, env: Env) -> dt.datetime:
    """The document's `updated_at`, read as the official SDK reads it."""
    document = httpx.get(
        f"{server.api_url}environment-document/", headers={"X-Environment-Key": env.server_key}
    ).json()
    return map_environment_document_to_environment_updated_at(document)


class RawStream:
    """A stream read off a plain socket, so that closing it is a real disconnect."""

    def __init__(self, server: ServerProcess, key: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        request = (
            f"GET /sse/environments/{key}/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Accept: application/json, text/event-stream\r\n\r\n"
        )
        self.sock.sendall(request.encode())
        self.received = b""
        self.seen = 0
        self.read_until(b"\r\n\r\n")
        self.head, _, self.received = self.received.partition(b"\r\n\r\n")

    @property
    def status(self) -> int:
        return int(self.head.split(b" ", 2)[1])

    def read_until(self, wanted: bytes, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while wanted not in self.received:
            self._receive(deadline)

    def _receive(self, deadline: float) -> None:
        self.sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError(self.received)
        self.received += chunk

    def updates(self) -> list[dt.datetime]:
        """Every `updated_at` received so far, as the SDK maps it."""
        return [
            dt.datetime.fromtimestamp(orjson.loads(m)["updated_at"], tz=dt.UTC)
            for m in EVENT.findall(self.received)
        ]

    def next_update(self, timeout: float = 5.0) -> dt.datetime:
        """The first `updated_at` not returned before, waiting for it if need be."""
        deadline = time.monotonic() + timeout
        while len(self.updates()) <= self.seen:
            self._receive(deadline)
        self.seen += 1
        return self.updates()[self.seen - 1]

    def close(self) -> None:
        self.sock.close()


def wait_for_streams(server: ServerProcess, count: int) -> None:
    """Until the server's `/metrics` counts `count` open streams."""
    deadline = time.monotonic() + 10
    while f"ensign_realtime_streams {float(count)}" not in httpx.get(f"{server.url}/metrics").text:
        assert time.monotonic() < deadline, "the streams did not open"
        time.sleep(0.05)


def started(database_url: str, tmp_path: Path, name: str, **env: str) -> ServerProcess:
    server = ServerProcess(database_url, free_port(), log_path=tmp_path / f"{name}.log")
    server.start(extra_env={"ENSIGN_CACHE_POLL_INTERVAL_SECONDS": "0.5", **env})
    return server


@pytest.fixture
def servers(database_url: str, tmp_path: Path) -> Iterator[list[ServerProcess]]:
    running: list[ServerProcess] = []
    yield running
    for server in running:
        server.stop()


def test_official_sdk__realtime__picks_up_change_made_in_another_process_within_2_seconds(
    organisation: Organisation, database_url: str, tmp_path: Path, servers: list[ServerProcess]
) -> None:
    # Given: two `ensign serve` processes on one database (PostgreSQL, or one SQLite file),
    # at the default cache poll interval, and the official SDK in local evaluation following
    # the stream of the first
    holder = started(database_url, tmp_path, "holder")
    servers.append(holder)
    writer = started(database_url, tmp_path, "writer")
    servers.append(writer)
    env = make_env(writer, organisation)
    sdk = Flagsmith(
        environment_key=env.server_key,
        api_url=holder.api_url,
        enable_local_evaluation=True,
        enable_realtime_updates=True,
        realtime_api_url=f"{holder.url}/",
    )
    try:
        assert sdk.get_environment_flags().is_feature_enabled("banner") is False
        wait_for_streams(holder, 1)

        # When: the flag is switched on through the admin API of the other process
        changed_at = time.monotonic()
        switch(writer, organisation, env, enabled=True)

        # Then: the SDK evaluates it on within 2 seconds, with no polling
        while not sdk.get_environment_flags().is_feature_enabled("banner"):
            assert time.monotonic() - changed_at < 2.0, "the SDK did not pick up the change"
            time.sleep(0.02)
    finally:
        sdk.event_stream_thread.stop()


def test_stream__events_keepalives_limit_disconnect_and_shutdown(
    organisation: Organisation, database_url: str, tmp_path: Path, servers: list[ServerProcess]
) -> None:
    server = started(
        database_url,
        tmp_path,
        "server",
        ENSIGN_REALTIME_MAX_CONNECTIONS="2",
        ENSIGN_REALTIME_KEEPALIVE_SECONDS="0.3",
    )
    servers.append(server)
    env = make_env(server, organisation)

    # On connect: an SSE stream whose first event is the document's `updated_at`
    first = RawStream(server, env.client_key)
    assert first.status == 200
    assert b"content-type: text/event-stream" in first.head.lower()
    assert first.next_update() == document_updated_at(server, env)
    # Keep-alive comments while nothing changes
    first.read_until(b": keep-alive\n\n", timeout=2)

    # A change: a newer `updated_at` within a second, the new document's
    changed_at = time.monotonic()
    switch(server, organisation, env, enabled=True)
    update = first.next_update(timeout=1.0)
    assert time.monotonic() - changed_at < 1.0
    assert update == document_updated_at(server, env) > first.updates()[0]

    # The limit: a third stream gets 503 with Retry-After, in the SDK API's error shape
    second = RawStream(server, env.client_key)
    assert second.status == 200
    refused = httpx.get(f"{server.url}/sse/environments/{env.client_key}/stream")
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "5"
    assert "realtime streams" in refused.json()["detail"]

    # A client that leaves frees its place, though nothing is being sent to it
    wait_for_streams(server, 2)
    second.close()
    wait_for_streams(server, 1)
    third = RawStream(server, env.client_key)
    assert third.status == 200

    # Unknown keys, and server keys (which must not travel in URLs), are not found
    for key in ("nope", env.server_key):
        missing = httpx.get(f"{server.url}/sse/environments/{key}/stream")
        assert (missing.status_code, missing.json()) == (404, {"detail": "Environment not found."})

    # Shutdown: open streams end at once and do not hold the server up
    assert server.process is not None
    stopping_at = time.monotonic()
    server.process.terminate()
    # uvicorn re-raises the signal once it has shut down gracefully
    assert server.process.wait(timeout=10) in (0, -signal.SIGTERM)
    assert time.monotonic() - stopping_at < 3.0
    assert server.log_path is not None
    assert "Application shutdown complete" in server.log_path.read_text()
    first.read_until(b"0\r\n\r\n")  # the chunked body ended cleanly
    third.close()
    first.close()


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads CPU time from /proc")
def test_stream__200_idle_streams__cost_no_measurable_cpu(
    organisation: Organisation, database_url: str, tmp_path: Path, servers: list[ServerProcess]
) -> None:
    server = started(database_url, tmp_path, "server")
    servers.append(server)
    env = make_env(server, organisation)
    assert server.process is not None
    pid = server.process.pid
    httpx.get(f"{server.api_url}flags/", headers={"X-Environment-Key": env.client_key})

    def cpu_over(seconds: float) -> float:
        start = cpu_seconds(pid)
        time.sleep(seconds)
        return cpu_seconds(pid) - start

    idle = cpu_over(3)
    streams = [RawStream(server, env.client_key) for _ in range(200)]
    try:
        for stream in streams:
            assert stream.status == 200
            stream.next_update()
        with_streams = cpu_over(3)
    finally:
        for stream in streams:
            stream.close()
    # An idle server's own pollers (cache, delivery) set the baseline; 200 open streams add
    # nothing measurable to it (under 2% of a core, at 10 ms clock ticks).
    assert with_streams - idle < 0.05, f"idle {idle:.3f} s, with 200 streams {with_streams:.3f} s"
