"""Database engines and sessions, made from Settings, and bringing the schema up to date.

Sessions are storage's boundary: a transient driver fault inside one (including its commit)
leaves it as `DatabaseUnavailable` (see `faults`)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from ensign.storage.faults import unavailable_on_fault

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def normalise_url(url: str) -> str:
    """Accept the plain `postgresql://` URLs operators paste, and drive them with psycopg 3."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


class Database:
    """One engine and its session factory.

    SQLite allows one writer at a time and makes a blocked writer sleep and poll, which turns
    contention into latency spikes; writers in one process therefore queue on a lock instead.
    """

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = normalise_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            # The identify threads (`IdentityStorePool`, 16) keep one connection each; the
            # rest serve sessions (admin, cache loads, delivery). At most 30 per process:
            # docs/scaling.md counts them against PostgreSQL's `max_connections`.
            kwargs.update(pool_size=20, max_overflow=10, pool_pre_ping=True)
        self.engine: Engine = create_engine(self.url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine, "connect", _configure_sqlite)
            event.listen(self.engine, "begin", _begin)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._write_sessions = sessionmaker(
            self.engine.execution_options(sqlite_begin="IMMEDIATE"), expire_on_commit=False
        )
        self._write_lock = threading.Lock() if self.is_sqlite else None

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session for reads, or writes that tolerate waiting; commits on success."""
        with unavailable_on_fault(), self._locked(), self._write_sessions() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        """A session that only reads; it never takes the writers' lock."""
        with unavailable_on_fault(), self.sessions() as session:
            try:
                yield session
            finally:
                session.rollback()

    @property
    def write_lock(self) -> threading.Lock | None:
        """The lock this process's SQLite writers queue on (None on PostgreSQL). Writers on raw
        connections take it too, so that they queue behind the sessions' writers (and the
        delivery dispatcher's) instead of sleeping in SQLite's busy handler."""
        return self._write_lock

    @contextmanager
    def _locked(self) -> Iterator[None]:
        if self._write_lock is None:
            yield
            return
        with self._write_lock:
            yield

    def dispose(self) -> None:
        self.engine.dispose()


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # Let Python's sqlite3 stop issuing its own BEGIN so that ours (IMMEDIATE) is used.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=30000")
    # `migrate` already put the file in WAL mode (a switch needs every other connection
    # closed), so this is normally a no-op; it matters for files made by other means.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    # Some builds (Debian's) zero every freed page, writing each to the log: the delivered
    # outbox rows deleted all day made the delivery process's transactions several times longer,
    # and identify calls wait for them. FAST still zeroes deleted rows on the pages written.
    cursor.execute("PRAGMA secure_delete=FAST")
    cursor.close()


def _begin(connection: Any) -> None:
    # Writers take the write lock at BEGIN (IMMEDIATE): two deferred transactions that both
    # try to upgrade to writing would otherwise fail with "database is locked".
    mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
    connection.exec_driver_sql(f"BEGIN {mode}")


def migrate(url: str) -> None:
    """Bring the database at `url` to the latest migration (a no-op when it is there already)."""
    from alembic import command

    command.upgrade(alembic_config(url), "head")
    if normalise_url(url).startswith("sqlite"):
        # WAL lets readers run beside the writer; the mode is kept in the file, and setting
        # it here, before the server opens its connections, avoids racing them for the switch.
        engine = create_engine(normalise_url(url))
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA journal_mode=WAL")
        engine.dispose()


def alembic_config(url: str) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return config
