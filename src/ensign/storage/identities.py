"""Identities and traits.

An identify call reads one identity with its traits and writes a few rows. Through the ORM
that costs about a millisecond of Python per call, most of it statement building; so its
statements go straight to the driver (sqlite3 or psycopg) through `IdentityStore`, for a tenth
of that. The ORM paths that need the same statements (the admin API, the import) run them on
their session's connection (`get_or_create_identity`); cohort syncs create identities a page at
a time (`ensure_identities`). The admin API's listings are here too.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, Text, any_, select
from sqlalchemy.orm import Session

from ensign.storage import dialect
from ensign.storage.base import sqlite_timestamp, utcnow
from ensign.storage.experiments import insert_exposure
from ensign.storage.models import Identity, Trait
from ensign.storage.outbox import OutboxRecord, insert_outbox
from ensign.storage.pagination import Page, Window, page
from ensign.storage.suppressed import SuppressedTally


def hash_identifier(identifier: str) -> str:
    return hashlib.sha256(identifier.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class StoredTrait:
    id: int
    key: str
    value_type: str
    value_text: str


@dataclass(frozen=True)
class StoredIdentity:
    id: int
    identifier: str
    traits: list[StoredTrait]
    # What was last recorded for each integration (`services.delivered`'s text), if anything.
    delivered: str | None = None


# --- the identify path, on the raw driver -------------------------------------------------------


class _Statements:
    """The identify path's statements in one driver's placeholder style, made once."""

    def __init__(self, *, postgres: bool) -> None:
        def sql(statement: str) -> str:
            return dialect.driver_sql(statement, postgres=postgres)

        load = (
            "SELECT i.id, i.identifier, t.id, t.key, t.value_type, t.value_text, "
            "i.delivered_flags "
            "FROM identities i LEFT JOIN traits t ON t.identity_id = i.id "
            "WHERE i.environment_id = ? AND i.identifier_hash = ? ORDER BY t.id"
        )
        self.load = sql(load)
        # The same, locking the identity row until the transaction ends (PostgreSQL; SQLite's
        # write transactions are serial already): two identify calls for one identity then
        # compare with, and replace, what was last recorded one after the other.
        self.load_locked = sql(load + (" FOR UPDATE OF i" if postgres else ""))
        self.update_delivered = sql("UPDATE identities SET delivered_flags = ? WHERE id = ?")
        self.add_suppressed = sql(
            "UPDATE integration_configs SET suppressed_count = suppressed_count + ? WHERE id = ?"
        )
        self.insert_identity = sql(
            "INSERT INTO identities (environment_id, identifier, identifier_hash, created_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (environment_id, identifier_hash) DO NOTHING "
            "RETURNING id"
        )
        self.find_identity = sql(
            "SELECT id FROM identities WHERE environment_id = ? AND identifier_hash = ?"
        )
        self.insert_trait = sql(
            "INSERT INTO traits (identity_id, key, value_type, value_text, created_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (identity_id, key) "
            "DO UPDATE SET value_type = excluded.value_type, value_text = excluded.value_text "
            "RETURNING id"
        )
        self.update_trait = sql("UPDATE traits SET value_type = ?, value_text = ? WHERE id = ?")
        self.delete_trait = sql("DELETE FROM traits WHERE id = ?")
        self.insert_zero_trait = sql(
            "INSERT INTO traits (identity_id, key, value_type, value_text, created_at) "
            "VALUES (?, ?, 'int', '0', ?) ON CONFLICT (identity_id, key) DO NOTHING"
        )
        # SQLite has no row locks; its write transactions (BEGIN IMMEDIATE) are serial already.
        self.lock_trait = sql(
            "SELECT id, key, value_type, value_text FROM traits WHERE identity_id = ? AND key = ?"
            + (" FOR UPDATE" if postgres else "")
        )


_SQLITE = _Statements(postgres=False)
_POSTGRES = _Statements(postgres=True)


class IdentityStore:
    """Identify-path statements bound to one driver cursor inside one transaction."""

    def __init__(
        self, cursor: Any, *, is_postgres: bool, tally: SuppressedTally | None = None
    ) -> None:
        self._cursor = cursor
        self._pg = is_postgres
        self._sql = _POSTGRES if is_postgres else _SQLITE
        self._tally = tally or SuppressedTally()
        # Counts this transaction took from the tally to write: given back if it fails.
        self.taken: dict[int, int] = {}

    def _now(self) -> Any:
        now = utcnow()
        return now if self._pg else sqlite_timestamp(now)

    def load_identity(
        self, environment_id: int, identifier: str, *, lock: bool = False
    ) -> StoredIdentity | None:
        """The identity with its traits and what was last recorded for it; with `lock`, its
        row stays locked until this transaction ends."""
        statement = self._sql.load_locked if lock else self._sql.load
        self._cursor.execute(statement, (environment_id, hash_identifier(identifier)))
        rows = self._cursor.fetchall()
        if not rows:
            return None
        traits = [StoredTrait(r[2], r[3], r[4], r[5]) for r in rows if r[2] is not None]
        return StoredIdentity(int(rows[0][0]), rows[0][1], traits, rows[0][6])

    def update_delivered(self, identity_id: int, delivered: str) -> None:
        """Replace what was last recorded for the identity (see `load_identity`)."""
        self._cursor.execute(self._sql.update_delivered, (delivered, identity_id))

    def count_suppressed(self, counts: Mapping[int, int]) -> None:
        """Count identify calls whose flags were not recorded, per integration: in memory, and
        written in this transaction when the tally is due (see `storage.suppressed`)."""
        if counts:
            self._tally.add(counts)
        self.write_suppressed(self._tally.take())

    def write_suppressed(self, counts: Mapping[int, int]) -> None:
        if not counts:
            return
        self.taken = dict(counts)
        # Sorted, so that two transactions lock the integrations' rows in one order.
        self._cursor.executemany(
            self._sql.add_suppressed, [(n, i) for i, n in sorted(counts.items())]
        )

    def get_or_create_identity(self, environment_id: int, identifier: str) -> tuple[int, bool]:
        """The identity's id, and whether this call created it. Safe when two requests race."""
        identifier_hash = hash_identifier(identifier)
        self._cursor.execute(
            self._sql.insert_identity, (environment_id, identifier, identifier_hash, self._now())
        )
        row = self._cursor.fetchone()
        if row is not None:
            return int(row[0]), True
        self._cursor.execute(self._sql.find_identity, (environment_id, identifier_hash))
        return int(self._cursor.fetchone()[0]), False

    def insert_traits(
        self, identity_id: int, traits: Sequence[tuple[str, str, str]]
    ) -> dict[str, int]:
        """Insert (key, value_type, value_text) rows (updating any a racing call made first)."""
        now = self._now()
        if self._pg and len(traits) > 1 and len({key for key, _, _ in traits}) == len(traits):
            # One statement for all of them: on PostgreSQL each statement is a round trip to
            # the server, and the identify transaction's round trips are most of its time.
            # (A key twice in one statement would be an error, hence distinct keys only.)
            values = ", ".join(["(%s, %s, %s, %s, %s)"] * len(traits))
            self._cursor.execute(
                f"INSERT INTO traits (identity_id, key, value_type, value_text, created_at) "
                f"VALUES {values} ON CONFLICT (identity_id, key) DO UPDATE SET "
                "value_type = excluded.value_type, value_text = excluded.value_text "
                "RETURNING key, id",
                [v for t in traits for v in (identity_id, *t, now)],
            )
            return {key: int(trait_id) for key, trait_id in self._cursor.fetchall()}
        ids = {}
        for key, value_type, value_text in traits:
            self._cursor.execute(
                self._sql.insert_trait, (identity_id, key, value_type, value_text, now)
            )
            ids[key] = int(self._cursor.fetchone()[0])
        return ids

    def update_trait(self, trait_id: int, value_type: str, value_text: str) -> None:
        self._cursor.execute(self._sql.update_trait, (value_type, value_text, trait_id))

    def lock_trait(self, identity_id: int, key: str) -> StoredTrait:
        """The trait, created as the integer 0 when missing, locked until this transaction ends:
        a read-modify-write of it (an increment) cannot lose a concurrent one."""
        self._cursor.execute(self._sql.insert_zero_trait, (identity_id, key, self._now()))
        self._cursor.execute(self._sql.lock_trait, (identity_id, key))
        row = self._cursor.fetchone()
        return StoredTrait(int(row[0]), row[1], row[2], row[3])

    def delete_traits(self, trait_ids: Sequence[int]) -> None:
        for trait_id in trait_ids:
            self._cursor.execute(self._sql.delete_trait, (trait_id,))

    def insert_outbox(self, records: Sequence[OutboxRecord]) -> None:
        """Record evaluations for the analytics dispatcher in this transaction (see `outbox`)."""
        insert_outbox(self._cursor, records, postgres=self._pg)

    def insert_exposure(
        self, experiment_id: int, identifier: str, variant: str, at: dt.datetime
    ) -> bool:
        """Record an experiment exposure unless already there (see `experiments`)."""
        return insert_exposure(
            self._cursor, experiment_id, identifier, variant, at, postgres=self._pg
        )


