"""Applying cohort syncs: each call's members added or removed, and the cohort's managed
segment kept up to date.

Mixpanel's `members` action is a full replacement sent in pages sharing a session id: each
page's members are added at once, and when every page of the session has arrived the members
not seen since the session started are removed. A session whose pages stop arriving expires
without removing anyone (analytics-apis.md §3.5).

Amplitude and the generic webhook only ever add or remove (Amplitude's first sync sends the
whole cohort as entering), so their calls apply exactly as Mixpanel's `add_members` and
`remove_members` do, through the same function.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from ensign.services import changes as change_path
from ensign.services.changes import Change
from ensign.services.cohort_requests import (
    AMPLITUDE_USER_KEY,
    MEMBERS,
    REMOVE_MEMBERS,
    AmplitudeSync,
    MixpanelSync,
    member_identifiers,
)
from ensign.services.cohorts import (
    AMPLITUDE,
    MIXPANEL,
    WEBHOOK,
    CohortSpec,
    SyncCaller,
    member_key_of,
)
from ensign.services.keys import AdminPrincipal
from ensign.storage import cohorts as cohort_store
from ensign.storage import features as feature_store
from ensign.storage import identities as identity_store
from ensign.storage.models import Cohort, CohortSyncLogEntry, Segment, utcnow
from ensign.storage.unit_of_work import UnitOfWork

SYNC_ACTOR = "cohort-sync"
# Amplitude resends a batch it got no timely answer for, possibly after it sent later ones;
# each applied batch is remembered this long so that such a late repeat cannot undo them.
REPEAT_MEMORY = dt.timedelta(days=1)


@dataclass(frozen=True)
class SyncResult:
    cohort_id: int
    added: int
    removed: int
    skipped: int
    message: str | None = None


def segment_rules(trait_key: str) -> list[Any]:
    """The managed segment's rules: the membership trait is set."""
    condition = {"operator": "IS_SET", "property": trait_key, "value": None}
    return [
        {
            "type": "ALL",
            "rules": [{"type": "ALL", "rules": [], "conditions": [condition]}],
            "conditions": [],
        }
    ]


@dataclass(frozen=True)
class SyncPrincipal(AdminPrincipal):
    """A cohort sync, acting for its environment's organisation through its key."""

    @property
    def actor(self) -> str:
        return f"{SYNC_ACTOR}:{self.name}"


def _cohort(unit: UnitOfWork, caller: SyncCaller, spec: CohortSpec, now: dt.datetime) -> Cohort:
    """The cohort, locked for this call, with its name and managed segment up to date."""
    session = unit.session
    cohort, _ = cohort_store.locked_cohort(
        session,
        caller.environment_id,
        spec.source,
        spec.external_id,
        name=spec.name or spec.external_id,
        trait_key=spec.trait_key,
        now=now,
    )
    if spec.name and spec.name != cohort.name:
        cohort.name = spec.name
    if spec.description is not None and spec.description != cohort.description:
        cohort.description = spec.description
    cohort.updated_at = now
    _sync_segment(unit, caller, spec, cohort.name)
    return cohort


def _sync_segment(unit: UnitOfWork, caller: SyncCaller, spec: CohortSpec, name: str) -> None:
    """Create or rename the cohort's managed segment; the project's flags may change."""
    session = unit.session
    wanted = spec.segment_name(name)[:2000]
    segment = feature_store.managed_segment(session, caller.project_id, spec.managed_by)
    if segment is None:
        feature_store.lock_project(session, caller.project_id)
        segment = feature_store.managed_segment(session, caller.project_id, spec.managed_by)
    if segment is None:
        segment = feature_store.add_segment(
            session, caller.project_id, wanted, segment_rules(spec.trait_key), spec.managed_by
        )
        change = _segment_change(caller, segment, change_path.CREATED, f"Segment created: {wanted}")
    elif segment.name != wanted:
        segment.name = wanted
        feature_store.save(session)
        change = _segment_change(caller, segment, change_path.UPDATED, f"Segment renamed: {wanted}")
    else:
        return
    principal = SyncPrincipal(caller.organisation_id, caller.key_id, caller.key_name)
    change_path.apply(unit, principal, [change])


