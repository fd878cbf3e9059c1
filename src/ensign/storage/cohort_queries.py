"""Cohort-sync queries. Member writes are bulk statements: a page of 10,000 members costs a
handful of statements, never one per member. Callers own the session and its transaction."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import (
    Integer,
    String,
    Text,
    any_,
    bindparam,
    delete,
    func,
    literal,
    select,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from ensign.storage.admin_queries import Page, Window
from ensign.storage.cohort_models import (
    Cohort,
    CohortMember,
    CohortSyncKey,
    CohortSyncLogEntry,
    CohortSyncSession,
    CohortSyncSettings,
)
from ensign.storage.models import AuditLog, Environment, Identity, Project, Segment, Trait
from ensign.storage.repositories import hash_identifier

T = TypeVar("T")
# Rows per IN list: well under every database's limit on bound parameters.
CHUNK = 1000


def _chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _insert(session: Session, table: Any) -> Any:
    """An INSERT that takes ON CONFLICT clauses, on SQLite and PostgreSQL alike."""
    if _is_postgres(session):
        return postgresql.insert(table)
    return sqlite_insert(table)


def is_database_fault(error: BaseException) -> bool:
    """Whether `error` came from the database (down, locked, timed out): worth retrying."""
    return isinstance(error, DBAPIError)


# --- environments, keys and settings ----------------------------------------------------------


def environment(session: Session, environment_id: int) -> Environment | None:
    return session.get(Environment, environment_id)


def add_key(
    session: Session, environment_id: int, name: str, prefix: str, key_hash: str
) -> CohortSyncKey:
    key = CohortSyncKey(
        environment_id=environment_id, name=name, prefix=prefix, key_hash=key_hash, active=True
    )
    session.add(key)
    session.flush()
    return key


def keys(session: Session, environment_id: int) -> Sequence[CohortSyncKey]:
    return session.scalars(
        select(CohortSyncKey)
        .where(CohortSyncKey.environment_id == environment_id)
        .order_by(CohortSyncKey.id)
    ).all()


def key_by_id(session: Session, environment_id: int, key_id: int) -> CohortSyncKey | None:
    key = session.get(CohortSyncKey, key_id)
    return key if key is not None and key.environment_id == environment_id else None


def key_by_hash(session: Session, key_hash: str) -> CohortSyncKey | None:
    return session.scalar(select(CohortSyncKey).where(CohortSyncKey.key_hash == key_hash))


def mark_key_used(session: Session, key_id: int, now: dt.datetime) -> None:
    session.execute(
        update(CohortSyncKey).where(CohortSyncKey.id == key_id).values(last_used_at=now)
    )


def member_key(session: Session, environment_id: int) -> str | None:
    row = session.get(CohortSyncSettings, environment_id)
    return None if row is None else row.member_key


def set_member_key(session: Session, environment_id: int, key: str, now: dt.datetime) -> None:
    statement = _insert(session, CohortSyncSettings).values(
        environment_id=environment_id, member_key=key, updated_at=now
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["environment_id"],
            set_={"member_key": statement.excluded.member_key, "updated_at": now},
        )
    )


# --- cohorts and their segments ---------------------------------------------------------------


def locked_cohort(
    session: Session,
    environment_id: int,
    source: str,
    external_id: str,
    *,
    name: str,
    trait_key: str,
    now: dt.datetime,
) -> tuple[Cohort, bool]:
    """The cohort, created if new, locked until the transaction ends so that calls for one
    cohort run one at a time; and whether this call created it."""
    created = session.execute(
        _insert(session, Cohort)
        .values(
            environment_id=environment_id,
            source=source,
            external_id=external_id,
            name=name,
            trait_key=trait_key,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["environment_id", "source", "external_id"])
        .returning(Cohort.id)
    ).first()
    cohort = session.scalar(
        select(Cohort)
        .where(
            Cohort.environment_id == environment_id,
            Cohort.source == source,
            Cohort.external_id == external_id,
        )
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert cohort is not None
    return cohort, created is not None


def cohorts(session: Session, environment_id: int) -> list[tuple[Cohort, int]]:
    """The environment's cohorts with their member counts."""
    counts = (
        select(CohortMember.cohort_id, func.count().label("members"))
        .group_by(CohortMember.cohort_id)
        .subquery()
    )
    rows = session.execute(
        select(Cohort, func.coalesce(counts.c.members, 0))
        .outerjoin(counts, counts.c.cohort_id == Cohort.id)
        .where(Cohort.environment_id == environment_id)
        .order_by(Cohort.id)
    ).all()
    return [(row[0], int(row[1])) for row in rows]


