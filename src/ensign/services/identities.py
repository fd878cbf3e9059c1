"""Identify calls: who the user is, which traits to keep, and the flags they get (contract §2.2 to 2.6)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import orjson

from ensign.errors import InvalidInput, NotFound, PermissionDenied
from ensign.services.snapshots import Snapshot
from ensign.services.text import check_text
from ensign.services.values import (
    TraitValue,
    decode_trait_value,
    encode_trait_value,
    incremented,
    trait_value_from_json,
)
from ensign.storage import identities as repo


class IdentityRepository(Protocol):
    """The identity and trait queries an identify call needs (see `storage.identities`)."""

    def load_identity(self, environment_id: int, identifier: str) -> repo.StoredIdentity | None: ...

    def get_or_create_identity(self, environment_id: int, identifier: str) -> tuple[int, bool]: ...

    def insert_traits(
        self, identity_id: int, traits: Sequence[tuple[str, str, str]]
    ) -> dict[str, int]: ...

    def update_trait(self, trait_id: int, value_type: str, value_text: str) -> None: ...

    def delete_traits(self, trait_ids: Sequence[int]) -> None: ...

    def lock_trait(self, identity_id: int, key: str) -> repo.StoredTrait: ...


@dataclass(frozen=True)
class Limits:
    identifier_length: int
    trait_key_length: int
    trait_value_length: int
    traits_per_request: int


@dataclass(frozen=True)
class TraitInput:
    key: str
    value: TraitValue | None
    transient: bool = False


@dataclass
class TraitOutput:
    id: int | None
    key: str
    value: TraitValue
    transient: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "trait_key": self.key,
            "trait_value": self.value,
            "transient": self.transient,
        }


@dataclass(frozen=True)
class PreparedIdentity:
    """Who to evaluate and with which traits, after anything to store has been written."""

    identifier: str
    identity_id: int | None
    traits: list[TraitOutput]


class ServedFlag(NamedTuple):
    """One flag as returned to the caller, with its serialised flag object. (A named tuple:
    fifty are made per identify call, and a frozen dataclass costs several times more.)"""

    name: str
    enabled: bool
    value: Any
    json: bytes


@dataclass(frozen=True)
class IdentifyResult:
    identifier: str
    identity_id: int | None
    served: list[ServedFlag]
    traits: list[TraitOutput]

    @property
    def flags(self) -> list[dict[str, Any]]:
        """The flag objects as JSON values (the response body is built from bytes instead)."""
        parsed: list[dict[str, Any]] = orjson.loads(self.flags_json)
        return parsed

    @property
    def flags_json(self) -> bytes:
        return b"[" + b",".join(flag.json for flag in self.served) + b"]"

    def body(self, snapshot: Snapshot) -> bytes:
        """The identity response (contract §3.2), serialised."""
        traits = [] if snapshot.hide_sensitive_data else [t.as_json() for t in self.traits]
        return b"".join(
            (
                b'{"identifier":',
                orjson.dumps(self.identifier),
                b',"flags":',
                self.flags_json,
                b',"traits":',
                orjson.dumps(traits),
                b"}",
            )
        )


def check_identifier(identifier: Any, limits: Limits) -> str:
    if not isinstance(identifier, str):
        raise InvalidInput("identifier: must be a string.", field="identifier")
    check_text(identifier, "identifier")
    if len(identifier) > limits.identifier_length:
        raise InvalidInput(
            f"identifier: at most {limits.identifier_length} characters.", field="identifier"
        )
    return identifier


def parse_traits(raw: Any, limits: Limits) -> list[TraitInput]:
    """Validate the `traits` array of an identify call."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise InvalidInput("traits: must be a list.", field="traits")
    if len(raw) > limits.traits_per_request:
        raise InvalidInput(
            f"traits: at most {limits.traits_per_request} traits per request.", field="traits"
        )
    traits = []
    for item in raw:
        if not isinstance(item, dict):
            raise InvalidInput("traits: each trait must be an object.", field="traits")
        key = parse_trait_key(item.get("trait_key"), limits)
        value = item.get("trait_value")
        transient = item.get("transient", False)
        if not isinstance(transient, bool) and transient is not None:
            raise InvalidInput("traits: transient must be a boolean.", field="traits")
        traits.append(
            TraitInput(
                key,
                None
                if value is None
                else trait_value_from_json(value, max_length=limits.trait_value_length),
                bool(transient),
            )
        )
    return traits


