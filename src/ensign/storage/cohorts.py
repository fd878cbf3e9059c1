"""Cohort syncs: the environments' sync keys and settings, cohorts and their members, the
pages of full syncs, and the sync log.

Member writes are bulk statements: a page of 10,000 members costs a handful of statements,
never one per member (the identities themselves are made by `identities.ensure_identities`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import Integer, delete, func, select, update
from sqlalchemy.orm import Session

from ensign.storage import dialect
from ensign.storage.models import (
    Cohort,
    CohortMember,
    CohortSyncKey,
    CohortSyncLogEntry,
    CohortSyncSession,
    CohortSyncSettings,
    Trait,
)
from ensign.storage.pagination import Page, Window, page

# --- keys and settings ------------------------------------------------------------------------


def add_key(
    session: Session, environment_id: int, name: str, prefix: str, key_hash: str
) -> CohortSyncKey:
    key = CohortSyncKey(
        environment_id=environment_id, name=name, prefix=prefix, key_hash=key_hash, active=True
    )
    session.add(key)
    session.flush()
    return key


def save(session: Session) -> None:
    """Write what the unit changed on loaded rows so far."""
    session.flush()


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
    statement = dialect.upsert(session, CohortSyncSettings).values(
        environment_id=environment_id, member_key=key, updated_at=now
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["environment_id"],
            set_={"member_key": statement.excluded.member_key, "updated_at": now},
        )
    )


# --- cohorts and their members ---------------------------------------------------------------


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
        dialect.upsert(session, Cohort)
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
        dialect.for_update(
            select(Cohort).where(
                Cohort.environment_id == environment_id,
                Cohort.source == source,
                Cohort.external_id == external_id,
            )
        ).execution_options(populate_existing=True)
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
    dialect.insert_rows(
        session,
        CohortMember.__table__,
        {"cohort_id": cohort_id, "created_at": now, "seen_at": now},
        {"identity_id": (identity_ids, Integer)},
        lambda insert: insert.on_conflict_do_update(
            index_elements=["cohort_id", "identity_id"], set_={"seen_at": insert.excluded.seen_at}
        ),
    )
    dialect.insert_rows(
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
    for chunk in dialect.chunks(identity_ids):
        session.execute(delete(Trait).where(Trait.key == trait_key, Trait.identity_id.in_(chunk)))
        result = session.execute(
            delete(CohortMember).where(
                CohortMember.cohort_id == cohort_id, CohortMember.identity_id.in_(chunk)
            )
        )
        removed += dialect.rowcount(result)
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
    return dialect.rowcount(result)


# --- full-sync sessions -------------------------------------------------------------------------


def locked_session(
    session: Session, cohort_id: int, session_id: str, total_pages: int, now: dt.datetime
) -> CohortSyncSession:
    """The sync session, created if new; the cohort's lock already serialises its pages."""
    session.execute(
        dialect.upsert(session, CohortSyncSession)
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
    statement = (
        select(CohortSyncLogEntry)
        .where(CohortSyncLogEntry.environment_id == environment_id)
        .order_by(CohortSyncLogEntry.id.desc())
    )
    return page(session, statement, window)
