"""A project's tags, which label features (and select the flags an integration sends)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from ensign.errors import Conflict
from ensign.services.admin import access, audit
from ensign.services.keys import AdminPrincipal
from ensign.storage import features as feature_store
from ensign.storage.audit import row_snapshot
from ensign.storage.faults import flush
from ensign.storage.models import Tag
from ensign.storage.pagination import Page, Window


def list_tags(
    session: Session, principal: AdminPrincipal, project_id: int, window: Window
) -> Page[Tag]:
    return feature_store.tags(
        session, access.project_for(session, principal, project_id).id, window
    )


def get_tag(session: Session, principal: AdminPrincipal, project_id: int, tag_id: int) -> Tag:
    return access.tag_for(session, access.project_for(session, principal, project_id), tag_id)


def _check_label(session: Session, project_id: int, label: str, *, tag_id: int | None) -> None:
    existing = feature_store.tag_id_by_label(session, project_id, label)
    if existing is not None and existing != tag_id:
        raise Conflict("label: a tag with this label already exists.", field="label")


def create_tag(
    session: Session,
    principal: AdminPrincipal,
    project_id: int,
    *,
    label: str,
    color: str | None = None,
) -> Tag:
    project = access.project_for(session, principal, project_id)
    _check_label(session, project.id, label, tag_id=None)
    tag = Tag(project_id=project.id, label=label)
    if color is not None:
        tag.color = color
    session.add(tag)
    flush(session, conflict="label: a tag with this label already exists.", field="label")
    audit.record(
        session,
        principal,
        action=audit.CREATED,
        resource_type="tag",
        resource_id=tag.id,
        log=f"Tag created: {label}",
        after=row_snapshot(tag),
        project_id=project.id,
    )
    return tag


def update_tag(
    session: Session,
    principal: AdminPrincipal,
    project_id: int,
    tag_id: int,
    changes: dict[str, Any],
) -> Tag:
    tag = get_tag(session, principal, project_id, tag_id)
    before = row_snapshot(tag)
    if "label" in changes:
        _check_label(session, tag.project_id, changes["label"], tag_id=tag.id)
        tag.label = changes["label"]
    if "color" in changes:
        tag.color = changes["color"]
    flush(session, conflict="label: a tag with this label already exists.", field="label")
    audit.record(
        session,
        principal,
        action=audit.UPDATED,
        resource_type="tag",
        resource_id=tag.id,
        log=f"Tag updated: {tag.label}",
        before=before,
        after=row_snapshot(tag),
        project_id=tag.project_id,
    )
    return tag


def delete_tag(session: Session, principal: AdminPrincipal, project_id: int, tag_id: int) -> None:
    tag = get_tag(session, principal, project_id, tag_id)
    before = row_snapshot(tag)
    session.delete(tag)
    session.flush()
    session.expire_all()
    audit.record(
        session,
        principal,
        action=audit.DELETED,
        resource_type="tag",
        resource_id=tag_id,
        log=f"Tag deleted: {before['label']}",
        before=before,
        project_id=project_id,
    )
