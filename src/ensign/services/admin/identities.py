"""Identities and their traits, as the admin sees them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from ensign.errors import Conflict, NotFound
from ensign.services import changes as change_path
from ensign.services.admin import access
from ensign.services.changes import Change
from ensign.services.keys import AdminPrincipal
from ensign.services.values import TraitValue, decode_trait_value, encode_trait_value
from ensign.storage import identities as identity_store
from ensign.storage.audit import row_snapshot
from ensign.storage.faults import flush
from ensign.storage.models import Environment, Identity, Trait
from ensign.storage.pagination import Page, Window
from ensign.storage.unit_of_work import UnitOfWork


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
    unit: UnitOfWork, principal: AdminPrincipal, api_key: str, *, identifier: str
) -> Identity:
    session = unit.session
    environment = access.environment_for(session, principal, api_key)
    identity_id, created = identity_store.get_or_create_identity(
        session, environment.id, identifier
    )
    if not created:
        raise Conflict("identifier: this identity already exists.", field="identifier")
    identity = identity_store.identity_by_id(session, identity_id)
    assert identity is not None
    change_path.apply(
        unit,
        principal,
        [
            _change(
                environment,
                "identity",
                identity.id,
                change_path.CREATED,
                f"Identity created: {identifier!r} in {environment.name!r}",
                after=row_snapshot(identity),
            )
        ],
    )
    return identity


def delete_identity(
    unit: UnitOfWork, principal: AdminPrincipal, api_key: str, identity_id: int
) -> None:
    """Delete an identity with its traits and overrides."""
    session = unit.session
    environment = access.environment_for(session, principal, api_key)
    identity = access.identity_for(session, environment, identity_id)
    before = row_snapshot(identity)
    identity_store.delete_identity(session, identity)
    change_path.apply(
        unit,
        principal,
        [
            _change(
                environment,
                "identity",
                identity_id,
                change_path.DELETED,
                f"Identity deleted: {before['identifier']!r} in {environment.name!r}",
                before=before,
            )
        ],
    )


def list_traits(
    session: Session, principal: AdminPrincipal, api_key: str, identity_id: int
) -> Sequence[Trait]:
    identity = get_identity(session, principal, api_key, identity_id)
    return identity_store.traits(session, identity.id)


def set_trait(
    unit: UnitOfWork,
    principal: AdminPrincipal,
    api_key: str,
    identity_id: int,
    *,
    key: str,
    value: TraitValue,
) -> Trait:
    """Create the trait, or change its value when the identity has it already."""
    session = unit.session
    environment = access.environment_for(session, principal, api_key)
    identity = access.identity_for(session, environment, identity_id)
    value_type, value_text = encode_trait_value(value)
    trait = identity_store.trait_by_key(session, identity.id, key)
    before = None if trait is None else trait_snapshot(trait)
    if trait is None:
        trait = Trait(
            identity_id=identity.id, key=key, value_type=value_type, value_text=value_text
        )
        identity_store.add_trait(session, trait)
    else:
        trait.value_type, trait.value_text = value_type, value_text
    flush(
        session, conflict="trait_key: this trait was just set by someone else.", field="trait_key"
    )
    change_path.apply(
        unit,
        principal,
        [
            _change(
                environment,
                "trait",
                trait.id,
                change_path.CREATED if before is None else change_path.UPDATED,
                f"Trait {key!r} set for {identity.identifier!r} in {environment.name!r}",
                before=before,
                after=trait_snapshot(trait),
            )
        ],
    )
    return trait


def delete_trait(
    unit: UnitOfWork, principal: AdminPrincipal, api_key: str, identity_id: int, trait_id: int
) -> None:
    session = unit.session
    environment = access.environment_for(session, principal, api_key)
    identity = access.identity_for(session, environment, identity_id)
    trait = identity_store.trait_by_id(session, trait_id) if access.is_valid_id(trait_id) else None
    if trait is None or trait.identity_id != identity.id:
        raise NotFound("Trait not found.")
    before = trait_snapshot(trait)
    identity_store.delete_trait(session, trait)
    change_path.apply(
        unit,
        principal,
        [
            _change(
                environment,
                "trait",
                trait_id,
                change_path.DELETED,
                f"Trait {before['trait_key']!r} deleted for {identity.identifier!r}",
                before=before,
            )
        ],
    )


def _change(
    environment: Environment,
    resource_type: str,
    resource_id: int,
    action: str,
    log: str,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> Change:
    """Traits decide which segments an identity is in, and so which flags it is served: an
    identity's or a trait's change reaches its environment."""
    return Change(
        resource_type=resource_type,
        resource_id=resource_id,
        action=action,
        log=log,
        project_id=environment.project_id,
        environment_ids=(environment.id,),
        before=before,
        after=after,
    )
