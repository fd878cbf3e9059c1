"""Shared fixtures: a real database per test (SQLite file, or PostgreSQL when
`ENSIGN_TEST_DATABASE_URL` names one), the app over it, and a real `ensign serve` process.

On PostgreSQL the tests empty the database they are given, so they only ever use one they
created or marked as theirs (`claim_test_database`); under pytest-xdist each worker has its
own, named after it (`ensign_test_gw0`, ...)."""

from __future__ import annotations

import gc
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import URL, create_engine, make_url, text
from sqlalchemy.pool import NullPool

from ensign.services.admin.organisations import create_organisation
from ensign.services.keys import create_admin_key
from ensign.settings import Settings
from ensign.storage.db import Database, migrate, normalise_url
from ensign.web.app import build_state, create_app
from ensign.web.deps import AppState
from tests.fakes.script import free_port

REPO = Path(__file__).resolve().parent.parent

# Argon2's cheapest parameters: production's cost a large part of a second per hash, and the
# dashboard tests hash hundreds of passwords. Exported, so `ensign serve` processes get it too.
os.environ.setdefault("ENSIGN_PASSWORD_HASH_PROFILE", "CHEAPEST")

# What the tests write on a PostgreSQL database they may empty (`COMMENT ON DATABASE`).
TEST_DATABASE_MARK = "Ensign test database: the test suite empties it at will."


def worker_database_url(url: str, worker: str | None) -> str:
    """The database of a pytest-xdist worker: the named one with the worker's id appended
    (`ensign_test_gw0`), so that workers never empty each other's tables; the named one
    itself without xdist."""
    if not url or not worker:
        return url
    parsed = make_url(url)
    return parsed.set(database=f"{parsed.database}_{worker}").render_as_string(hide_password=False)


NAMED_PG_URL = os.environ.get("ENSIGN_TEST_DATABASE_URL", "")
PG_URL = worker_database_url(NAMED_PG_URL, os.environ.get("PYTEST_XDIST_WORKER"))


class NotATestDatabase(Exception):
    """The database holds tables and is not marked as the tests' own."""


def claim_test_database(url: str) -> None:
    """Make sure `url` names a PostgreSQL database the tests may empty: create it (marked as
    theirs) when missing, mark it when it exists but holds no table, and raise
    `NotATestDatabase` when it holds tables without the mark: it may be someone's data."""
    target = make_url(normalise_url(url))
    name = target.database
    assert name, f"no database name in {url}"
    # The server's maintenance database, to create the target or read its comment from.
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            row = connection.execute(
                text(
                    "SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                    "WHERE datname = :name"
                ),
                {"name": name},
            ).first()
            quoted = connection.dialect.identifier_preparer.quote(name)
            if row is None:
                connection.execute(text(f"CREATE DATABASE {quoted}"))
            elif row[0] == TEST_DATABASE_MARK:
                return
            else:
                tables = _user_tables(target)
                if tables:
                    raise NotATestDatabase(
                        f"Refusing to empty PostgreSQL database {name!r}: it holds tables "
                        f"({', '.join(tables[:5])}{', ...' if len(tables) > 5 else ''}) and the "
                        "tests did not create it. Point ENSIGN_TEST_DATABASE_URL (make test: "
                        "ENSIGN_TEST_POSTGRES_URL) at a database the tests may create, such as "
                        "ensign_test; or, if this one is scratch, drop it or run "
                        f"COMMENT ON DATABASE {quoted} IS '{TEST_DATABASE_MARK}'"
                    )
            # A literal: utility statements take no parameters (the mark holds no quote).
            connection.execute(text(f"COMMENT ON DATABASE {quoted} IS '{TEST_DATABASE_MARK}'"))
    finally:
        admin.dispose()


