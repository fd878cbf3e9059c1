"""Identities and their traits as SDK calls load, create and write them (contract §2.2 to 2.6).

Each function works inside a unit of work the caller opened (`services.identify`,
`services.traits`); none opens or commits one.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from ensign.services.sdk_requests import TraitInput
from ensign.services.snapshots import Snapshot
from ensign.services.values import TraitValue, decode_trait_value, encode_trait_value
from ensign.storage import identities as repo


class IdentityRepository(Protocol):
    """The identity and trait queries an identify call needs (see `storage.identities`)."""

    def load_identity(
        self, environment_id: int, identifier: str, *, lock: bool = False
    ) -> repo.StoredIdentity | None: ...

    def get_or_create_identity(self, environment_id: int, identifier: str) -> tuple[int, bool]: ...

    def insert_traits(
        self, identity_id: int, traits: Sequence[tuple[str, str, str]]
    ) -> dict[str, int]: ...

    def update_trait(self, trait_id: int, value_type: str, value_text: str) -> None: ...

    def delete_traits(self, trait_ids: Sequence[int]) -> None: ...

    def lock_trait(self, identity_id: int, key: str) -> repo.StoredTrait: ...


@dataclass
class TraitOutput:
    """A trait the identity is evaluated with; `id` is None for one that is not stored."""

    id: int | None
    key: str
    value: TraitValue
    transient: bool


@dataclass(frozen=True)
class PreparedIdentity:
    """Who to evaluate and with which traits, after anything to store has been written."""

    identifier: str
    identity_id: int | None
    traits: list[TraitOutput]
    # What the identify path last recorded for the stored identity (`services.delivered`).
    delivered: str | None = None


def generated_identifier(traits: Iterable[TraitInput]) -> str:
    """The identifier the reference gives an identify call with a blank identifier."""
    parts = sorted((t.key, t.value) for t in traits if t.value is not None)
    if not parts:
        return uuid.uuid4().hex
    text = "".join(f"{key}{value}" for key, value in parts)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def load(
    store: IdentityRepository, snapshot: Snapshot, identifier: str, *, lock: bool = False
) -> PreparedIdentity | None:
    """The stored identity with its stored traits, or None when there is none yet; with
    `lock`, its row is locked until the transaction ends."""
    stored = store.load_identity(snapshot.environment_id, identifier, lock=lock)
    if stored is None:
        return None
    return PreparedIdentity(identifier, stored.id, stored_traits(stored), stored.delivered)


def create(
    store: IdentityRepository, snapshot: Snapshot, identifier: str, *, lock: bool = False
) -> PreparedIdentity:
    """A new identity, or the one another request created first, with its traits."""
    identity_id, created = store.get_or_create_identity(snapshot.environment_id, identifier)
    if created:
        return PreparedIdentity(identifier, identity_id, [])
    prepared = load(store, snapshot, identifier, lock=lock)
    assert prepared is not None
    return prepared


def get_or_create(
    store: IdentityRepository,
    snapshot: Snapshot,
    identifier: str,
    stored: repo.StoredIdentity | None,
    *,
    lock: bool = False,
) -> tuple[int, repo.StoredIdentity | None]:
    """The id of the identity `stored` (already loaded), created when it is None; with the
    identity as stored, None when this call created it."""
    if stored is not None:
        return stored.id, stored
    identity_id, created = store.get_or_create_identity(snapshot.environment_id, identifier)
    if created:
        return identity_id, None
    # Another request created it between the load and the insert.
    return identity_id, store.load_identity(snapshot.environment_id, identifier, lock=lock)


def stored_traits(stored: repo.StoredIdentity | None) -> list[TraitOutput]:
    if stored is None:
        return []
    return [
        TraitOutput(t.id, t.key, decode_trait_value(t.value_type, t.value_text), False)
        for t in stored.traits
    ]


def overlay_traits(base: list[TraitOutput], incoming: Iterable[TraitInput]) -> list[TraitOutput]:
    """Incoming traits laid over `base` for this evaluation only; nothing is stored."""
    by_key = {t.key: t for t in base}
    for trait in incoming:
        if trait.value is None:
            by_key.pop(trait.key, None)
        else:
            by_key[trait.key] = TraitOutput(None, trait.key, trait.value, True)
    return list(by_key.values())


def write_traits(
    store: IdentityRepository,
    snapshot: Snapshot,
    identity_id: int,
    stored: repo.StoredIdentity | None,
    incoming: Iterable[TraitInput],
) -> list[TraitOutput]:
    """Upsert what changed, delete what was nulled; answer the traits to evaluate with."""
    current = {o.key: o for o in stored_traits(stored)}
    stored_types = {t.key: (t.value_type, t.value_text) for t in (stored.traits if stored else [])}
    to_insert: list[tuple[str, str, str]] = []
    to_delete: list[int] = []
    for trait in incoming:
        existing = current.get(trait.key)
        if trait.value is None:
            if existing is not None and existing.id is not None and snapshot.persist_trait_data:
                to_delete.append(existing.id)
            current.pop(trait.key, None)
            continue
        if trait.transient or not snapshot.persist_trait_data:
            # Used for this evaluation only; a stored value under the same key stays as it is.
            current[trait.key] = TraitOutput(None, trait.key, trait.value, trait.transient)
            continue
        encoded = encode_trait_value(trait.value)
        if existing is not None and existing.id is not None:
            if stored_types.get(trait.key) != encoded:
                store.update_trait(existing.id, *encoded)
            current[trait.key] = TraitOutput(existing.id, trait.key, trait.value, False)
        else:
            to_insert.append((trait.key, *encoded))
            current[trait.key] = TraitOutput(None, trait.key, trait.value, False)
    store.delete_traits(to_delete)
    if to_insert:
        # A key may repeat within one request; the last value wins, as in the reference.
        last = {key: (key, t, v) for key, t, v in to_insert}
        ids = store.insert_traits(identity_id, list(last.values()))
        for key, trait_id in ids.items():
            current[key].id = trait_id
    return list(current.values())


def set_trait(
    store: IdentityRepository,
    snapshot: Snapshot,
    *,
    identifier: str,
    key: str,
    value: TraitValue | None,
) -> None:
    """Create, update or (with a null value) delete one stored trait of an identity, creating
    the identity if need be."""
    stored = store.load_identity(snapshot.environment_id, identifier)
    identity_id, stored = get_or_create(store, snapshot, identifier, stored)
    write_traits(store, snapshot, identity_id, stored, [TraitInput(key, value)])
