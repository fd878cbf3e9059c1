"""The unit of work: one transaction per use case, and the one place that marks what an
environment serves as changed.

A use case writes through storage's functions with the unit's session and says which
environments' served configuration it changed (`services.changes.apply` does, for every
change). Committing bumps those environments' revisions in the same transaction, so every
process rebuilds their flags; nothing else calls `touch_environments`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session

from ensign.storage.db import Database
from ensign.storage.environments import touch_environments


class UnitOfWork:
    """One transaction. Commit happens when the `Units` scope that opened it ends."""

    def __init__(self, session: Session, *, writable: bool) -> None:
        self.session = session
        self.writable = writable
        self._environment_ids: set[int] = set()
        self._project_ids: set[int] = set()

    def served_changed(
        self, *, environment_ids: Iterable[int] = (), project_id: int | None = None
    ) -> None:
        """Mark environments (or every environment of a project) as serving something new."""
        if not self.writable:
            raise RuntimeError("a read-only unit of work cannot change served configuration")
        self._environment_ids.update(environment_ids)
        if project_id is not None:
            self._project_ids.add(project_id)

    @property
    def changes_served(self) -> bool:
        return bool(self._environment_ids or self._project_ids)

    def _before_commit(self) -> None:
        if self._environment_ids:
            touch_environments(self.session, environment_ids=sorted(self._environment_ids))
        for project_id in sorted(self._project_ids):
            touch_environments(self.session, project_id=project_id)


class Units:
    """Opens units of work on one database; `after_commit` runs after each write unit commits
    (the snapshot cache's check, so that this process serves the change at once)."""

    def __init__(self, db: Database, *, after_commit: Callable[[], None] | None = None) -> None:
        self.db = db
        self._after_commit = after_commit

    @contextmanager
    def write(self) -> Iterator[UnitOfWork]:
        """A unit that commits when the block ends without an exception, else rolls back."""
        with self.db.session() as session:
            unit = UnitOfWork(session, writable=True)
            yield unit
            unit._before_commit()
        if self._after_commit is not None:
            self._after_commit()

    @contextmanager
    def read(self) -> Iterator[UnitOfWork]:
        """A unit that only reads: it never takes the writers' lock and commits nothing. What
        it loaded stays readable after the block (detached, not expired), so that pages can be
        rendered from it."""
        with self.db.read_session() as session:
            try:
                yield UnitOfWork(session, writable=False)
            finally:
                session.expunge_all()
