"""Cohort sync: other tools tell Ensign who is in a cohort, and flags can target it.

Membership is a boolean trait on each member identity (`mixpanel_cohort_<id>` for Mixpanel,
`amplitude_cohort_<id>` for Amplitude, `cohort_<name>` for the generic webhook), set to true on
entry and deleted on exit, never set to false, so that both "is set" and "= true" rules work. Each cohort gets a segment in its
project, managed by Ensign, whose one rule is "that trait is set"; users target it with segment
overrides like any other segment.

This module holds the environments' cohort-sync keys and settings, what a cohort's trait and
segment are called, and what the admin API reads; `cohort_sync` applies the syncs themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from ensign.errors import AuthenticationFailed, InvalidInput, NotFound
from ensign.services import changes as change_path
from ensign.services.admin import access
from ensign.services.admin.access import EnvironmentRef
from ensign.services.changes import Change, Reach
from ensign.services.keys import AdminPrincipal, hash_key, random_token
from ensign.services.text import is_storable
from ensign.storage import cohorts as cohort_store
from ensign.storage import environments as environment_store
from ensign.storage import features as feature_store
from ensign.storage.models import Cohort, CohortSyncKey, Environment, utcnow
from ensign.storage.pagination import Page, Window
from ensign.storage.unit_of_work import UnitOfWork

MIXPANEL = "mixpanel"
AMPLITUDE = "amplitude"
WEBHOOK = "webhook"
DEFAULT_MEMBER_KEY = "mixpanel_distinct_id"
KEY_PREFIX = "csk_"


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


def _environment(
    session: Session, principal: AdminPrincipal | None, environment: EnvironmentRef
) -> Environment:
    """The environment named, if in the caller's organisation; with no caller (the CLI, which
    acts for every organisation) any environment, by its client key."""
    if principal is None:
        found = None
        if isinstance(environment, str) and len(environment) <= 100:
            found = environment_store.environment_by_key(session, environment)
        if found is None:
            raise NotFound("Environment not found.")
        return found
    return access.environment_ref(session, principal, environment)


def create_key(
    unit: UnitOfWork, principal: AdminPrincipal | None, environment: EnvironmentRef, name: str
) -> tuple[CohortSyncKey, str]:
    """Create a cohort-sync key; the secret is answered once and only its hash is kept."""
    env = _environment(unit.session, principal, environment)
    name = name.strip()
    if not name or len(name) > 200 or not is_storable(name):
        raise InvalidInput("name: give a name of 1 to 200 characters.", field="name")
    secret = new_key()
    row = cohort_store.add_key(unit.session, env.id, name, secret[:10], hash_key(secret))
    if principal is not None:
        change_path.apply(
            unit,
            principal,
            [
                Change(
                    resource_type="cohort_sync_key",
                    resource_id=row.id,
                    action=change_path.CREATED,
                    log=f"Cohort-sync key created: {name}",
                    project_id=None,
                    environment_ids=(env.id,),
                    reach=Reach.AUDIT,
                )
            ],
        )
    return row, secret


def list_keys(
    unit: UnitOfWork, principal: AdminPrincipal | None, environment: EnvironmentRef
) -> Sequence[CohortSyncKey]:
    return cohort_store.keys(unit.session, _environment(unit.session, principal, environment).id)


def revoke_key(
    unit: UnitOfWork,
    principal: AdminPrincipal | None,
    environment: EnvironmentRef,
    key_id: int,
) -> CohortSyncKey:
    """Revoke a key: calls made with it get 401 from now on."""
    env = _environment(unit.session, principal, environment)
    row = (
        cohort_store.key_by_id(unit.session, env.id, key_id) if access.is_valid_id(key_id) else None
    )
    if row is None:
        raise NotFound("Cohort-sync key not found.")
    if row.active:
        row.active = False
        row.revoked_at = utcnow()
        cohort_store.save(unit.session)
        if principal is not None:
            change_path.apply(
                unit,
                principal,
                [
                    Change(
                        resource_type="cohort_sync_key",
                        resource_id=row.id,
                        action=change_path.UPDATED,
                        log=f"Cohort-sync key revoked: {row.name}",
                        project_id=None,
                        environment_ids=(env.id,),
                        reach=Reach.AUDIT,
                    )
                ],
            )
    return row


def authenticate(unit: UnitOfWork, key: str) -> SyncCaller:
    """The environment a cohort-sync key belongs to; unknown and revoked keys fail."""
    session = unit.session
    row = cohort_store.key_by_hash(session, hash_key(key)) if key.startswith(KEY_PREFIX) else None
    if row is None or not row.active:
        raise AuthenticationFailed("Invalid cohort-sync key.")
    environment = environment_store.environment_by_id(session, row.environment_id)
    assert environment is not None
    project = environment_store.project_by_id(session, environment.project_id)
    assert project is not None
    return SyncCaller(environment.id, project.id, project.organisation_id, row.id, row.name)


# --- the member-mapping setting --------------------------------------------------------------


def member_key_of(session: Session, environment_id: int) -> str:
    """Which member property holds the identity identifier in this environment."""
    return cohort_store.member_key(session, environment_id) or DEFAULT_MEMBER_KEY


def member_key(unit: UnitOfWork, principal: AdminPrincipal, environment: EnvironmentRef) -> str:
    env = _environment(unit.session, principal, environment)
    return member_key_of(unit.session, env.id)


def set_member_key(
    unit: UnitOfWork, principal: AdminPrincipal, environment: EnvironmentRef, key: str
) -> str:
    env = _environment(unit.session, principal, environment)
    if not key or len(key) > 200 or not is_storable(key) or key != key.strip():
        raise InvalidInput(
            "member_key: name a member property (1 to 200 characters), e.g. "
            "mixpanel_distinct_id or email.",
            field="member_key",
        )
    cohort_store.set_member_key(unit.session, env.id, key, utcnow())
    change_path.apply(
        unit,
        principal,
        [
            Change(
                resource_type="cohort_sync_settings",
                resource_id=env.id,
                action=change_path.UPDATED,
                log=f"Cohort members now map to identities by {key}",
                project_id=None,
                environment_ids=(env.id,),
                after={"member_key": key},
                reach=Reach.AUDIT,
            )
        ],
    )
    return key


# --- what a cohort's trait and segment are called -------------------------------------------


@dataclass(frozen=True)
class Source:
    """How a cohort source names what Ensign keeps for its cohorts."""

    title: str  # shown in the dashboard
    trait_prefix: str  # before the cohort's id in the membership trait
    segment_label: str  # before the cohort's name in its managed segment's name


# The one table of sources: every rule that differs by source reads it.
SOURCES: dict[str, Source] = {
    MIXPANEL: Source("Mixpanel", "mixpanel_cohort_", "Mixpanel cohort"),
    AMPLITUDE: Source("Amplitude", "amplitude_cohort_", "Amplitude cohort"),
    WEBHOOK: Source("Webhook", "cohort_", "Cohort"),
}


def source_title(source: str) -> str:
    known = SOURCES.get(source)
    return source if known is None else known.title


@dataclass(frozen=True)
class CohortSpec:
    source: str
    external_id: str
    name: str | None
    description: str | None

    @property
    def trait_key(self) -> str:
        return SOURCES[self.source].trait_prefix + self.external_id

    @property
    def managed_by(self) -> str:
        return f"cohort-sync:{self.source}:{self.external_id}"

    def segment_name(self, cohort_name: str) -> str:
        return f"{SOURCES[self.source].segment_label}: {cohort_name}"


# --- reading, for the admin API -------------------------------------------------------------


@dataclass(frozen=True)
class CohortInfo:
    cohort: Cohort
    members: int
    segment_id: int | None


def _cohorts(session: Session, environment: Environment) -> list[CohortInfo]:
    infos = []
    for cohort, members in cohort_store.cohorts(session, environment.id):
        spec = CohortSpec(cohort.source, cohort.external_id, None, None)
        segment = feature_store.managed_segment(session, environment.project_id, spec.managed_by)
        infos.append(CohortInfo(cohort, members, None if segment is None else segment.id))
    return infos


def list_cohorts(
    unit: UnitOfWork, principal: AdminPrincipal, environment: EnvironmentRef
) -> list[CohortInfo]:
    return _cohorts(unit.session, _environment(unit.session, principal, environment))


def sync_log(
    unit: UnitOfWork, principal: AdminPrincipal, environment: EnvironmentRef, window: Window
) -> Page[Any]:
    env = _environment(unit.session, principal, environment)
    return cohort_store.log_entries(unit.session, env.id, window)


@dataclass(frozen=True)
class Overview:
    """What the dashboard's cohort page shows of an environment."""

    keys: Sequence[CohortSyncKey]
    member_key: str
    cohorts: list[CohortInfo]
    log: Page[Any]


def overview(
    unit: UnitOfWork, principal: AdminPrincipal, environment: EnvironmentRef, window: Window
) -> Overview:
    env = _environment(unit.session, principal, environment)
    session = unit.session
    return Overview(
        keys=cohort_store.keys(session, env.id),
        member_key=member_key_of(session, env.id),
        cohorts=_cohorts(session, env),
        log=cohort_store.log_entries(session, env.id, window),
    )