def _segment_change(caller: SyncCaller, segment: Segment, action: str, log: str) -> Change:
    return Change(
        resource_type="segment",
        resource_id=segment.id,
        action=action,
        log=log,
        project_id=caller.project_id,
        project_wide=True,
        after={"id": segment.id, "name": segment.name, "managed_by": segment.managed_by},
        audit_environment_id=caller.environment_id,
    )


def _change_members(
    session: Session,
    caller: SyncCaller,
    cohort: Cohort,
    action: str,
    identifiers: Sequence[str],
    now: dt.datetime,
) -> tuple[int, int]:
    """Add the identities (creating those that do not exist yet, so the trait is there on a
    user's first flag request) or, for `remove_members`, remove them. Idempotent both ways:
    adding a member again or removing a non-member changes nothing. Answers (added, removed)."""
    if action == REMOVE_MEMBERS:
        ids = identity_store.find_identities(session, caller.environment_id, identifiers)
        return 0, cohort_store.remove_members(session, cohort.id, cohort.trait_key, ids)
    ids = identity_store.ensure_identities(session, caller.environment_id, identifiers, now)
    return cohort_store.add_members(session, cohort.id, cohort.trait_key, ids, now), 0


def _is_repeat(session: Session, cohort: Cohort, batch_key: str, now: dt.datetime) -> bool:
    """Whether this batch was applied before; remembers that it now has. Batches are kept as
    one-page sessions of the cohort, which the cohort's lock serialises."""
    seen = cohort_store.locked_session(session, cohort.id, batch_key, 1, now)
    repeat = seen.completed_at is not None
    if not repeat:
        seen.pages = [1]
        seen.completed_at = now
    seen.updated_at = now
    cohort_store.save(session)
    cohort_store.delete_sessions_before(session, cohort.id, seen.id, now - REPEAT_MEMORY)
    return repeat


def apply_mixpanel_sync(
    unit: UnitOfWork,
    caller: SyncCaller,
    sync: MixpanelSync,
    *,
    max_identifier_length: int,
    session_expiry: dt.timedelta,
    now: dt.datetime | None = None,
) -> SyncResult:
    """Apply one Mixpanel call and log it. Safe to repeat: every step converges."""
    started = time.perf_counter()
    now = now or utcnow()
    session = unit.session
    identifiers, skipped = member_identifiers(
        sync.members, member_key_of(session, caller.environment_id), max_identifier_length
    )
    spec = CohortSpec(MIXPANEL, sync.cohort_id, sync.cohort_name, sync.cohort_description)
    cohort = _cohort(unit, caller, spec, now)
    added, removed = _change_members(session, caller, cohort, sync.action, identifiers, now)
    message = None
    if sync.action == MEMBERS:
        assert sync.session_id is not None
        assert sync.page is not None
        assert sync.total_pages is not None
        removed, message = _record_page(
            session, cohort, sync.session_id, sync.page, sync.total_pages, session_expiry, now
        )
    cohort_store.mark_key_used(session, caller.key_id, now)
    _log(
        session,
        caller,
        source=MIXPANEL,
        cohort=cohort,
        action=sync.action,
        session_id=sync.session_id,
        page=sync.page,
        total_pages=sync.total_pages,
        received=len(sync.members),
        result=SyncResult(cohort.id, added, removed, skipped, message),
        started=started,
    )
    return SyncResult(cohort.id, added, removed, skipped, message)


def _record_page(
    session: Session,
    cohort: Cohort,
    session_id: str,
    page: int,
    total_pages: int,
    expiry: dt.timedelta,
    now: dt.datetime,
) -> tuple[int, str | None]:
    """Note a page of a full sync; once all have arrived, remove the members not seen since the
    session started. Answers how many were removed, and a note for the log."""
    sync = cohort_store.locked_session(session, cohort.id, session_id, total_pages, now)
    message = None
    if sync.completed_at is not None:
        message = f"Page {page} repeated after session {session_id} completed."
    else:
        if sync.pages and sync.started_at < now - expiry:
            # Expired: its pages stopped coming. It removes no one; this page starts it again.
            message = f"Session {session_id} had expired; it starts again from this page."
            sync.pages = []
            sync.started_at = now
        pages = sorted({*sync.pages, page})
        sync.pages = pages
        sync.total_pages = max(sync.total_pages, total_pages)
    sync.updated_at = now
    removed = 0
    if sync.completed_at is None and set(range(1, sync.total_pages + 1)) <= set(sync.pages):
        removed = cohort_store.remove_members_unseen_since(
            session, cohort.id, cohort.trait_key, sync.started_at
        )
        sync.completed_at = now
        message = f"Session {session_id} complete: {sync.total_pages} pages."
    cohort_store.save(session)
    cohort_store.delete_sessions_before(
        session, cohort.id, sync.id, now - max(expiry, dt.timedelta(days=1))
    )
    return removed, message


