"""Identities and their traits, as the admin sees them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from ensign.errors import Conflict, NotFound
from ensign.services.admin import access, audit
from ensign.services.keys import AdminPrincipal
from ensign.services.values import TraitValue, decode_trait_value, encode_trait_value
from ensign.storage import identities as identity_store
from ensign.storage.audit import row_snapshot
from ensign.storage.environments import touch_environments
from ensign.storage.faults import flush
from ensign.storage.models import Identity, Trait
from ensign.storage.pagination import Page, Window


def trait_snapshot(trait: Trait) -> dict[str, Any]:
    return {
        "id": trait.id,
        "trait_key": trait.key,
        "trait_value": decode_trait_value(trait.value_type, trait.value_text),
    }


def list_identities(
    session: Session,
    principal: AdminPrincipal,
    api_key: str,
    window: Window,
    *,
    search: str | None = None,
) -> Page[Identity]:
    environment = access.environment_for(session, principal, api_key)
    return identity_store.identities(session, environment.id, window, search=search)


def get_identity(
    session: Session, principal: AdminPrincipal, api_key: str, identity_id: int
) -> Identity:
    environment = access.environment_for(session, principal, api_key)
    return access.identity_for(session, environment, identity_id)


def create_identity(
    session: Session, principal: AdminPrincipal, api_key: str, *, identifier: str
) -> Identity:
    environment = access.environment_for(session, principal, api_key)
    identity_id, created = identity_store.get_or_create_identity(
        session, environment.id, identifier
    )
    if not created:
        raise Conflict("identifier: this identity already exists.", field="identifier")
    identity = session.get(Identity, identity_id)
    assert identity is not None
    audit.record(
        session,
        principal,
        action=audit.CREATED,
        resource_type="identity",
        resource_id=identity.id,
        log=f"Identity created: {identifier!r} in {environment.name!r}",
        after=row_snapshot(identity),
        project_id=environment.project_id,
        environment_id=environment.id,
    )
    return identity


def delete_identity(
    session: Session, principal: AdminPrincipal, api_key: str, identity_id: int
) -> None:
    """Delete an identity with its traits and overrides."""
    environment = access.environment_for(session, principal, api_key)
    identity = access.identity_for(session, environment, identity_id)
    before = row_snapshot(identity)
    session.delete(identity)
    session.flush()
    session.expire_all()
    touch_environments(session, environment_ids=[environment.id])
    audit.record(
        session,
        principal,
        action=audit.DELETED,
        resource_type="identity",
        resource_id=identity_id,
        log=f"Identity deleted: {before['identifier']!r} in {environment.name!r}",
        before=before,
        project_id=environment.project_id,
        environment_id=environment.id,
    )


def list_traits(
    session: Session, principal: AdminPrincipal, api_key: str, identity_id: int
) -> Sequence[Trait]:
    identity = get_identity(session, principal, api_key, identity_id)
    return identity_store.traits(session, identity.id)


def set_trait(
    session: Session,
    principal: AdminPrincipal,
    api_key: str,
    identity_id: int,
    *,
    key: str,
    value: TraitValue,
) -> Trait:
    """Create the trait, or change its value when the identity has it already."""
    environment = access.environment_for(session, principal, api_key)
    identity = access.identity_for(session, environment, identity_id)
    value_type, value_text = encode_trait_value(value)
    trait = identity_store.trait_by_key(session, identity.id, key)
    before = None if trait is None else trait_snapshot(trait)
    if trait is None:
        trait = Trait(
            identity_id=identity.id, key=key, value_type=value_type, value_text=value_text
        )
        session.add(trait)
    else:
        trait.value_type, trait.value_text = value_type, value_text
    flush(
        session, conflict="trait_key: this trait was just set by someone else.", field="trait_key"
    )
    audit.record(
        session,
        principal,
        action=audit.CREATED if before is None else audit.UPDATED,
        resource_type="trait",
        resource_id=trait.id,
        log=f"Trait {key!r} set for {identity.identifier!r} in {environment.name!r}",
        before=before,
        after=trait_snapshot(trait),
        project_id=environment.project_id,
        environment_id=environment.id,
    )
    return trait


def delete_trait(
    session: Session, principal: AdminPrincipal, api_key: str, identity_id: int, trait_id: int
) -> None:
    environment = access.environment_for(session, principal, api_key)
    identity = access.identity_for(session, environment, identity_id)
    trait = session.get(Trait, trait_id) if access.is_valid_id(trait_id) else None
    if trait is None or trait.identity_id != identity.id:
        raise NotFound("Trait not found.")
    before = trait_snapshot(trait)
    session.delete(trait)
    session.flush()
    audit.record(
        session,
        principal,
        action=audit.DELETED,
        resource_type="trait",
        resource_id=trait_id,
        log=f"Trait {before['trait_key']!r} deleted for {identity.identifier!r}",
        before=before,
        project_id=environment.project_id,
        environment_id=environment.id,
    )
