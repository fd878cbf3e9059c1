"""`ensign serve --workers 2`: starts without its workers being killed as hung while they
start, and says why it replaces a worker that died (issue 22, item 6)."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import httpx
import pytest

from tests.conftest import ServerProcess, free_port, wait_for

pytestmark = pytest.mark.slow


def test_serve_two_workers__answers_without_killing_any__and_says_why_one_died(
    database_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "server.log"
    server = ServerProcess(database_url, free_port(), log_path=log)
    # It answers within the fixture's limit: a few seconds on an idle machine, and less than
    # a minute with this one's 2 cores shared by a dozen busy processes, where uvicorn's 5 s
    # health check used to kill workers still importing the app, start others, and kill those.
    server.start(extra_env={"ENSIGN_WORKERS": "2"})
    try:
        wait_for(lambda: len(_workers(log)) == 2, timeout=60)
        assert "died" not in log.read_text()
        assert httpx.get(f"{server.url}/health", timeout=10).status_code == 200

        victim = _workers(log)[0]
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: f"Worker process [{victim}] was killed by SIGKILL" in log.read_text())
        wait_for(lambda: len(_workers(log)) == 3, timeout=60)  # and another started
        assert httpx.get(f"{server.url}/health", timeout=10).status_code == 200
    finally:
        server.stop()


def _workers(log: Path) -> list[int]:
    return [int(pid) for pid in re.findall(r"Started server process \[(\d+)\]", log.read_text())]