def load_identities(
    session: Session, environment_id: int, identifiers: Sequence[str]
) -> dict[str, StoredIdentity]:
    """The stored ones of these identities with their traits, by identifier, read with the
    identify path's statement on the session's connection (the events API checks an SDK's
    exposures against them)."""
    found: dict[str, StoredIdentity] = {}
    with dialect.driver_cursor(session) as cursor:
        store = IdentityStore(cursor, is_postgres=dialect.is_postgres(session))
        for identifier in dict.fromkeys(identifiers):
            stored = store.load_identity(environment_id, identifier)
            if stored is not None:
                found[identifier] = stored
    return found


def get_or_create_identity(
    session: Session, environment_id: int, identifier: str
) -> tuple[int, bool]:
    """`IdentityStore.get_or_create_identity` inside an ORM session's transaction."""
    with dialect.driver_cursor(session) as cursor:
        store = IdentityStore(cursor, is_postgres=dialect.is_postgres(session))
        return store.get_or_create_identity(environment_id, identifier)


# --- many at once, for cohort syncs -----------------------------------------------------------


def ensure_identities(
    session: Session, environment_id: int, identifiers: Sequence[str], now: dt.datetime
) -> list[int]:
    """The ids of these identities, creating those that do not exist yet, in a handful of
    statements for a whole page."""
    if not identifiers:
        return []
    hashes = {hash_identifier(i): i for i in identifiers}
    # Sorted, so that concurrent calls lock rows in one order and cannot deadlock.
    ordered = sorted(hashes)
    dialect.insert_rows(
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
    if dialect.is_postgres(session):
        matches = [Identity.identifier_hash == any_(dialect.array("hashes", hashes, String))]
    else:
        matches = [Identity.identifier_hash.in_(chunk) for chunk in dialect.chunks(hashes)]
    ids: list[int] = []
    for match in matches:
        ids.extend(
            session.scalars(
                select(Identity.id).where(Identity.environment_id == environment_id, match)
            )
        )
    return sorted(int(i) for i in ids)


# --- the admin API ----------------------------------------------------------------------------


def identities(
    session: Session, environment_id: int, window: Window, *, search: str | None = None
) -> Page[Identity]:
    statement = select(Identity).where(Identity.environment_id == environment_id)
    if search:
        statement = statement.where(dialect.contains(Identity.identifier, search))
    return page(session, statement.order_by(Identity.id), window)


def identity_by_id(session: Session, identity_id: int) -> Identity | None:
    return session.get(Identity, identity_id)


def identifiers_of(session: Session, identity_ids: Sequence[int]) -> dict[int, str]:
    """Identifiers by id, for the identity overrides of a snapshot."""
    if not identity_ids:
        return {}
    rows = session.execute(
        select(Identity.id, Identity.identifier).where(Identity.id.in_(identity_ids))
    )
    return {int(r.id): r.identifier for r in rows}


def traits(session: Session, identity_id: int) -> Sequence[Trait]:
    return session.scalars(
        select(Trait).where(Trait.identity_id == identity_id).order_by(Trait.id)
    ).all()


def trait_by_key(session: Session, identity_id: int, key: str) -> Trait | None:
    return session.scalar(select(Trait).where(Trait.identity_id == identity_id, Trait.key == key))


def delete_identity(session: Session, identity: Identity) -> None:
    """Delete an identity; the database deletes its traits and overrides, so loaded rows are
    expired."""
    session.delete(identity)
    session.flush()
    session.expire_all()


def trait_by_id(session: Session, trait_id: int) -> Trait | None:
    return session.get(Trait, trait_id)


def add_trait(session: Session, trait: Trait) -> None:
    """Add a trait to the unit; the caller flushes (a concurrent twin is a conflict)."""
    session.add(trait)


def delete_trait(session: Session, trait: Trait) -> None:
    session.delete(trait)
    session.flush()
