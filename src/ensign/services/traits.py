"""The trait use cases: an SDK stores traits or increments one, without asking for flags
(contract §2.4 to §2.6).

Each runs on the identify path's database threads (or inline on SQLite) in one transaction.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol

from ensign.errors import InvalidInput, PermissionDenied
from ensign.services import identities
from ensign.services.identities import IdentityRepository
from ensign.services.sdk_requests import IncrementRequest, TraitsRequest
from ensign.services.snapshots import Snapshot
from ensign.services.values import incremented


class TraitUnits(Protocol):
    """`storage.identity_pool.IdentityStorePool`: transactions on the identify threads."""

    def unit(self, *, write: bool) -> AbstractContextManager[IdentityRepository]: ...


def ensure_traits_writable(snapshot: Snapshot, *, is_server: bool) -> None:
    if not snapshot.persist_trait_data:
        raise PermissionDenied("Organisation is not authorised to store traits.")
    if not is_server and not snapshot.allow_client_traits:
        raise InvalidInput("Setting traits not allowed with client key.")


def set_traits(units: TraitUnits, snapshot: Snapshot, request: TraitsRequest) -> None:
    """`POST /api/v1/traits/` and `PUT /api/v1/traits/bulk/`: create, update or (null)
    delete each trait, creating identities as need be, all in one transaction."""
    ensure_traits_writable(snapshot, is_server=request.is_server)
    with units.unit(write=True) as store:
        for trait in request.traits:
            identities.set_trait(
                store, snapshot, identifier=trait.identifier, key=trait.key, value=trait.value
            )


def increment_trait(units: TraitUnits, snapshot: Snapshot, request: IncrementRequest) -> int:
    """`POST /api/v1/traits/increment-value/`: add to an integer trait, an absent one counting
    as 0; answers the new value. The trait is locked from read to write, so that concurrent
    increments all count."""
    ensure_traits_writable(snapshot, is_server=request.is_server)
    with units.unit(write=True) as store:
        identity_id, _ = store.get_or_create_identity(snapshot.environment_id, request.identifier)
        trait = store.lock_trait(identity_id, request.key)
        new_value = incremented(trait.value_type, trait.value_text, request.increment_by)
        store.update_trait(trait.id, "int", str(new_value))
    return new_value
