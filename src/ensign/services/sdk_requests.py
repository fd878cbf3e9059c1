"""SDK calls parsed at the edge: loosely typed JSON (contract §2.2 to §2.8) into the frozen
requests that the identify, trait and analytics use cases take.

The reference accepts loosely typed input and answers in its own error shapes, so the checks
and their messages are written out here rather than left to a schema library.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ensign.errors import InvalidInput
from ensign.services.text import check_text
from ensign.services.values import TraitValue, trait_value_from_json

# Increments larger than this could overflow a stored 64-bit integer in one step.
MAX_INCREMENT = 2**62
# Evaluation counts are stored as 32-bit integers.
MAX_EVALUATION_COUNT = 2**31


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


@dataclass(frozen=True)
class IdentifyRequest:
    """`POST /api/v1/identities/`; a blank `identifier` gets one made from the traits."""

    identifier: str | None
    traits: tuple[TraitInput, ...]
    transient: bool
    is_server: bool


@dataclass(frozen=True)
class IdentityFlagsRequest:
    """`GET /api/v1/identities/?identifier=` (one flag with `feature`), and the older
    `GET /api/v1/flags/<identifier>`, which has never fed the integrations (`recorded`)."""

    identifier: str
    is_server: bool
    transient: bool = False
    feature: str | None = None
    recorded: bool = True


@dataclass(frozen=True)
class TraitWrite:
    """One trait to store for one identity; a null value deletes it."""

    identifier: str
    key: str
    value: TraitValue | None


@dataclass(frozen=True)
class TraitsRequest:
    """`POST /api/v1/traits/` (one trait) or `PUT /api/v1/traits/bulk/` (many)."""

    traits: tuple[TraitWrite, ...]
    is_server: bool


@dataclass(frozen=True)
class IncrementRequest:
    """`POST /api/v1/traits/increment-value/`."""

    identifier: str
    key: str
    increment_by: int
    is_server: bool


@dataclass(frozen=True)
class EvaluationCountsRequest:
    """`POST /api/v1/analytics/flags/`: feature name → evaluations to add."""

    counts: Mapping[str, int]


def check_identifier(identifier: Any, limits: Limits) -> str:
    if not isinstance(identifier, str):
        raise InvalidInput("identifier: must be a string.", field="identifier")
    check_text(identifier, "identifier")
    if len(identifier) > limits.identifier_length:
        raise InvalidInput(
            f"identifier: at most {limits.identifier_length} characters.", field="identifier"
        )
    return identifier


def parse_trait_key(key: Any, limits: Limits) -> str:
    if not isinstance(key, str) or not key:
        raise InvalidInput("trait_key: a non-empty string is required.", field="trait_key")
    check_text(key, "trait_key")
    if len(key) > limits.trait_key_length:
        raise InvalidInput(
            f"trait_key: at most {limits.trait_key_length} characters.", field="trait_key"
        )
    return key


def parse_traits(raw: Any, limits: Limits) -> tuple[TraitInput, ...]:
    """Validate the `traits` array of an identify call."""
    if raw is None:
        return ()
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
    return tuple(traits)


def identify_request(body: Any, limits: Limits, *, is_server: bool) -> IdentifyRequest:
    if not isinstance(body, dict):
        raise InvalidInput("Invalid request data")
    identifier = body.get("identifier")
    if identifier is not None:
        identifier = check_identifier(identifier, limits)
    traits = parse_traits(body.get("traits"), limits)
    transient = body.get("transient", False)
    if transient is not None and not isinstance(transient, bool):
        raise InvalidInput("transient: must be a boolean.", field="transient")
    return IdentifyRequest(identifier, traits, bool(transient), is_server)


def identity_flags_request(
    query: Mapping[str, str], limits: Limits, *, is_server: bool
) -> IdentityFlagsRequest | None:
    """The query of `GET /api/v1/identities/`; None when it names no identifier."""
    identifier = query.get("identifier")
    if identifier is None or identifier == "":
        return None
    return IdentityFlagsRequest(
        check_identifier(identifier, limits),
        is_server,
        transient=bool(query.get("transient")),
        feature=query.get("feature"),
    )


def _trait_write(item: Any, limits: Limits, *, allow_null: bool) -> TraitWrite:
    if not isinstance(item, dict):
        raise InvalidInput("Invalid request data")
    identity = item.get("identity")
    if not isinstance(identity, dict):
        raise InvalidInput("identity: an object with an identifier is required.", field="identity")
    identifier = identity.get("identifier")
    if not isinstance(identifier, str) or not identifier:
        raise InvalidInput("identity.identifier: a non-empty string is required.", field="identity")
    identifier = check_identifier(identifier, limits)
    key = parse_trait_key(item.get("trait_key"), limits)
    if "trait_value" not in item:
        raise InvalidInput("trait_value: this field is required.", field="trait_value")
    value = item["trait_value"]
    if value is None:
        if not allow_null:
            raise InvalidInput("trait_value: this field may not be null.", field="trait_value")
        return TraitWrite(identifier, key, None)
    return TraitWrite(
        identifier, key, trait_value_from_json(value, max_length=limits.trait_value_length)
    )


def trait_request(body: Any, limits: Limits, *, is_server: bool) -> TraitsRequest:
    """`POST /api/v1/traits/`: one trait, never null."""
    return TraitsRequest((_trait_write(body, limits, allow_null=False),), is_server)


def bulk_traits_request(body: Any, limits: Limits, *, is_server: bool) -> TraitsRequest:
    """`PUT /api/v1/traits/bulk/`: a list of traits, null deleting."""
    if not isinstance(body, list):
        raise InvalidInput("Invalid request data")
    if len(body) > limits.traits_per_request:
        raise InvalidInput(f"At most {limits.traits_per_request} traits per request.")
    return TraitsRequest(
        tuple(_trait_write(item, limits, allow_null=True) for item in body), is_server
    )


def increment_request(body: Any, limits: Limits, *, is_server: bool) -> IncrementRequest:
    if not isinstance(body, dict):
        raise InvalidInput("Invalid request data")
    key = parse_trait_key(body.get("trait_key"), limits)
    identifier = body.get("identifier")
    if not isinstance(identifier, str) or not identifier:
        raise InvalidInput("identifier: a non-empty string is required.", field="identifier")
    identifier = check_identifier(identifier, limits)
    increment_by = body.get("increment_by")
    if isinstance(increment_by, bool) or not isinstance(increment_by, int):
        raise InvalidInput("increment_by: an integer is required.", field="increment_by")
    if abs(increment_by) > MAX_INCREMENT:
        raise InvalidInput("increment_by: out of range.", field="increment_by")
    return IncrementRequest(identifier, key, increment_by, is_server)


def evaluation_counts_request(body: Any) -> EvaluationCountsRequest:
    """Counts that are not positive integers in range are dropped silently, as the reference
    drops them."""
    if not isinstance(body, dict):
        raise InvalidInput("Invalid request data")
    counts = {
        name: count
        for name, count in body.items()
        if not isinstance(count, bool)
        and isinstance(count, int)
        and 0 < count < MAX_EVALUATION_COUNT
    }
    return EvaluationCountsRequest(counts)
