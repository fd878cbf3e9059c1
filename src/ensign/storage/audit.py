"""The audit log: the one place its rows are written, and the listing the admin API reads."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import inspect, or_, select
from sqlalchemy.orm import Session

from ensign.storage import dialect
from ensign.storage.models import AuditLog
from ensign.storage.pagination import Page, Window, page


def add_entry(
    session: Session,
    *,
    organisation_id: int | None,
    actor: str,
    action: str,
    resource_type: str,
    resource_id: int | str | None,
    log: str,
    before: Any = None,
    after: Any = None,
    project_id: int | None = None,
    environment_id: int | None = None,
) -> None:
    """Add an entry in the caller's transaction, so it exists exactly when the change does."""
    session.add(
        AuditLog(
            organisation_id=organisation_id,
            project_id=project_id,
            environment_id=environment_id,
            actor=actor,
            action=action,
            resource_type=resource_type,
            resource_id=None if resource_id is None else str(resource_id),
            log=log,
            before=before,
            after=after,
        )
    )


def row_snapshot(row: Any) -> dict[str, Any]:
    """A row's columns as JSON-ready values, for an entry's before and after."""
    values: dict[str, Any] = {}
    for attribute in inspect(row).mapper.column_attrs:
        value = getattr(row, attribute.key)
        if isinstance(value, dt.datetime | dt.date):
            value = value.isoformat()
        values[attribute.key] = value
    return values


def entries(
    session: Session,
    organisation_id: int,
    window: Window,
    *,
    project_id: int | None = None,
    environment_id: int | None = None,
    search: str | None = None,
) -> Page[AuditLog]:
    """An organisation's entries, newest first."""
    statement = select(AuditLog).where(AuditLog.organisation_id == organisation_id)
    if project_id is not None:
        statement = statement.where(AuditLog.project_id == project_id)
    if environment_id is not None:
        statement = statement.where(AuditLog.environment_id == environment_id)
    if search:
        statement = statement.where(
            or_(
                dialect.contains(AuditLog.log, search),
                dialect.contains(AuditLog.resource_type, search),
            )
        )
    return page(session, statement.order_by(AuditLog.id.desc()), window)