def managed_segment(session: Session, project_id: int, managed_by: str) -> Segment | None:
    return session.scalar(
        select(Segment)
        .where(Segment.project_id == project_id, Segment.managed_by == managed_by)
        .order_by(Segment.id)
        .limit(1)
    )


def lock_project(session: Session, project_id: int) -> None:
    """Serialise segment creation in a project (a no-op on SQLite, whose writers are serial)."""
    session.execute(select(Project.id).where(Project.id == project_id).with_for_update())


def add_segment(session: Session, project_id: int, name: str, rules: list[Any], by: str) -> Segment:
    segment = Segment(project_id=project_id, name=name, rules=rules, managed_by=by)
    session.add(segment)
    session.flush()
    return segment


def add_audit_entry(
    session: Session,
    *,
    organisation_id: int,
    project_id: int,
    environment_id: int,
    actor: str,
    action: str,
    segment: Segment,
    log: str,
) -> None:
    session.add(
        AuditLog(
            organisation_id=organisation_id,
            project_id=project_id,
            environment_id=environment_id,
            actor=actor,
            action=action,
            resource_type="segment",
            resource_id=str(segment.id),
            log=log,
            after={"id": segment.id, "name": segment.name, "managed_by": segment.managed_by},
        )
    )


# --- members ------------------------------------------------------------------------------------


def _is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _array(name: str, values: Sequence[Any], item_type: Any) -> Any:
    """A PostgreSQL array parameter: a whole page of values in one bound parameter."""
    return bindparam(name, list(values), type_=postgresql.ARRAY(item_type))


def _insert_rows(
    session: Session,
    table: Any,
    columns: dict[str, Any],
    arrays: dict[str, tuple[Sequence[Any], Any]],
    conflict: Callable[[Any], Any],
) -> None:
    """Insert one row per element of the equally long `arrays`, with the same `columns` in
    every row. PostgreSQL takes it as a single INSERT … SELECT unnest(…); SQLite, whose
    statements cost no round trip, as an executemany."""
    if _is_postgres(session):
        names = [*arrays, *columns]
        selected: list[Any] = [func.unnest(_array(n, v, t)) for n, (v, t) in arrays.items()]
        selected += [literal(v, table.c[n].type) for n, v in columns.items()]
        session.execute(conflict(postgresql.insert(table).from_select(names, select(*selected))))
        return
    lists = {n: v for n, (v, _) in arrays.items()}
    count = len(next(iter(lists.values())))
    session.execute(
        conflict(sqlite_insert(table)),
        [{**columns, **{n: v[i] for n, v in lists.items()}} for i in range(count)],
    )


def ensure_identities(
    session: Session, environment_id: int, identifiers: Sequence[str], now: dt.datetime
) -> list[int]:
    """The ids of these identities, creating those that do not exist yet."""
    if not identifiers:
        return []
    hashes = {hash_identifier(i): i for i in identifiers}
    # Sorted, so that concurrent calls lock rows in one order and cannot deadlock.
    ordered = sorted(hashes)
    _insert_rows(
        session,
        Identity.__table__,
        {"environment_id": environment_id, "created_at": now},
        {
            "identifier_hash": (ordered, String),
            "identifier": ([hashes[h] for h in ordered], Text),
        },
        lambda insert: insert.on_conflict_do_nothing(
            index_elements=["environment_id", "identifier_hash"]
        ),
    )
    return find_identities(session, environment_id, ordered, hashed=True)


def find_identities(
    session: Session, environment_id: int, identifiers: Sequence[str], *, hashed: bool = False
) -> list[int]:
    """The ids of those of these identities that exist, sorted."""
    hashes = list(identifiers) if hashed else sorted({hash_identifier(i) for i in identifiers})
    if _is_postgres(session):
        matches = [Identity.identifier_hash == any_(_array("hashes", hashes, String))]
    else:
        matches = [Identity.identifier_hash.in_(chunk) for chunk in _chunks(hashes)]
    ids: list[int] = []
    for match in matches:
        ids.extend(
            session.scalars(
                select(Identity.id).where(Identity.environment_id == environment_id, match)
            )
        )
    return sorted(int(i) for i in ids)


