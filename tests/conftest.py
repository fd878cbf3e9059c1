"""Shared fixtures: a real database per test (SQLite file, or PostgreSQL when
`ENSIGN_TEST_DATABASE_URL` names one), the app over it, and a real `ensign serve` process."""

from __future__ import annotations

import gc
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from ensign.services.admin.organisations import create_organisation
from ensign.services.keys import create_admin_key
from ensign.settings import Settings
from ensign.storage.db import Database, migrate, normalise_url
from ensign.web.app import build_state, create_app
from ensign.web.deps import AppState

REPO = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("ENSIGN_TEST_DATABASE_URL", "")


def shared_path(variable: str, default: str) -> Path:
    """A path into ../shared, overridable by an environment variable."""
    return Path(os.environ.get(variable, str(REPO.parent / "shared" / default)))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Tests that touch a database run again on PostgreSQL; the rest need not.
    for item in items:
        if "database_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.db)


@pytest.fixture(scope="session")
def _migrated_template(tmp_path_factory: pytest.TempPathFactory) -> str:
    if PG_URL:
        engine = create_engine(normalise_url(PG_URL))
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
        engine.dispose()
        migrate(PG_URL)
        return PG_URL
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    migrate(f"sqlite:///{path}")
    return str(path)


@pytest.fixture
def database_url(_migrated_template: str, tmp_path: Path) -> str:
    """A migrated, empty database for this test alone."""
    return fresh_database(_migrated_template, tmp_path)


def fresh_database(template: str, directory: Path) -> str:
    """A migrated, empty database: PostgreSQL's tables emptied, or a copy of the SQLite
    template in `directory`."""
    if PG_URL:
        engine = create_engine(normalise_url(PG_URL))
        with engine.begin() as connection:
            tables = connection.execute(
                text(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                    "AND tablename <> 'alembic_version'"
                )
            ).scalars()
            names = ", ".join(f'"{t}"' for t in tables)
            if names:
                connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        engine.dispose()
        return PG_URL
    path = directory / "ensign.sqlite3"
    shutil.copy(template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, _env_file=None)  # type: ignore[call-arg]


@pytest.fixture
def state(settings: Settings) -> Iterator[AppState]:
    app_state = build_state(settings)
    yield app_state
    app_state.identities.shutdown()
    # The identify threads hold their connections in thread-locals, which the engine's
    # dispose does not close: let the threads end and their connections be collected first,
    # or each test's state keeps PostgreSQL connections until the server runs out of them.
    app_state.identities.executor.shutdown(wait=True)
    gc.collect()
    app_state.db.dispose()


@pytest.fixture
def client(state: AppState) -> Iterator[TestClient]:
    with TestClient(create_app(state=state)) as test_client:
        yield test_client


@dataclass(frozen=True)
class Organisation:
    id: int
    admin_key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Api-Key {self.admin_key}"}


@pytest.fixture
def organisation(state: AppState) -> Organisation:
    with state.units.write() as unit:
        org = create_organisation(unit, name="Test organisation")
        key = create_admin_key(unit, org.id, "tests")
    return Organisation(org.id, key)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[[], object], timeout: float = 20.0) -> None:
    """Poll `condition` until it holds; fail the test if it does not within `timeout`."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


@dataclass
class ServerProcess:
    """A real `ensign serve` process on a free loopback port."""

    database_url: str
    port: int
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/v1/"

    def start(self, *, extra_env: dict[str, str] | None = None) -> None:
        env = {
            **os.environ,
            "ENSIGN_DATABASE_URL": self.database_url,
            "ENSIGN_CACHE_POLL_INTERVAL_SECONDS": "0.2",
            **(extra_env or {}),
        }
        assert self.log_path is not None
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ensign.cli", "serve", "--port", str(self.port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 90  # generous: a loaded 2-core machine starts slowly
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ensign serve exited: {self.log_path.read_text()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        # Fixtures never reach their teardown when setup fails: stop the server here.
        self.stop()
        raise RuntimeError(f"ensign serve did not start: {self.log_path.read_text()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(database_url, free_port(), log_path=tmp_path / "server.log")
    process.start()
    yield process
    process.stop()


@pytest.fixture
def db(state: AppState) -> Database:
    return state.db