def apply_amplitude_sync(
    unit: UnitOfWork,
    caller: SyncCaller,
    sync: AmplitudeSync,
    *,
    max_identifier_length: int,
    now: dt.datetime | None = None,
) -> SyncResult:
    """Apply one Amplitude batch (its users enter or leave the cohort) and log it, with the
    batch's message id as its session. Safe to repeat, as Amplitude does on a slow answer."""
    spec = CohortSpec(AMPLITUDE, sync.cohort_id, sync.cohort_name, None)
    return _apply_batch(
        unit,
        caller,
        spec,
        sync.action,
        sync.users,
        AMPLITUDE_USER_KEY,
        max_identifier_length=max_identifier_length,
        session_id=sync.message_id,
        batch_key=sync.batch_key,
        now=now,
    )


def apply_webhook_sync(
    unit: UnitOfWork,
    caller: SyncCaller,
    cohort_name: str,
    action: str,
    identifiers: Sequence[Any],
    *,
    max_identifier_length: int,
    now: dt.datetime | None = None,
) -> SyncResult:
    """Add (`add_members`) or remove (`remove_members`) identities from a generic cohort."""
    spec = CohortSpec(WEBHOOK, cohort_name, None, None)
    return _apply_batch(
        unit,
        caller,
        spec,
        action,
        identifiers,
        None,
        max_identifier_length=max_identifier_length,
        now=now,
    )


def _apply_batch(
    unit: UnitOfWork,
    caller: SyncCaller,
    spec: CohortSpec,
    action: str,
    members: Sequence[Any],
    key: str | None,
    *,
    max_identifier_length: int,
    session_id: str | None = None,
    batch_key: str | None = None,
    now: dt.datetime | None = None,
) -> SyncResult:
    """Add or remove one batch of members (identifiers under `key`, or the items themselves
    when None) and log it. A batch whose `batch_key` was applied already changes nothing."""
    started = time.perf_counter()
    now = now or utcnow()
    identifiers, skipped = member_identifiers(members, key, max_identifier_length)
    session = unit.session
    cohort = _cohort(unit, caller, spec, now)
    added = removed = 0
    message = None
    if batch_key is not None and _is_repeat(session, cohort, batch_key, now):
        message = f"Batch {session_id} repeated: already applied, so ignored."
    else:
        added, removed = _change_members(session, caller, cohort, action, identifiers, now)
    cohort_store.mark_key_used(session, caller.key_id, now)
    result = SyncResult(cohort.id, added, removed, skipped, message)
    _log(
        session,
        caller,
        source=spec.source,
        cohort=cohort,
        action=action,
        session_id=session_id,
        received=len(members),
        result=result,
        started=started,
    )
    return result


def _log(
    session: Session,
    caller: SyncCaller,
    *,
    source: str,
    cohort: Cohort,
    action: str,
    received: int,
    result: SyncResult,
    started: float,
    session_id: str | None = None,
    page: int | None = None,
    total_pages: int | None = None,
) -> None:
    cohort_store.add_log_entry(
        session,
        CohortSyncLogEntry(
            environment_id=caller.environment_id,
            source=source,
            cohort_external_id=cohort.external_id,
            cohort_name=cohort.name,
            action=action,
            session_id=session_id,
            page=page,
            total_pages=total_pages,
            received=received,
            added=result.added,
            removed=result.removed,
            skipped=result.skipped,
            outcome="success",
            status_code=200,
            message=result.message,
            duration_ms=round((time.perf_counter() - started) * 1000, 3),
        ),
    )