def parse_trait_key(key: Any, limits: Limits) -> str:
    if not isinstance(key, str) or not key:
        raise InvalidInput("trait_key: a non-empty string is required.", field="trait_key")
    check_text(key, "trait_key")
    if len(key) > limits.trait_key_length:
        raise InvalidInput(
            f"trait_key: at most {limits.trait_key_length} characters.", field="trait_key"
        )
    return key


def generated_identifier(traits: list[TraitInput]) -> str:
    """The identifier the reference gives an identify call with a blank identifier."""
    parts = sorted((t.key, t.value) for t in traits if t.value is not None)
    if not parts:
        return uuid.uuid4().hex
    text = "".join(f"{key}{value}" for key, value in parts)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def identify(
    store: IdentityRepository,
    snapshot: Snapshot,
    *,
    identifier: str | None,
    traits: list[TraitInput],
    transient: bool,
    is_server: bool,
) -> PreparedIdentity:
    """`POST /api/v1/identities/`: store what may be stored; `evaluate` gives the flags."""
    if not is_server and not snapshot.allow_client_traits:
        # The reference drops them silently rather than rejecting the call.
        traits = []
    if not identifier:
        identifier = generated_identifier(traits)
        return PreparedIdentity(identifier, None, _transient_traits([], traits))
    stored = store.load_identity(snapshot.environment_id, identifier)
    if transient:
        return PreparedIdentity(
            identifier,
            None if stored is None else stored.id,
            _transient_traits(_stored_outputs(stored), traits),
        )
    if stored is None:
        identity_id, created = store.get_or_create_identity(snapshot.environment_id, identifier)
        if not created:
            stored = store.load_identity(snapshot.environment_id, identifier)
    else:
        identity_id = stored.id
    outputs = _write_traits(store, snapshot, identity_id, stored, traits)
    return PreparedIdentity(identifier, identity_id, outputs)


def load_or_create(
    store: IdentityRepository, snapshot: Snapshot, identifier: str
) -> PreparedIdentity | None:
    """`GET /api/v1/identities/?identifier=`: the stored identity, or None when it must be created."""
    stored = store.load_identity(snapshot.environment_id, identifier)
    if stored is None:
        return None
    return PreparedIdentity(identifier, stored.id, _stored_outputs(stored))


def create(store: IdentityRepository, snapshot: Snapshot, identifier: str) -> PreparedIdentity:
    identity_id, created = store.get_or_create_identity(snapshot.environment_id, identifier)
    if created:
        return PreparedIdentity(identifier, identity_id, [])
    prepared = load_or_create(store, snapshot, identifier)
    assert prepared is not None
    return prepared


def _stored_outputs(stored: repo.StoredIdentity | None) -> list[TraitOutput]:
    if stored is None:
        return []
    return [
        TraitOutput(t.id, t.key, decode_trait_value(t.value_type, t.value_text), False)
        for t in stored.traits
    ]


def _transient_traits(base: list[TraitOutput], incoming: list[TraitInput]) -> list[TraitOutput]:
    """Overlay incoming traits on `base` for this evaluation only."""
    by_key = {t.key: t for t in base}
    for trait in incoming:
        if trait.value is None:
            by_key.pop(trait.key, None)
        else:
            by_key[trait.key] = TraitOutput(None, trait.key, trait.value, True)
    return list(by_key.values())


