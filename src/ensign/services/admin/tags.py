"""A project's tags, which label features (and select the flags an integration sends)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from ensign.errors import Conflict
from ensign.services import changes as change_path
from ensign.services.admin import access
from ensign.services.changes import Change, Reach
from ensign.services.keys import AdminPrincipal
from ensign.storage import features as feature_store
from ensign.storage.audit import row_snapshot
from ensign.storage.models import Tag
from ensign.storage.pagination import Page, Window
from ensign.storage.unit_of_work import UnitOfWork


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
    unit: UnitOfWork,
    principal: AdminPrincipal,
    project_id: int,
    *,
    label: str,
    color: str | None = None,
) -> Tag:
    session = unit.session
    project = access.project_for(session, principal, project_id)
    _check_label(session, project.id, label, tag_id=None)
    tag = Tag(project_id=project.id, label=label)
    if color is not None:
        tag.color = color
    feature_store.add_tag(session, tag)
    change = Change(
        resource_type="tag",
        resource_id=tag.id,
        action=change_path.CREATED,
        log=f"Tag created: {label}",
        project_id=project.id,
        after=row_snapshot(tag),
        # A new tag labels no feature yet, so no integration's selection changes.
        reach=Reach.AUDIT,
    )
    change_path.apply(unit, principal, [change])
    return tag


def update_tag(
    unit: UnitOfWork,
    principal: AdminPrincipal,
    project_id: int,
    tag_id: int,
    changes: dict[str, Any],
) -> Tag:
    session = unit.session
    tag = get_tag(session, principal, project_id, tag_id)
    before = row_snapshot(tag)
    if "label" in changes:
        _check_label(session, tag.project_id, changes["label"], tag_id=tag.id)
        tag.label = changes["label"]
    if "color" in changes:
        tag.color = changes["color"]
    feature_store.save_tag(session)
    change = Change(
        resource_type="tag",
        resource_id=tag.id,
        action=change_path.UPDATED,
        log=f"Tag updated: {tag.label}",
        project_id=tag.project_id,
        project_wide=True,
        before=before,
        after=row_snapshot(tag),
        # Integrations select flags by tag label: the snapshots resolve that selection anew.
        reach=Reach.SERVED,
    )
    change_path.apply(unit, principal, [change])
    return tag


def delete_tag(unit: UnitOfWork, principal: AdminPrincipal, project_id: int, tag_id: int) -> None:
    session = unit.session
    tag = get_tag(session, principal, project_id, tag_id)
    before = row_snapshot(tag)
    feature_store.delete_tag(session, tag)
    change = Change(
        resource_type="tag",
        resource_id=tag_id,
        action=change_path.DELETED,
        log=f"Tag deleted: {before['label']}",
        project_id=project_id,
        project_wide=True,
        before=before,
        # The features it labelled lose it, and with it an integration's selection.
        reach=Reach.SERVED,
    )
    change_path.apply(unit, principal, [change])
