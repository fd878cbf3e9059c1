"""Driver exceptions turned into Ensign's own at storage's boundary.

A fault a retry can fix (the database down or restarting, a lost connection, a lock or
statement timeout, a serialisation failure or deadlock, the schema mid-migration) becomes
`DatabaseUnavailable`, which every surface answers with a 5xx so that clients retry. A broken
uniqueness rule becomes `Conflict` where a caller asks for it (`flush`). Anything else (bad
input the database refused, a bug in a statement) travels on unchanged: retrying it would
fail the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm import Session

from ensign.errors import Conflict, DatabaseUnavailable

UNAVAILABLE = "The database is unavailable; please retry."

# PostgreSQL's undefined table and column: the schema is behind the code, as while a
# migration runs. (SQLite says "no such table" or "no such column".)
_SCHEMA_BEHIND = frozenset({"42P01", "42703"})
# SQLite's own state, not the statement's: busy or locked, I/O, cannot open, full, no memory.
_SQLITE_TRANSIENT = (
    "SQLITE_BUSY",
    "SQLITE_LOCKED",
    "SQLITE_IOERR",
    "SQLITE_CANTOPEN",
    "SQLITE_FULL",
    "SQLITE_NOMEM",
    "SQLITE_PROTOCOL",
)


def _is_transient(cause: BaseException, *, operational: bool) -> bool:
    if getattr(cause, "sqlstate", None) in _SCHEMA_BEHIND:
        return True
    if not operational:
        return False
    sqlite_name = getattr(cause, "sqlite_errorname", None)
    if sqlite_name is None:
        # PostgreSQL's operational errors are connection loss, serialisation failures and
        # deadlocks, lock and statement timeouts, shutdowns and exhausted resources.
        return True
    # SQLite reports some misuse (a syntax error) as operational too.
    return sqlite_name.startswith(_SQLITE_TRANSIENT) or str(cause).startswith(
        ("no such table", "no such column")
    )


def is_transient(error: BaseException) -> bool:
    """Whether a SQLAlchemy error is a database fault that a retry can fix."""
    if not isinstance(error, DBAPIError) or isinstance(error, IntegrityError | DataError):
        return False
    if error.connection_invalidated:
        return True
    operational = isinstance(error, OperationalError | InterfaceError)
    return error.orig is not None and _is_transient(error.orig, operational=operational)


def is_transient_driver_error(error: BaseException, dbapi: Any) -> bool:
    """`is_transient` for an exception of the raw driver module `dbapi` (sqlite3, psycopg)."""
    if not isinstance(error, dbapi.Error) or isinstance(
        error, dbapi.IntegrityError | dbapi.DataError
    ):
        return False
    operational = isinstance(error, dbapi.OperationalError | dbapi.InterfaceError)
    return _is_transient(error, operational=operational)


@contextmanager
def unavailable_on_fault() -> Iterator[None]:
    """Let transient database faults out as `DatabaseUnavailable`."""
    try:
        yield
    except DBAPIError as error:
        if is_transient(error):
            raise DatabaseUnavailable(UNAVAILABLE) from error
        raise


def flush(session: Session, *, conflict: str, field: str | None = None) -> None:
    """Flush, turning a broken uniqueness rule into `Conflict`."""
    try:
        session.flush()
    except IntegrityError as error:
        raise Conflict(conflict, field=field) from error