def _write_traits(
    store: IdentityRepository,
    snapshot: Snapshot,
    identity_id: int,
    stored: repo.StoredIdentity | None,
    incoming: list[TraitInput],
) -> list[TraitOutput]:
    """Upsert what changed, delete what was nulled; answer the traits to evaluate with."""
    current = {o.key: o for o in _stored_outputs(stored)}
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


def evaluate(snapshot: Snapshot, prepared: PreparedIdentity, *, is_server: bool) -> IdentifyResult:
    """Every flag the identity gets, as the SDK API returns them (contract §3.1, §5.7)."""
    identifier, identity_id, traits = prepared.identifier, prepared.identity_id, prepared.traits
    result = snapshot.compiled.evaluate_identity(
        {
            "identifier": identifier,
            "key": f"{snapshot.api_key}_{identifier}",
            "traits": {t.key: t.value for t in traits},
        }
    )
    evaluated = result["flags"]
    overrides = {}
    if identity_id is not None:
        overrides = {o.feature_name: o for o in snapshot.identity_overrides.get(identity_id, ())}
    served = []
    for name in sorted(evaluated):
        flag = evaluated[name]
        feature = snapshot.features[name]
        override = overrides.get(name)
        if override is not None:
            enabled, value = override.enabled, override.value
            variant = "control" if feature.type == "MULTIVARIATE" else None
            state_id, segment_state = override.state_id, None
            owner = identity_id
        else:
            enabled, value = flag["enabled"], flag["value"]
            if feature.type != "MULTIVARIATE":
                variant = None
            elif flag["reason"].startswith("SPLIT"):
                variant = flag["variant"]
            else:
                variant = "control"
            state_id = flag["metadata"]["fs"]
            segment_state = state_id if flag["reason"].startswith("TARGETING_MATCH") else None
            owner = None
        if not snapshot.visible(name, enabled, is_server=is_server):
            continue
        body = snapshot.flag_bytes(
            name,
            state_id=state_id,
            enabled=enabled,
            value=value,
            identity_id=owner,
            feature_segment=segment_state,
            variant=variant,
        )
        served.append(ServedFlag(name, enabled, value, body))
    return IdentifyResult(identifier, identity_id, served, traits)


def single_flag(result: IdentifyResult, feature: str) -> dict[str, Any]:
    for flag in result.flags:
        if flag["feature"]["name"] == feature:
            return flag
    raise NotFound("Given feature not found")


def set_trait(
    store: IdentityRepository,
    snapshot: Snapshot,
    *,
    identifier: str,
    key: str,
    value: TraitValue | None,
    is_server: bool,
) -> None:
    """Create, update or (with a null value) delete one stored trait of an identity."""
    ensure_traits_writable(snapshot, is_server=is_server)
    stored = store.load_identity(snapshot.environment_id, identifier)
    if stored is None:
        identity_id, _ = store.get_or_create_identity(snapshot.environment_id, identifier)
        stored = store.load_identity(snapshot.environment_id, identifier)
    else:
        identity_id = stored.id
    _write_traits(store, snapshot, identity_id, stored, [TraitInput(key, value)])


def ensure_traits_writable(snapshot: Snapshot, *, is_server: bool) -> None:
    if not snapshot.persist_trait_data:
        raise PermissionDenied("Organisation is not authorised to store traits.")
    if not is_server and not snapshot.allow_client_traits:
        raise InvalidInput("Setting traits not allowed with client key.")


def increment_trait(
    store: IdentityRepository,
    snapshot: Snapshot,
    *,
    identifier: str,
    key: str,
    increment_by: int,
    is_server: bool,
) -> int:
    """Add to an integer trait, creating it as 0 first; answers the new value."""
    ensure_traits_writable(snapshot, is_server=is_server)
    identity_id, _ = store.get_or_create_identity(snapshot.environment_id, identifier)
    trait = store.lock_trait(identity_id, key)
    new_value = incremented(trait.value_type, trait.value_text, increment_by)
    store.update_trait(trait.id, "int", str(new_value))
    return new_value