def member_count(session: Session, cohort_id: int) -> int:
    count = session.scalar(
        select(func.count()).select_from(CohortMember).where(CohortMember.cohort_id == cohort_id)
    )
    return int(count or 0)


def add_members(
    session: Session, cohort_id: int, trait_key: str, identity_ids: Sequence[int], now: dt.datetime
) -> int:
    """Make these identities members: the trait set to true and the member row seen now.
    Answers how many were not members before."""
    if not identity_ids:
        return 0
    before = member_count(session, cohort_id)
    _insert_rows(
        session,
        CohortMember.__table__,
        {"cohort_id": cohort_id, "created_at": now, "seen_at": now},
        {"identity_id": (identity_ids, Integer)},
        lambda insert: insert.on_conflict_do_update(
            index_elements=["cohort_id", "identity_id"], set_={"seen_at": insert.excluded.seen_at}
        ),
    )
    _insert_rows(
        session,
        Trait.__table__,
        {"key": trait_key, "value_type": "bool", "value_text": "true", "created_at": now},
        {"identity_id": (identity_ids, Integer)},
        lambda insert: insert.on_conflict_do_update(
            index_elements=["identity_id", "key"],
            set_={"value_type": "bool", "value_text": "true"},
            where=(Trait.value_type != "bool") | (Trait.value_text != "true"),
        ),
    )
    return member_count(session, cohort_id) - before


def remove_members(
    session: Session, cohort_id: int, trait_key: str, identity_ids: Sequence[int]
) -> int:
    """Delete these identities' membership and trait; answers how many were members."""
    removed = 0
    for chunk in _chunks(identity_ids):
        session.execute(delete(Trait).where(Trait.key == trait_key, Trait.identity_id.in_(chunk)))
        result = session.execute(
            delete(CohortMember).where(
                CohortMember.cohort_id == cohort_id, CohortMember.identity_id.in_(chunk)
            )
        )
        removed += max(int(result.rowcount), 0)  # type: ignore[attr-defined]
    return removed


def remove_members_unseen_since(
    session: Session, cohort_id: int, trait_key: str, since: dt.datetime
) -> int:
    """Remove every member not seen since `since`, in two statements."""
    unseen = (CohortMember.cohort_id == cohort_id) & (CohortMember.seen_at < since)
    session.execute(
        delete(Trait).where(
            Trait.key == trait_key,
            Trait.identity_id.in_(select(CohortMember.identity_id).where(unseen)),
        )
    )
    result = session.execute(delete(CohortMember).where(unseen))
    return max(int(result.rowcount), 0)  # type: ignore[attr-defined]


# --- full-sync sessions -------------------------------------------------------------------------


def locked_session(
    session: Session, cohort_id: int, session_id: str, total_pages: int, now: dt.datetime
) -> CohortSyncSession:
    """The sync session, created if new; the cohort's lock already serialises its pages."""
    session.execute(
        _insert(session, CohortSyncSession)
        .values(
            cohort_id=cohort_id,
            session_id=session_id,
            total_pages=total_pages,
            pages=[],
            started_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["cohort_id", "session_id"])
    )
    row = session.scalar(
        select(CohortSyncSession)
        .where(CohortSyncSession.cohort_id == cohort_id, CohortSyncSession.session_id == session_id)
        .execution_options(populate_existing=True)
    )
    assert row is not None
    return row


def delete_sessions_before(
    session: Session, cohort_id: int, keep_id: int, before: dt.datetime
) -> None:
    """Forget the cohort's other sessions last touched before `before`."""
    session.execute(
        delete(CohortSyncSession).where(
            CohortSyncSession.cohort_id == cohort_id,
            CohortSyncSession.id != keep_id,
            CohortSyncSession.updated_at < before,
        )
    )


# --- sync log -----------------------------------------------------------------------------------


def add_log_entry(session: Session, entry: CohortSyncLogEntry) -> None:
    session.add(entry)
    session.flush()


def log_entries(session: Session, environment_id: int, window: Window) -> Page[CohortSyncLogEntry]:
    """The environment's sync log, newest first."""
    count = session.scalar(
        select(func.count())
        .select_from(CohortSyncLogEntry)
        .where(CohortSyncLogEntry.environment_id == environment_id)
    )
    items = session.scalars(
        select(CohortSyncLogEntry)
        .where(CohortSyncLogEntry.environment_id == environment_id)
        .order_by(CohortSyncLogEntry.id.desc())
        .offset(window.offset)
        .limit(window.limit)
    ).all()
    return Page(items, int(count or 0))