def _user_tables(url: URL) -> list[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return list(
                connection.execute(
                    text(
                        "SELECT table_schema || '.' || table_name FROM information_schema.tables "
                        "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') "
                        "ORDER BY 1"
                    )
                ).scalars()
            )
    finally:
        engine.dispose()


def shared_path(variable: str, default: str) -> Path:
    """A path into ../shared, overridable by an environment variable."""
    return Path(os.environ.get(variable, str(REPO.parent / "shared" / default)))


def pytest_sessionstart(session: pytest.Session) -> None:
    # Claim every worker's database before any worker starts, so that a refusal stops the run
    # with its message (an exit inside an xdist worker shows only as an internal error).
    if not NAMED_PG_URL or os.environ.get("PYTEST_XDIST_WORKER"):
        return
    workers = len(session.config.getoption("tx", default=None) or [])
    for n in range(workers) if workers else [None]:
        try:
            claim_test_database(worker_database_url(NAMED_PG_URL, None if n is None else f"gw{n}"))
        except NotATestDatabase as refusal:
            pytest.exit(str(refusal), returncode=pytest.ExitCode.USAGE_ERROR)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Tests that touch a database run again on PostgreSQL; the rest need not.
    for item in items:
        if "database_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.db)


@pytest.fixture(scope="session")
def _migrated_template(tmp_path_factory: pytest.TempPathFactory) -> str:
    if PG_URL:
        try:
            # Claimed at the session's start; again here for a worker xdist started later.
            claim_test_database(PG_URL)
        except NotATestDatabase as refusal:
            pytest.fail(str(refusal), pytrace=False)
        engine = create_engine(normalise_url(PG_URL))
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
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
        _empty_postgres(PG_URL)
        return PG_URL
    path = directory / "ensign.sqlite3"
    shutil.copy(template, path)
    return f"sqlite:///{path}"


# The statement that empties the migrated PostgreSQL database, made once per session.
_EMPTYING: dict[str, str] = {}


def _empty_postgres(url: str) -> None:
    """Every table emptied and every sequence back at 1, as in a fresh copy. DELETE with the
    foreign keys' triggers off (`session_replication_role`, a superuser's setting) takes
    milliseconds where TRUNCATE takes most of a second per test; TRUNCATE otherwise."""
    engine = create_engine(normalise_url(url), poolclass=NullPool)
    with engine.begin() as connection:
        if url not in _EMPTYING:
            tables = list(
                connection.execute(
                    text(
                        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                        "AND tablename <> 'alembic_version' ORDER BY 1"
                    )
                ).scalars()
            )
            superuser = connection.execute(text("SHOW is_superuser")).scalar() == "on"
            if not tables:
                _EMPTYING[url] = ""
            elif superuser:
                sequences = connection.execute(
                    text(
                        "SELECT format('%I.%I', schemaname, sequencename) FROM pg_sequences "
                        "WHERE schemaname = 'public'"
                    )
                ).scalars()
                _EMPTYING[url] = "; ".join(
                    [
                        "SET LOCAL session_replication_role = replica",
                        *(f'DELETE FROM "{table}"' for table in tables),
                        *(f"SELECT setval('{sequence}', 1, false)" for sequence in sequences),
                    ]
                )
            else:
                names = ", ".join(f'"{table}"' for table in tables)
                _EMPTYING[url] = f"TRUNCATE {names} RESTART IDENTITY CASCADE"
        if _EMPTYING[url]:
            connection.execute(text(_EMPTYING[url]))
    engine.dispose()


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

    @property
    def tmp_dir(self) -> Path:
        """The server's TMPDIR (its metrics files go there): one per test, so that a server
        that another xdist worker starts never tidies this one's away."""
        assert self.log_path is not None
        return self.log_path.parent / f"tmp-{self.port}"

    def start(self, *, extra_env: dict[str, str] | None = None) -> None:
        self.tmp_dir.mkdir(exist_ok=True)
        env = {
            **os.environ,
            "TMPDIR": str(self.tmp_dir),
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
