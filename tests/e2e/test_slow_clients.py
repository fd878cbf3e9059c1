"""A client that sends part of a request and stalls is disconnected once
`ENSIGN_HEADER_TIMEOUT_SECONDS` has passed, by a real `ensign serve`; SDK requests are not
affected (issue 22, item 5)."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ensign.services.importing import import_document
from ensign.web.deps import AppState
from tests.conftest import Organisation, ServerProcess, free_port
from tests.documents import standard_document
from tests.units import unit_session


@pytest.fixture
def served(database_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(database_url, free_port(), log_path=tmp_path / "server.log")
    process.start(extra_env={"ENSIGN_HEADER_TIMEOUT_SECONDS": "1"})
    yield process
    process.stop()


def _closed_after(served: ServerProcess, sent: bytes) -> float:
    """Seconds until the server closes a connection that sent only `sent`."""
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as connection:
        started = time.monotonic()
        connection.sendall(sent)
        with contextlib.suppress(ConnectionResetError):
            assert connection.recv(1024) == b""  # closed, with no answer
        return time.monotonic() - started


def test_stalled_requests__connection_closed_after_the_header_timeout(
    served: ServerProcess,
) -> None:
    # Part of the request line, then part of the headers: closed after about 1 s.
    assert 0.9 < _closed_after(served, b"GET /api/v1/fla") < 5
    headers = b"GET /api/v1/flags/ HTTP/1.1\r\nHost: x\r\nX-Environment-Key: ab"
    assert 0.9 < _closed_after(served, headers) < 5
    # And a kept-alive connection's second request, stalled after its first bytes.
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as connection:
        connection.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        while not answer.endswith(b'{"status":"ok"}'):  # headers and body may come apart
            chunk = connection.recv(1024)
            assert chunk, answer
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        connection.sendall(b"GET /health HTTP/1.1\r\nHo")
        assert connection.recv(1024) == b""
        # uvicorn's keep-alive timeout (5 s) stops at the first byte; the header deadline is 1 s.
        assert time.monotonic() - started < 4


def test_sdk_requests__unaffected(
    served: ServerProcess, state: AppState, organisation: Organisation
) -> None:
    with state.units.write() as unit, unit_session(unit) as session:
        key = import_document(session, organisation.id, standard_document()).environment_key
    with httpx.Client(base_url=served.api_url, headers={"X-Environment-Key": key}) as client:
        for _ in range(3):  # one kept-alive connection, past the header timeout
            flags = client.get("flags/")
            assert flags.status_code == 200
            assert {f["feature"]["name"] for f in flags.json()} >= {"banner", "limit"}
            time.sleep(0.6)
        identified = client.post("identities/", json={"identifier": "u1"})
        assert identified.status_code == 200
