"""Cohort sync: other tools tell Ensign who is in a cohort, and flags can target it.

Membership is a boolean trait on each member identity (`mixpanel_cohort_<id>` for Mixpanel,
`cohort_<name>` for the generic webhook), set to true on entry and deleted on exit, never set
to false, so that both "is set" and "= true" rules work. Each cohort gets a segment in its
project, managed by Ensign, whose one rule is "that trait is set"; users target it with segment
overrides like any other segment.

Mixpanel's `members` action is a full replacement sent in pages sharing a session id: each
page's members are added at once, and when every page of the session has arrived the members
not seen since the session started are removed. A session whose pages stop arriving expires
without removing anyone (analytics-apis.md §3.5).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from ensign.errors import AuthenticationFailed, InvalidInput, NotFound
from ensign.services.admin import access, audit
from ensign.services.cohort_requests import (
    MEMBERS,
    REMOVE_MEMBERS,
    MixpanelSync,
    bounded_int,
    member_identifiers,
    mixpanel_action,
    optional_text,
)
from ensign.services.keys import AdminPrincipal, hash_key, random_token
from ensign.storage import admin_queries as aq
from ensign.storage import cohort_queries as q
from ensign.storage.cohort_models import Cohort, CohortSyncKey, CohortSyncLogEntry
from ensign.storage.models import Environment, Project, Segment, utcnow
from ensign.storage.repositories import touch_environments

MIXPANEL = "mixpanel"
WEBHOOK = "webhook"
DEFAULT_MEMBER_KEY = "mixpanel_distinct_id"
KEY_PREFIX = "csk_"
SYNC_ACTOR = "cohort-sync"

is_database_fault = q.is_database_fault


# --- keys ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyncCaller:
    """Who is syncing: an environment, through one of its cohort-sync keys."""

    environment_id: int
    project_id: int
    organisation_id: int
    key_id: int
    key_name: str


def new_key() -> str:
    return KEY_PREFIX + random_token(40)


def environment_by_key(session: Session, api_key: str) -> Environment:
    """An environment by its client key, for the CLI (which acts for every organisation)."""
    environment = aq.environment_by_key(session, api_key) if len(api_key) <= 100 else None
    if environment is None:
        raise NotFound("Environment not found.")
    return environment


def create_key(
    session: Session, environment: Environment, name: str, principal: AdminPrincipal | None = None
) -> tuple[CohortSyncKey, str]:
    """Create a cohort-sync key; the secret is answered once and only its hash is kept."""
    name = name.strip()
    if not name or len(name) > 200 or "\x00" in name:
        raise InvalidInput("name: give a name of 1 to 200 characters.", field="name")
    secret = new_key()
    row = q.add_key(session, environment.id, name, secret[:10], hash_key(secret))
    if principal is not None:
        audit.record(
            session,
            principal,
            action=audit.CREATED,
            resource_type="cohort_sync_key",
            resource_id=row.id,
            log=f"Cohort-sync key created: {name}",
            environment_id=environment.id,
        )
    return row, secret


def list_keys(session: Session, environment: Environment) -> Sequence[CohortSyncKey]:
    return q.keys(session, environment.id)


def revoke_key(
    session: Session, environment: Environment, key_id: int, principal: AdminPrincipal | None = None
) -> CohortSyncKey:
    """Revoke a key: calls made with it get 401 from now on."""
    row = q.key_by_id(session, environment.id, key_id) if access.is_valid_id(key_id) else None
    if row is None:
        raise NotFound("Cohort-sync key not found.")
    if row.active:
        row.active = False
        row.revoked_at = utcnow()
        session.flush()
        if principal is not None:
            audit.record(
                session,
                principal,
                action=audit.UPDATED,
                resource_type="cohort_sync_key",
                resource_id=row.id,
                log=f"Cohort-sync key revoked: {row.name}",
                environment_id=environment.id,
            )
    return row


def authenticate(session: Session, key: str) -> SyncCaller:
    """The environment a cohort-sync key belongs to; unknown and revoked keys fail."""
    row = q.key_by_hash(session, hash_key(key)) if key.startswith(KEY_PREFIX) else None
    if row is None or not row.active:
        raise AuthenticationFailed("Invalid cohort-sync key.")
    environment = q.environment(session, row.environment_id)
    assert environment is not None
    project = session.get(Project, environment.project_id)
    assert project is not None
    return SyncCaller(environment.id, project.id, project.organisation_id, row.id, row.name)


# --- the member-mapping setting --------------------------------------------------------------


def member_key(session: Session, environment: Environment) -> str:
    """Which member property holds the identity identifier in this environment."""
    return q.member_key(session, environment.id) or DEFAULT_MEMBER_KEY


def set_member_key(
    session: Session, environment: Environment, key: str, principal: AdminPrincipal | None = None
) -> str:
    if not key or len(key) > 200 or "\x00" in key or key != key.strip():
        raise InvalidInput(
            "member_key: name a member property (1 to 200 characters), e.g. "
            "mixpanel_distinct_id or email.",
            field="member_key",
        )
    q.set_member_key(session, environment.id, key, utcnow())
    if principal is not None:
        audit.record(
            session,
            principal,
            action=audit.UPDATED,
            resource_type="cohort_sync_settings",
            resource_id=environment.id,
            log=f"Cohort members now map to identities by {key}",
            after={"member_key": key},
            environment_id=environment.id,
        )
    return key


# --- applying syncs ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SyncResult:
    cohort_id: int
    added: int
    removed: int
    skipped: int
    message: str | None = None


@dataclass(frozen=True)
class CohortSpec:
    source: str
    external_id: str
    name: str | None
    description: str | None

    @property
    def trait_key(self) -> str:
        prefix = "mixpanel_cohort_" if self.source == MIXPANEL else "cohort_"
        return prefix + self.external_id

    @property
    def managed_by(self) -> str:
        return f"cohort-sync:{self.source}:{self.external_id}"

    def segment_name(self, cohort_name: str) -> str:
        label = "Mixpanel cohort" if self.source == MIXPANEL else "Cohort"
        return f"{label}: {cohort_name}"


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


def _cohort(session: Session, caller: SyncCaller, spec: CohortSpec, now: dt.datetime) -> Cohort:
    """The cohort, locked for this call, with its name and managed segment up to date."""
    cohort, _ = q.locked_cohort(
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
    _sync_segment(session, caller, spec, cohort.name)
    return cohort


def _sync_segment(session: Session, caller: SyncCaller, spec: CohortSpec, name: str) -> None:
    wanted = spec.segment_name(name)[:2000]
    segment = q.managed_segment(session, caller.project_id, spec.managed_by)
    if segment is None:
        q.lock_project(session, caller.project_id)
        segment = q.managed_segment(session, caller.project_id, spec.managed_by)
    if segment is None:
        segment = q.add_segment(
            session, caller.project_id, wanted, segment_rules(spec.trait_key), spec.managed_by
        )
        _audit_segment(session, caller, segment, audit.CREATED, f"Segment created: {wanted}")
    elif segment.name != wanted:
        segment.name = wanted
        session.flush()
        _audit_segment(session, caller, segment, audit.UPDATED, f"Segment renamed: {wanted}")
    else:
        return
    touch_environments(session, project_id=caller.project_id)


def _audit_segment(
    session: Session, caller: SyncCaller, segment: Segment, action: str, log: str
) -> None:
    q.add_audit_entry(
        session,
        organisation_id=caller.organisation_id,
        project_id=caller.project_id,
        environment_id=caller.environment_id,
        actor=f"{SYNC_ACTOR}:{caller.key_name}",
        action=action,
        segment=segment,
        log=log,
    )


def apply_mixpanel_sync(
    session: Session,
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
    environment = q.environment(session, caller.environment_id)
    assert environment is not None
    identifiers, skipped = member_identifiers(
        sync.members, member_key(session, environment), max_identifier_length
    )
    spec = CohortSpec(MIXPANEL, sync.cohort_id, sync.cohort_name, sync.cohort_description)
    cohort = _cohort(session, caller, spec, now)
    added = removed = 0
    message = None
    if sync.action == REMOVE_MEMBERS:
        ids = q.find_identities(session, caller.environment_id, identifiers)
        removed = q.remove_members(session, cohort.id, cohort.trait_key, ids)
    else:
        ids = q.ensure_identities(session, caller.environment_id, identifiers, now)
        added = q.add_members(session, cohort.id, cohort.trait_key, ids, now)
    if sync.action == MEMBERS:
        assert sync.session_id is not None
        assert sync.page is not None
        assert sync.total_pages is not None
        removed, message = _record_page(
            session, cohort, sync.session_id, sync.page, sync.total_pages, session_expiry, now
        )
    q.mark_key_used(session, caller.key_id, now)
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
    sync = q.locked_session(session, cohort.id, session_id, total_pages, now)
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
        removed = q.remove_members_unseen_since(
            session, cohort.id, cohort.trait_key, sync.started_at
        )
        sync.completed_at = now
        message = f"Session {session_id} complete: {sync.total_pages} pages."
    session.flush()
    q.delete_sessions_before(session, cohort.id, sync.id, now - max(expiry, dt.timedelta(days=1)))
    return removed, message


def apply_webhook_sync(
    session: Session,
    caller: SyncCaller,
    cohort_name: str,
    action: str,
    identifiers: Sequence[Any],
    *,
    max_identifier_length: int,
    now: dt.datetime | None = None,
) -> SyncResult:
    """Add (`add_members`) or remove (`remove_members`) identities from a generic cohort."""
    started = time.perf_counter()
    now = now or utcnow()
    usable, skipped = member_identifiers(identifiers, None, max_identifier_length)
    cohort = _cohort(session, caller, CohortSpec(WEBHOOK, cohort_name, None, None), now)
    added = removed = 0
    if action == REMOVE_MEMBERS:
        ids = q.find_identities(session, caller.environment_id, usable)
        removed = q.remove_members(session, cohort.id, cohort.trait_key, ids)
    else:
        ids = q.ensure_identities(session, caller.environment_id, usable, now)
        added = q.add_members(session, cohort.id, cohort.trait_key, ids, now)
    q.mark_key_used(session, caller.key_id, now)
    result = SyncResult(cohort.id, added, removed, skipped)
    _log(
        session,
        caller,
        source=WEBHOOK,
        cohort=cohort,
        action=action,
        received=len(identifiers),
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
    q.add_log_entry(
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


def log_failure(
    session: Session,
    caller: SyncCaller,
    *,
    source: str,
    status_code: int,
    message: str,
    body: Any = None,
    cohort_external_id: str | None = None,
    duration_ms: float = 0.0,
) -> None:
    """Log a call that failed (a malformed body, or a fault of ours), with what it named."""
    parameters = body.get("parameters") if isinstance(body, dict) else None
    parameters = parameters if isinstance(parameters, dict) else {}
    page_info = parameters.get("page_info")
    page_info = page_info if isinstance(page_info, dict) else {}
    members = parameters.get("members")
    external_id = cohort_external_id or parameters.get("mixpanel_cohort_id")
    session_id = parameters.get("mixpanel_session_id")
    q.add_log_entry(
        session,
        CohortSyncLogEntry(
            environment_id=caller.environment_id,
            source=source,
            cohort_external_id=None if external_id is None else str(external_id)[:200],
            cohort_name=optional_text(parameters.get("mixpanel_cohort_name"), 2000),
            action=mixpanel_action(body) if source == MIXPANEL else None,
            session_id=None if session_id is None else str(session_id)[:200],
            page=bounded_int(page_info.get("page_count")),
            total_pages=bounded_int(page_info.get("total_pages")),
            received=len(members) if isinstance(members, list) else 0,
            outcome="failure",
            status_code=status_code,
            message=message[:2000],
            duration_ms=round(duration_ms, 3),
        ),
    )


# --- reading, for the admin API -------------------------------------------------------------


@dataclass(frozen=True)
class CohortInfo:
    cohort: Cohort
    members: int
    segment_id: int | None


def list_cohorts(session: Session, environment: Environment) -> list[CohortInfo]:
    infos = []
    for cohort, members in q.cohorts(session, environment.id):
        spec = CohortSpec(cohort.source, cohort.external_id, None, None)
        segment = q.managed_segment(session, environment.project_id, spec.managed_by)
        infos.append(CohortInfo(cohort, members, None if segment is None else segment.id))
    return infos


def sync_log(session: Session, environment: Environment, window: aq.Window) -> aq.Page[Any]:
    return q.log_entries(session, environment.id, window)


def admin_environment(session: Session, principal: AdminPrincipal, api_key: str) -> Environment:
    """The environment an admin names by its client key, if it is in their organisation."""
    return access.environment_for(session, principal, api_key)
