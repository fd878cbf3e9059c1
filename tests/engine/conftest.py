"""Shared helpers for the engine tests: where the conformance data is, and the reference engine."""

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent

Reference = Callable[[dict[str, Any]], dict[str, Any]]


def engine_test_data() -> Path | None:
    """The engine-test-data directory: ``$ENSIGN_ENGINE_TEST_DATA`` or ``../shared/…``."""
    configured = os.environ.get("ENSIGN_ENGINE_TEST_DATA")
    path = Path(configured) if configured else REPOSITORY_ROOT / "../shared/engine-test-data"
    if not path.is_absolute():
        path = REPOSITORY_ROOT / path
    return path.resolve() if (path / "test_cases").is_dir() else None


def bench_data() -> Path | None:
    """The shared bench documents directory, if present beside the repository."""
    path = (REPOSITORY_ROOT / "../shared/bench-data").resolve()
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def reference() -> Iterator[Reference]:
    """Evaluate contexts with flagsmith-flag-engine 10.2.0 in its own process.

    Answers ``{"result": …}`` or ``{"error": "…"}`` for each context. Skips when the
    reference virtualenv cannot be created (for example, without network access).
    """
    try:
        made = subprocess.run(
            [str(HERE / "reference_env.sh")],
            check=True,
            capture_output=True,
            text=True,
            timeout=300,
        )
    except (subprocess.SubprocessError, OSError) as exc:
        pytest.skip(f"cannot create the reference engine virtualenv (.venv-ref): {exc}")
    python = made.stdout.strip().splitlines()[-1]
    server = subprocess.Popen(
        [python, str(HERE / "reference_server.py")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdin is not None
    assert server.stdout is not None
    stdin, stdout = server.stdin, server.stdout

    def ask(context: dict[str, Any]) -> dict[str, Any]:
        stdin.write(json.dumps(context) + "\n")
        stdin.flush()
        answer: dict[str, Any] = json.loads(stdout.readline())
        return answer

    try:
        yield ask
    finally:
        stdin.close()
        server.wait(timeout=10)
        stdout.close()
