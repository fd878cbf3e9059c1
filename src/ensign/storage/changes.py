"""Change records: written with the change they describe, read as an environment's history."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ensign.storage.models import ChangeRecord, Environment


def environment_ids_of_project(session: Session, project_id: int) -> list[int]:
    return [
        int(i)
        for i in session.scalars(select(Environment.id).where(Environment.project_id == project_id))
    ]


def add_change_records(
    session: Session,
    *,
    change_set: str,
    organisation_id: int,
    project_id: int,
    environment_ids: Iterable[int],
    actor: str,
    reason: str | None,
    changes: Sequence[dict[str, Any]],
) -> None:
    """One record per environment, in the caller's transaction."""
    session.add_all(
        ChangeRecord(
            change_set=change_set,
            organisation_id=organisation_id,
            project_id=project_id,
            environment_id=environment_id,
            actor=actor,
            reason=reason,
            changes=list(changes),
        )
        for environment_id in environment_ids
    )


def change_records(session: Session, environment_id: int) -> list[ChangeRecord]:
    """An environment's change records, newest first."""
    return list(
        session.scalars(
            select(ChangeRecord)
            .where(ChangeRecord.environment_id == environment_id)
            .order_by(ChangeRecord.id.desc())
        )
    )
