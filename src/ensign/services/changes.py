"""The one change path: every change to what an environment serves is a `Change`, and
`apply` is the only function that commits changes to a unit of work.

A use case validates its input and writes its rows through storage in the unit it was given,
then hands `apply` the `Change` values describing what it did (the resource, its record before
and after). `apply` records the audit entry of each, marks the environments whose served
configuration changed (their revisions bump when the unit commits) and records one change
record per environment in the same transaction. Holding a change for review, scheduling it,
showing history, reverting and announcing all start from here.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ensign.services.admin import audit
from ensign.services.keys import AdminPrincipal
from ensign.storage import changes as change_store
from ensign.storage.unit_of_work import UnitOfWork

CREATED = audit.CREATED
UPDATED = audit.UPDATED
DELETED = audit.DELETED


class Reach(enum.Enum):
    """What a change reaches beyond its audit entry."""

    # What SDKs are served (flags, overrides, segments, tags, experiments): revisions bump,
    # a change record is kept; the governance and announcement paths see it.
    SERVED = "served"
    # Rebuilds the environment's snapshot without changing a flag (its integrations).
    SNAPSHOT = "snapshot"
    # The audit entry alone (keys, users, names).
    AUDIT = "audit"


@dataclass(frozen=True)
class Change:
    """One resource changed: what it was before and after (None when created or deleted)."""

    resource_type: str
    resource_id: int | str | None
    action: str
    log: str
    project_id: int | None
    # The environments whose served configuration changed; empty with `project_wide` and a
    # project (segments, features) for every environment of the project.
    environment_ids: tuple[int, ...] = ()
    project_wide: bool = False
    before: Mapping[str, Any] | None = None
    after: Mapping[str, Any] | None = None
    reach: Reach = Reach.SERVED
    # The audit entry's environment, where the change belongs to one.
    audit_environment_id: int | None = field(default=None)

    def as_record(self) -> dict[str, Any]:
        return {
            "resource_type": self.resource_type,
            "resource_id": self.resource_id,
            "action": self.action,
            "log": self.log,
            "before": None if self.before is None else dict(self.before),
            "after": None if self.after is None else dict(self.after),
        }


@dataclass(frozen=True)
class AppliedChanges:
    """What `apply` recorded: the change set's id and the environments it reached."""

    change_set: str
    environment_ids: tuple[int, ...]


def apply(
    unit: UnitOfWork,
    principal: AdminPrincipal,
    changes: Sequence[Change],
    *,
    reason: str | None = None,
) -> AppliedChanges:
    """Commit `changes` to `unit`: audit each, mark the environments they reach as changed and
    record the change set per environment, all in the unit's transaction."""
    change_set = str(uuid.uuid4())
    reached: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for change in changes:
        environment_id = change.audit_environment_id
        if environment_id is None and len(change.environment_ids) == 1:
            environment_id = change.environment_ids[0]
        audit.record(
            unit.session,
            principal,
            action=change.action,
            resource_type=change.resource_type,
            resource_id=change.resource_id,
            log=change.log,
            before=None if change.before is None else dict(change.before),
            after=None if change.after is None else dict(change.after),
            project_id=change.project_id,
            environment_id=environment_id,
        )
        if change.reach is Reach.AUDIT:
            continue
        environment_ids = list(change.environment_ids)
        if change.project_wide and change.project_id is not None:
            environment_ids += change_store.environment_ids_of_project(
                unit.session, change.project_id
            )
        unit.served_changed(environment_ids=environment_ids)
        if change.reach is Reach.SERVED and change.project_id is not None:
            for environment_id in environment_ids:
                reached.setdefault((change.project_id, environment_id), []).append(
                    change.as_record()
                )
    for (project_id, environment_id), records in reached.items():
        change_store.add_change_records(
            unit.session,
            change_set=change_set,
            organisation_id=principal.organisation_id,
            project_id=project_id,
            environment_ids=[environment_id],
            actor=principal.actor,
            reason=reason,
            changes=records,
        )
    return AppliedChanges(change_set, tuple(sorted({e for _, e in reached})))
