"""What differs between SQLite and PostgreSQL, in one place: driver placeholders, upserts, row
locks, bulk inserts from arrays, text search and id sequences.

Both databases take `INSERT … ON CONFLICT`, so upserts are one statement everywhere; they
differ in how SQLAlchemy builds it, in placeholders on the raw driver, and in locking: SQLite
has no row locks (its writers hold the whole file, from BEGIN IMMEDIATE), PostgreSQL does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import orjson
from sqlalchemy import BigInteger, Select, Text, any_, bindparam, func, literal, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

T = TypeVar("T")
# Rows per IN list: well under every database's limit on bound parameters.
CHUNK = 1000


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def driver_sql(statement: str, *, postgres: bool) -> str:
    """A raw statement written with `?` placeholders (sqlite3's), in the driver's style."""
    return statement.replace("?", "%s") if postgres else statement


@contextmanager
def driver_cursor(session: Session) -> Iterator[Any]:
    """A raw driver cursor inside the session's transaction, for statements that also run on
    the identify path's raw connections: one statement serves both. Pending ORM changes are
    flushed first, and driver errors come out as SQLAlchemy's, as from any other query."""
    session.flush()
    connection = session.connection()
    dbapi = connection.dialect.dbapi
    cursor = connection.connection.cursor()
    try:
        yield cursor
    except dbapi.Error as error:  # type: ignore[union-attr]
        raise DBAPIError.instance(None, None, error, dbapi.Error) from error  # type: ignore[union-attr]
    finally:
        cursor.close()


def upsert(session: Session, table: Any) -> Any:
    """An INSERT that takes ON CONFLICT clauses, on SQLite and PostgreSQL alike."""
    if is_postgres(session):
        return postgresql.insert(table)
    return sqlite.insert(table)


def for_update(statement: Select[Any], *, skip_locked: bool = False) -> Select[Any]:
    """Lock the selected rows until the transaction ends (SQLAlchemy leaves the clause out on
    SQLite, whose writer already holds the whole file)."""
    return statement.with_for_update(skip_locked=skip_locked)


def lock(session: Session, statement: Select[Any]) -> None:
    """Run a locking SELECT on PostgreSQL, for its locks alone; on SQLite there is nothing to
    lock, so nothing is run."""
    if is_postgres(session):
        session.execute(for_update(statement)).all()


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def array(name: str, values: Sequence[Any], item_type: Any) -> Any:
    """A PostgreSQL array parameter: a whole page of values in one bound parameter."""
    return bindparam(name, list(values), type_=postgresql.ARRAY(item_type))


def ids_in(session: Session, column: Any, ids: Sequence[int]) -> Any:
    """`column IN ids` with every id in one bound parameter: an array on PostgreSQL, JSON text
    that SQLite's `json_each` reads. An IN list renders a parameter per id, which for a
    delivery batch of a thousand cost several times the statement's own work."""
    values = [int(i) for i in ids]
    if is_postgres(session):
        return column == any_(bindparam(None, values, type_=postgresql.ARRAY(BigInteger)))
    each = func.json_each(bindparam(None, orjson.dumps(values).decode(), type_=Text))
    return column.in_(select(each.table_valued("value").c.value))


def insert_rows(
    session: Session,
    table: Any,
    columns: dict[str, Any],
    arrays: dict[str, tuple[Sequence[Any], Any]],
    conflict: Callable[[Any], Any],
) -> None:
    """Insert one row per element of the equally long `arrays`, with the same `columns` in
    every row. PostgreSQL takes it as a single INSERT … SELECT unnest(…); SQLite, whose
    statements cost no round trip, as an executemany."""
    if is_postgres(session):
        names = [*arrays, *columns]
        selected: list[Any] = [func.unnest(array(n, v, t)) for n, (v, t) in arrays.items()]
        selected += [literal(v, table.c[n].type) for n, v in columns.items()]
        session.execute(conflict(postgresql.insert(table).from_select(names, select(*selected))))
        return
    lists = {n: v for n, (v, _) in arrays.items()}
    count = len(next(iter(lists.values())))
    session.execute(
        conflict(sqlite.insert(table)),
        [{**columns, **{n: v[i] for n, v in lists.items()}} for i in range(count)],
    )


def contains(column: Any, fragment: str) -> Any:
    """A case-insensitive substring match, with LIKE's wildcards taken literally."""
    fragment = fragment.replace("\x00", "")  # PostgreSQL text cannot hold NUL; nothing contains it
    escaped = fragment.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return func.lower(column).like(f"%{escaped}%", escape="\\")


def sync_id_sequence(session: Session, table: str) -> None:
    """After rows were inserted with explicit ids, move PostgreSQL's id sequence past them
    (SQLite picks max(id) + 1 by itself)."""
    if is_postgres(session):
        session.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT GREATEST(MAX(id), 1) FROM {table}))"
            )
        )


def rowcount(result: Any) -> int:
    """Rows an UPDATE or DELETE touched (never negative: drivers say -1 when unknown)."""
    return max(int(getattr(result, "rowcount", 0) or 0), 0)
