"""`ensign serve` (what `make run` starts) on a port another process already listens on."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.slow,  # starts `ensign serve`
    pytest.mark.skipif(
        not Path("/proc/net/tcp").exists(), reason="finding the holder reads Linux's /proc"
    ),
]


@pytest.fixture
def taken_port() -> Iterator[int]:
    # This test process holds the port, as another program would.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_serve__port_taken__fails_first_naming_the_port_and_its_holder(
    taken_port: int, tmp_path: Path
) -> None:
    # Given
    database = tmp_path / "ensign.sqlite3"
    env = {**os.environ, "ENSIGN_DATABASE_URL": f"sqlite:///{database}"}
    # When
    result = subprocess.run(
        [sys.executable, "-m", "ensign.cli", "serve", "--demo", "--port", str(taken_port)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # Then
    assert result.returncode == 1
    assert f"port {taken_port} is already in use by process {os.getpid()}" in result.stderr
    holder_command = Path("/proc/self/cmdline").read_bytes().split(b"\0")[0].decode()
    assert f"({holder_command}" in result.stderr
    # The port it suggests instead is free.
    suggested = int(result.stderr.split("ENSIGN_PORT=")[1].split()[0])
    assert f"scripts/ensign serve --port {suggested}" in result.stderr
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", suggested))
    # Nothing happened before the check: no keys printed, no database made.
    assert result.stdout == ""
    assert not database.exists()
